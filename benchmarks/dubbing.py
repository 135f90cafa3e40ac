"""Dubbing on a two-person scene the benchmark assembles from real footage with its own speech.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/dubbing.py [--data ../shared/data] [--engine visemes]
                                    [--runs es_translated es_given en_auto] [--out benchmarks/results/dubbing.json]

The scene: a GRID s1 speaker (man, left) and a faces-dev speaker (styletalk_KristiNoem, woman, right) side by
side, 256x256 each, 25 fps. Each line is one of them speaking with their own sound while the other's mouth moves
silently (other footage of them, muted). Line slots are where the speech really is (GRID's word alignments;
Whisper word times snapped to the sound for the woman). Three dubs of it:

  es_translated  English SRT (speaker names) -> Spanish through apertium, Kokoro Spanish voice;
                 then one line is edited and the job rerun (edit-rerun time as a fraction of the first run);
  es_given       Spanish SRT written here (a human translation), Spanish voice;
  en_auto        no subtitles: the English speech is transcribed, translated into Spanish by apertium, the lines
                 diarized, each speaker cloned from their own lines (voice "auto": the closest Kokoro voice, then
                 kNN conversion) and the speaking face chosen. Each line is also synthesized without the
                 conversion, to measure what the conversion does to speaker similarity and Spanish WER.

Numbers: share of lines that fit without overflow (and the overflow per line); line start error: where the line's
first sound is in the dubbed sound track against the subtitle's start (the line's fitted speech is found in the
output by cross-correlation, so the placement is measured, not taken from the report; its first sound is the first
5 ms frame within 35 dB of the line's peak); stretch factors; WER of the dubbed speech heard by the multilingual
Whisper base in Spanish, per stage: the TTS alone at its own pace, the fitted line (rate, stretch, conversion,
mark) and the line cut from the final mix (Spanish normalisation: case, accents, punctuation, numbers as words,
single letters as their names, so "S3" and "ese tres" both match "S tres"); speaker similarity (resemblyzer
cosine) of each speaker's dubbed voice to their original; for the re-synced stretches, the correlation of the
mouth opening of the face that was lip-synced, and of the other face, with the new sound (best shift within ±3
frames); whether the re-synced face is the one that really speaks; wall time per minute of video on this CPU.
Targets: >= 95 % of lines fit, start error <= 40 ms, Spanish WER <= 15 %, edit-rerun < 10 % of the first run.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FPS = 25.0
SIDE = 256
SR = 16000
# the woman's lines (faces-dev styletalk_KristiNoem; Whisper tiny.en word times), with a Spanish translation
WOMAN = [((0.0, 3.38), "Dakota has done a great job fighting the spread of COVID.",
          "Dakota ha hecho un gran trabajo contra el virus."),
         ((3.78, 8.36), "Together, we flattened our curve and we have the hospital capacity to care for those.",
          "Juntos aplanamos la curva y tenemos camas de hospital para cuidar de todos.")]
GRID_CLIPS = ["bbaf4p", "bbaf5a", "bbal6n", "bbas3a"]
GRID_ES = {"bin": "pon", "lay": "coloca", "place": "pon", "set": "fija", "blue": "azul", "green": "verde",
           "red": "rojo", "white": "blanco", "at": "en", "by": "junto a", "in": "en", "with": "con",
           "again": "otra vez", "now": "ahora", "please": "por favor", "soon": "pronto", "zero": "cero",
           "one": "uno", "two": "dos", "three": "tres", "four": "cuatro", "five": "cinco", "six": "seis",
           "seven": "siete", "eight": "ocho", "nine": "nueve"}
ORDER = ["A", "B", "A", "B", "A", "A"]  # who speaks each line (A = the GRID man, left; B = the woman, right)


def _square(frame):
    import cv2

    h, w = frame.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return cv2.resize(frame[y:y + s, x:x + s], (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def _read(path: Path, start: float, end: float):
    from studio.audio.io import load_audio
    from studio.video.io import probe, read_frames

    info = probe(path)
    frames = list(read_frames(info, max_frames=int(end * info.fps) + 2))
    n = int(round((end - start) * FPS))
    pick = [_square(frames[min(len(frames) - 1, int(round((start + t / FPS) * info.fps)))]) for t in range(n)]
    audio = load_audio(path, SR)[0]
    piece = audio[int(start * SR):int(start * SR) + int(n / FPS * SR)]
    return pick, np.pad(piece, (0, int(n / FPS * SR) - len(piece)))


def _grid_words(clip: str, data: Path):
    rows = [r.split() for r in (data / "grid-s1" / "align" / f"{clip}.align").read_text().splitlines() if r.strip()]
    words = [(int(a) / 25000, int(b) / 25000, w) for a, b, w in rows if w not in ("sil", "sp")]
    return words[0][0], words[-1][1], [w for _, _, w in words]


def _grid_text(words, spanish=False) -> str:
    if spanish:
        out = [GRID_ES.get(w, w.upper() if len(w) == 1 else w) for w in words]
    else:
        out = [w.upper() if len(w) == 1 else w for w in words]
    text = " ".join(out)
    return text[0].upper() + text[1:] + "."


def write_video(path: Path, frames, fps: float, audio: np.ndarray, sr: int) -> Path:
    import soundfile as sf

    from studio.video.io import VideoWriter

    wav = path.with_suffix(".src.wav")
    sf.write(wav, audio, sr)
    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, fps, audio_path=wav) as writer:
        for f in frames:
            writer.write(f)
    return path


def build_scene(data: Path, folder: Path) -> dict:
    """The two-person video and its lines: [(speaker, start, end, english, spanish)], true face side per line."""
    from studio.dubbing.transcribe import snap_to_speech
    from studio.dubbing.subtitles import SubtitleLine

    woman = data / "faces-dev" / "videos" / "styletalk_KristiNoem.mp4"
    frames, audio, lines = [], [], []
    grid = iter(GRID_CLIPS)
    spare_grid = sorted(p.stem for p in (data / "grid-s1" / "clips").glob("*.mp4"))[40:]
    woman_lines = iter(WOMAN)
    muted_woman = 9.0  # her silent footage (while the man speaks) comes from 9 s on
    t = 0.0
    for k, who in enumerate(ORDER):
        if who == "A":
            clip = next(grid)
            left, sound = _read(data / "grid-s1" / "clips" / f"{clip}.mp4", 0.0, 3.0)
            right, _ = _read(woman, muted_woman, muted_woman + 3.0)
            muted_woman += 3.0
            a, b, words = _grid_words(clip, data)
            lines.append(("A", t + a, t + b, _grid_text(words), _grid_text(words, spanish=True)))
        else:
            (s0, s1), english, spanish = next(woman_lines)
            right, sound = _read(woman, max(0.0, s0 - 0.2), s1 + 0.3)
            n = len(right)
            left = []
            for clip in spare_grid:  # the man's mouth moves, muted
                more, _ = _read(data / "grid-s1" / "clips" / f"{clip}.mp4", 0.0, 3.0)
                left += more
                if len(left) >= n:
                    break
            spare_grid = spare_grid[2:]
            left = left[:n]
            off = s0 - max(0.0, s0 - 0.2)
            snapped = snap_to_speech([SubtitleLine(1, off, off + (s1 - s0), english)], sound, SR)[0]
            lines.append(("B", t + snapped.start, t + snapped.end, english, spanish))
        frames += [np.concatenate([x, y], axis=1) for x, y in zip(left, right)]
        audio.append(sound)
        t += len(left) / FPS
    video = write_video(folder / "scene.mp4", frames, FPS, audio=np.concatenate(audio), sr=SR)
    return {"video": video, "lines": lines, "duration": t}


def write_srt(lines, path: Path, column: int, names: bool) -> Path:
    from studio.dubbing.subtitles import stamp

    out = []
    for k, line in enumerate(lines, 1):
        text = line[column]
        if names:
            text = f"{'BEN' if line[0] == 'A' else 'KRISTI'}: {text}"
        out.append(f"{k}\n{stamp(line[1])} --> {stamp(line[2])}\n{text}\n")
    path.write_text("\n".join(out), encoding="utf-8")
    return path


SPANISH_NUMBERS = ("cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince "
                   "dieciseis diecisiete dieciocho diecinueve veinte veintiuno veintidos veintitres veinticuatro "
                   "veinticinco veintiseis veintisiete veintiocho veintinueve").split()
SPANISH_TENS = {3: "treinta", 4: "cuarenta", 5: "cincuenta", 6: "sesenta", 7: "setenta", 8: "ochenta", 9: "noventa"}
# consonant letters said on their own, as Whisper writes them spelled out (the vowels are words: a, e, o, u, y)
SPANISH_LETTERS = {"b": "be", "c": "ce", "d": "de", "f": "efe", "g": "ge", "h": "hache", "j": "jota", "k": "ka",
                   "l": "ele", "m": "eme", "n": "ene", "p": "pe", "q": "cu", "r": "erre", "s": "ese", "t": "te",
                   "v": "uve", "w": "uvedoble", "x": "equis", "z": "zeta"}


def spanish_number(digits: str) -> str:
    n = int(digits)
    if n < 30:
        return SPANISH_NUMBERS[n]
    if n < 100:
        return SPANISH_TENS[n // 10] + (f" y {SPANISH_NUMBERS[n % 10]}" if n % 10 else "")
    return " ".join(SPANISH_NUMBERS[int(d)] for d in digits)  # longer numbers: digit by digit (none in the scene)


def words(text: str, language: str = "es") -> list[str]:
    """Words for WER: lower case, no punctuation; in Spanish also no accents, numbers as words, lone letters as
    their names (Whisper writes "S3", "ese tres" or "S tres" for the same sound)."""
    text = unicodedata.normalize("NFC", text.lower().replace("’", "'"))
    if language == "es":
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        text = re.sub(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])", " ", text)  # "s3" -> "s 3"
    text = re.sub(r"[^\w' -]+", " ", text).replace("-", " ")
    out = [w.strip("'") for w in text.split() if w.strip("'")]
    if language == "es":
        out = [spanish_number(w) if w.isdigit() else SPANISH_LETTERS.get(w, w) for w in out]
        out = " ".join(out).split()
    return out


def words_plain(text: str) -> list[str]:
    """The normalisation before (case and punctuation only), kept to show what the Spanish one changes."""
    text = unicodedata.normalize("NFC", text.lower().replace("’", "'"))
    text = re.sub(r"[^\w' -]+", " ", text).replace("-", " ")
    return [w.strip("'") for w in text.split() if w.strip("'")]


def _line_wavs(job_dir: Path) -> dict:
    """dubbed text -> the fitted speech of that line in the job's cache (WAV)."""
    out = {}
    for meta in (job_dir / "lines").glob("*.json"):
        out[json.loads(meta.read_text())["text"]] = meta.with_suffix(".wav")
    return out


def _onset(audio: np.ndarray, sr: int, floor_db: float = -35.0) -> float:
    """The first 5 ms frame within ``floor_db`` of the loudest one (seconds)."""
    hop = int(0.005 * sr)
    n = len(audio) // hop
    rms = np.sqrt(np.mean(audio[:n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (floor_db / 20))
    return float(loud[0] * hop / sr) if len(loud) else 0.0


def locate(track: np.ndarray, piece: np.ndarray, near: float, search: float = 0.5) -> float:
    """Where ``piece`` starts in ``track`` (both at SR), searched within ``search`` s of ``near``: the lag of the
    highest normalised cross-correlation."""
    from scipy.signal import correlate

    a = max(0, int((near - search) * SR))
    seg = track[a:a + len(piece) + int(2 * search * SR)].astype(np.float64)
    if len(seg) < len(piece):
        seg = np.pad(seg, (0, len(piece) - len(seg)))
    corr = correlate(seg, piece.astype(np.float64), mode="valid", method="fft")
    energy = np.convolve(seg ** 2, np.ones(len(piece)), mode="valid")
    lag = int(np.argmax(corr / np.sqrt(np.maximum(energy, 1e-12))))
    return (a + lag) / SR


def timing_numbers(result) -> dict:
    """Start error of each line's first sound in the dubbed track against the subtitle's start."""
    import soundfile as sf

    from studio.audio.io import load_audio, resample

    track, _ = load_audio(result.path, SR)
    wavs = _line_wavs(result.job_dir)
    errors, placement, stretch, undisturbed = [], [], [], []
    for line in result.lines:
        audio, sr = sf.read(str(wavs[line["dubbed_text"]]), dtype="float32")
        piece = resample(audio, sr, SR)
        at = locate(track, piece, line["start"])
        placement.append(abs(at - line["start"]))
        errors.append(abs(at + _onset(piece, SR) - line["slot_start"]))
        stretch.append(line["stretch"])
        if line["borrowed_before"] == 0 and line["delayed"] == 0:
            undisturbed.append(errors[-1])
    fits = [line["fits"] for line in result.lines]
    return {"lines": len(fits), "fit_share": round(float(np.mean(fits)), 3),
            "start_mae_ms": round(1000 * float(np.mean(errors)), 1),
            # lines that start in their slot (no silence borrowed before it, not pushed by the line before)
            "start_mae_ms_in_slot": round(1000 * float(np.mean(undisturbed)), 1) if undisturbed else None,
            "lines_in_slot": len(undisturbed),
            "start_max_ms": round(1000 * float(np.max(errors)), 1),
            "start_error_ms": [round(1000 * e, 1) for e in errors],
            # found in the output vs the report's start (the report is honest if this is ~0)
            "placement_vs_report_max_ms": round(1000 * float(np.max(placement)), 1),
            "stretch": [round(s, 3) for s in stretch], "rate": [line["rate"] for line in result.lines],
            "slot_s": [line["slot"] for line in result.lines], "produced_s": [line["produced"] for line in result.lines],
            "natural_s": [line["natural"] for line in result.lines],
            "borrowed_s": [round(line["borrowed_before"] + line["borrowed_after"], 3) for line in result.lines],
            "overflow_s": [line["overflow"] for line in result.lines]}


def wer_of(pairs, language: str) -> dict:
    """WER over (text said, audio at SR) pairs, with what Whisper heard; also under the plain normalisation."""
    from studio.audio.asr import transcribe_text, word_error_rate

    errors = plain = total = total_plain = 0
    heard = []
    for said, audio in pairs:
        text = transcribe_text(audio, SR, language)
        ref = words(said, language)
        errors += word_error_rate(said, text, words=lambda t: words(t, language)) * len(ref)
        plain += word_error_rate(said, text, words=words_plain) * len(words_plain(said))
        total += len(ref)
        total_plain += len(words_plain(said))
        heard.append(text)
    return {"wer": round(errors / max(1, total), 3), "wer_plain_normalisation": round(plain / max(1, total_plain), 3),
            "heard": heard}


def _synth_stages(result, language: str, voices) -> dict:
    """Per line, the TTS alone: at its own pace (rate 1, trimmed) and fitted to the slot the same way as the dub
    but with ``voices`` (line -> DubVoice; the dub's voice without its conversion)."""
    from studio.audio.io import resample
    from studio.audio.trim import trim_silence
    from studio.dubbing import speech as ds
    from studio.dubbing.timing import FitOptions, fit_line

    engine = ds.tts_engine_for(language)
    natural, fitted = [], []
    for line, voice in zip(result.lines, voices):
        first = []

        def synth(rate, text=line["dubbed_text"], voice=voice):
            sp = ds.synthesize_line(text, language=language, engine=engine, voice=voice, rate=rate)
            if not first:
                first.append(trim_silence(sp))
            return sp

        sp, _ = fit_line(synth, line["slot"], FitOptions())
        natural.append(resample(first[0].audio, first[0].sample_rate, SR))
        fitted.append(resample(sp.audio, sp.sample_rate, SR))
    return {"natural": natural, "fitted": fitted}


def wer_numbers(result, language: str, stages: dict | None = None) -> dict:
    """WER per stage: ``stages`` (name -> audio per line) plus the fitted line as dubbed (from the job's cache)
    and the line cut from the output's sound track."""
    import soundfile as sf

    from studio.audio.io import load_audio, resample

    audio, _ = load_audio(result.path, SR)
    wavs = _line_wavs(result.job_dir)
    said = [line["dubbed_text"] for line in result.lines]
    cached = []
    for line in result.lines:
        a, sr = sf.read(str(wavs[line["dubbed_text"]]), dtype="float32")
        cached.append(resample(a, sr, SR))
    cut = [audio[int(line["start"] * SR):int(line["end"] * SR) + int(0.1 * SR)] for line in result.lines]
    out = {}
    for name, pieces in {**(stages or {}), "dubbed_line": cached, "after_mix": cut}.items():
        out[name] = wer_of(list(zip(said, pieces)), language)
    final = out["after_mix"]
    return {"wer": final["wer"], "wer_plain_normalisation": final["wer_plain_normalisation"],
            "wer_stages": {k: v["wer"] for k, v in out.items()},
            "heard": [{"said": t, **{k: v["heard"][i] for k, v in out.items()}} for i, t in enumerate(said)]}


def truth_of(result, scene) -> list:
    """The scene line each dubbed line overlaps most (transcribed lines need not be the scene's lines)."""
    out = []
    for d in result.lines:
        overlap = [max(0.0, min(d["slot_end"], l[2]) - max(d["slot_start"], l[1])) for l in scene["lines"]]
        out.append(scene["lines"][int(np.argmax(overlap))])
    return out


def similarity_numbers(result, scene, source_audio, pieces=None) -> dict:
    """Resemblyzer cosine of each speaker's dubbed lines (cut from the output, or ``pieces``: audio per line at SR)
    to their original lines, and to the other speaker's."""
    from studio.audio.io import load_audio
    from studio.voice.profiles import speaker_embedding

    if pieces is None:
        dubbed, _ = load_audio(result.path, SR)
        pieces = [dubbed[int(d["start"] * SR):int(d["end"] * SR)] for d in result.lines]
    truth = truth_of(result, scene)
    out = {}
    emb = {}
    for who in ("A", "B"):
        orig = np.concatenate([source_audio[int(l[1] * SR):int(l[2] * SR)] for l in scene["lines"] if l[0] == who])
        mine = [p for p, t in zip(pieces, truth) if t[0] == who]
        if not mine:
            continue
        emb[who] = (speaker_embedding(orig, SR), speaker_embedding(np.concatenate(mine), SR))
    for who, other in (("A", "B"), ("B", "A")):
        if who in emb and other in emb:
            out[who] = {"dubbed_vs_own_original": round(float(emb[who][1] @ emb[who][0]), 3),
                        "dubbed_vs_other_original": round(float(emb[who][1] @ emb[other][0]), 3)}
    if "A" in emb and "B" in emb:
        out["originals_A_vs_B"] = round(float(emb["A"][0] @ emb["B"][0]), 3)
        out["mean_own"] = round((out["A"]["dubbed_vs_own_original"] + out["B"]["dubbed_vs_own_original"]) / 2, 3)
    return out


def lipsync_numbers(result, scene) -> dict:
    """Per re-synced line: mouth-opening correlation (best shift ±3 frames) with the new sound, of the face that
    was lip-synced and of the other face; and whether the lip-synced face is the one that really speaks."""
    from studio.audio.io import load_audio
    from studio.face.active_speaker import FaceTracks, speech_envelope
    from studio.video.io import probe, read_frames

    info = probe(result.path)
    audio, _ = load_audio(result.path, SR)
    # one pass over the frames (never the whole video in memory), one face tracker per line while its slot runs
    slots = [(int(round(line["start"] * FPS)), int(round(line["end"] * FPS))) for line in result.lines]
    tracks: dict = {}
    done: dict = {}
    try:
        for t, frame in enumerate(read_frames(info)):
            for i, (a, b) in enumerate(slots):
                if a <= t < b:
                    if i not in tracks:
                        tracks[i] = FaceTracks()
                    tracks[i].add(frame)
                    if t == b - 1:
                        done[i] = tracks.pop(i)
                        done[i].close()
    finally:
        for i, tr in tracks.items():  # slots running past the last frame
            tr.close()
            done[i] = tr
    synced, other, right_face = [], [], []
    for i, (line, truth) in enumerate(zip(result.lines, truth_of(result, scene))):
        if i not in done:
            continue
        a, tracks_i = slots[i][0], done[i]
        env = speech_envelope(audio[int(a / FPS * SR):], SR, FPS, tracks_i.frames)
        scores = tracks_i.scores(env)
        if len(scores) < 2:
            continue
        point = line.get("face_point")
        side = "left" if point is None or point[0] < SIDE else "right"  # None: the lip-sync's largest face
        for corr, (x, _) in scores:
            (synced if ("left" if x < SIDE else "right") == side else other).append(corr)
        right_face.append(side == ("left" if truth[0] == "A" else "right"))
    return {"synced_face_corr": round(float(np.mean(synced)), 3) if synced else None,
            "other_face_corr": round(float(np.mean(other)), 3) if other else None,
            "speaking_face_chosen": f"{sum(right_face)}/{len(right_face)}"}


def dub(video, srt, out, **options):
    from studio.dubbing.job import DubOptions, run_dub
    from studio.types import LipSyncOptions

    engine = options.pop("engine")
    t0 = time.perf_counter()
    result = run_dub(video, srt, out, DubOptions(lipsync=LipSyncOptions(engine=engine), **options))
    return result, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--engine", default="visemes", help="lip-sync engine (visemes: weights-free, fast)")
    ap.add_argument("--runs", nargs="+", default=["es_translated", "es_given", "en_auto"],
                    help="which dubs to run (the JSON is written after each)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "dubbing.json"))
    ap.add_argument("--no-lipsync-numbers", action="store_true",
                    help="skip the mouth-opening measurement of the outputs (it tracks every face of every frame "
                    "again: slow)")
    ap.add_argument("--sound-only", action="store_true",
                    help="es runs: dub the sound only (no speaking-face choice, no lip-sync): timing, WER and mix "
                    "are measured the same; the picture numbers are left out")
    ap.add_argument("--auto-lipsync", action="store_true", help="en_auto: lip-sync too (default: the sound only; "
                    "it measures transcription, translation, cloning and timing)")
    args = ap.parse_args()
    import torch

    from studio.audio.io import load_audio

    torch.set_num_threads(1)
    data = Path(args.data)
    work = Path(tempfile.mkdtemp(prefix="dub-bench-"))
    t0 = time.perf_counter()
    scene = build_scene(data, work)
    minutes = scene["duration"] / 60
    source_audio, _ = load_audio(scene["video"], SR)
    print(f"scene: {scene['duration']:.1f} s, {len(scene['lines'])} lines ({time.perf_counter() - t0:.1f} s to build)")
    results = {"scene": {"seconds": round(scene["duration"], 2), "lines": [
        {"speaker": l[0], "start": round(l[1], 3), "end": round(l[2], 3), "en": l[3], "es": l[4]}
        for l in scene["lines"]]}, "engine": args.engine, "machine": f"{platform.machine()}, shared 2-core CPU"}

    out = Path(args.out)

    def save():  # merged into the file, so runs made by separate processes (--runs) end up in one JSON
        results["total_seconds"] = round(time.perf_counter() - t0, 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            before = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = {}
        before.pop("total_seconds", None)
        merged = {**before, **results}
        out.write_text(json.dumps(merged, indent=2, ensure_ascii=False), encoding="utf-8")

    results["targets"] = {"fit_share": ">= 0.95", "start_mae_ms": "<= 40", "wer_es": "<= 0.15",
                          "edit_rerun_fraction": "< 0.10"}
    # 1. English -> Spanish through translation, then one line edited
    if "es_translated" in args.runs:
        run_translated(scene, work, minutes, args, results)
        save()
    if "es_given" in args.runs:
        run_given(scene, work, minutes, args, results)
        save()
    if "en_auto" in args.runs:
        run_auto(scene, work, minutes, args, results, source_audio)
        save()
    print(f"wrote {out} ({results['total_seconds']} s)")


def _lipsync(result, scene, args) -> dict:
    if args.sound_only:
        return {"lip_sync": False}
    return {} if args.no_lipsync_numbers else lipsync_numbers(result, scene)


def _base_voices(result):
    from studio.dubbing import speech as ds

    return [ds.resolve_voice(None)] * len(result.lines)


def run_translated(scene, work, minutes, args, results):
    en_named = write_srt(scene["lines"], work / "scene.en.srt", 3, names=True)
    r, secs = dub(scene["video"], en_named, work / "es_translated.mp4", target_language="es", engine=args.engine,
                  lip_sync=not args.sound_only)
    stages = _synth_stages(r, "es", _base_voices(r))
    row = {"seconds": round(secs, 1), "seconds_per_video_minute": round(secs / minutes, 1),
           **timing_numbers(r), **wer_numbers(r, "es", {"tts_alone": stages["natural"]}),
           **_lipsync(r, scene, args)}
    from studio.dubbing.job import edit_line

    t1 = time.perf_counter()
    edited = edit_line(r.job_dir, 2, "Dakota ha trabajado muy bien contra el virus.")
    row["edit_rerun_seconds"] = round(time.perf_counter() - t1, 1)
    row["edit_rerun_fraction"] = round(row["edit_rerun_seconds"] / secs, 3)
    row["edit_rerun_work"] = {k: edited.work[k] for k in ("synthesized", "spans_rendered", "translated")}
    results["es_translated"] = row
    print("es_translated:", json.dumps({k: v for k, v in row.items() if k != "heard"}), flush=True)


def run_given(scene, work, minutes, args, results):
    es = write_srt(scene["lines"], work / "scene.es.srt", 4, names=True)
    r, secs = dub(scene["video"], es, work / "es_given.mp4", engine=args.engine, lip_sync=not args.sound_only)
    stages = _synth_stages(r, "es", _base_voices(r))
    row = {"seconds": round(secs, 1), "seconds_per_video_minute": round(secs / minutes, 1),
           **timing_numbers(r), **wer_numbers(r, "es", {"tts_alone": stages["natural"]}),
           **_lipsync(r, scene, args)}
    results["es_given"] = row
    print("es_given:", json.dumps({k: v for k, v in row.items() if k != "heard"}), flush=True)


def _auto_voices(result):
    """Per line: the dub's cloned voice of the line's speaker, and the same voice without its kNN conversion."""
    from dataclasses import replace as dc_replace

    from studio.dubbing import speech as ds

    report = json.loads(result.report_path.read_text())
    folder = result.job_dir
    clones = {}
    for name in report["speakers"]:
        stem = "auto-voice-" + __import__("hashlib").sha256(name.encode()).hexdigest()[:12]
        meta = json.loads((folder / f"{stem}.json").read_text())
        clones[name] = ds._cloned(None, meta["id"], stem, meta["consent"], folder, None, engine=meta["engine"])
    if not clones:  # one speaker: the video's voice
        meta = json.loads((folder / "auto-voice.json").read_text())
        clones[None] = ds._cloned(None, meta["id"], "auto-voice", meta["consent"], folder, None, engine=meta["engine"])
    with_conv, without = [], []
    for line in result.lines:
        v = clones.get(line["speaker"], next(iter(clones.values())))
        with_conv.append(v)
        without.append(dc_replace(v, ident=v.ident + ":no-conversion", profile=dc_replace(v.profile, data=None)))
    return with_conv, without


def run_auto(scene, work, minutes, args, results, source_audio):
    """No subtitles: English speech transcribed, translated into Spanish (apertium), diarized, each speaker cloned
    from their own lines; each line also synthesized without the voice conversion."""
    r, secs = dub(scene["video"], None, work / "en_auto.mp4", voice="auto", target_language="es",
                  engine=args.engine, lip_sync=bool(args.auto_lipsync), consent="benchmark: GRID and faces-dev speakers, research use of public clips")
    truth = [l[0] for l in truth_of(r, scene)]
    found = [d["speaker"] for d in r.lines]
    pairs = {(t, f) for t, f in zip(truth, found)}
    report = json.loads(r.report_path.read_text())
    conv, plain = _auto_voices(r)
    stages = _synth_stages(r, "es", plain)
    row = {"seconds": round(secs, 1), "seconds_per_video_minute": round(secs / minutes, 1),
           "transcribed_lines": [{"start": d["slot_start"], "end": d["slot_end"], "text": d["text"],
                                  "dubbed_text": d["dubbed_text"]} for d in r.lines],
           "voice_engines": sorted({v["engine"] for v in report["speaker_voices"].values()} |
                                   ({report["voice"]["engine"]} if report["voice"].get("engine") else set())),
           "diarization": {"found": found, "truth": truth, "speakers": len(set(found)),
                           "correct": len(pairs) == len(set(truth)) == len(set(found))},
           **timing_numbers(r),
           **wer_numbers(r, "es", {"tts_alone": stages["natural"], "fitted_without_conversion": stages["fitted"]}),
           "similarity": similarity_numbers(r, scene, source_audio),
           "similarity_lines_dubbed": similarity_numbers(r, scene, source_audio, _cached_lines(r)),
           "similarity_lines_without_conversion": similarity_numbers(r, scene, source_audio, stages["fitted"]),
           "lip_sync": bool(args.auto_lipsync), **(_lipsync(r, scene, args) if args.auto_lipsync else {})}
    results["en_auto"] = row
    print("en_auto:", json.dumps({k: v for k, v in row.items() if k != "heard"}), flush=True)


def _cached_lines(result):
    import soundfile as sf

    from studio.audio.io import resample

    wavs = _line_wavs(result.job_dir)
    out = []
    for line in result.lines:
        a, sr = sf.read(str(wavs[line["dubbed_text"]]), dtype="float32")
        out.append(resample(a, sr, SR))
    return out


if __name__ == "__main__":
    main()
