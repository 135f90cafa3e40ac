"""One dubbing job: a video and its subtitles in, a dubbed, lip-synced MP4 out, resumable.

The job folder (``--jobs-dir``/NAME, or ``OUT.dubjob`` beside the output) keeps every intermediate under a key of
its inputs: translations and fitted speech per line (``lines/``), the auto-cloned voice, the mix (``mix/``) and
every rendered piece of the picture (``spans/``). A rerun after a crash or an edit redoes only what changed:
edit one subtitle line and only that line is translated and synthesized again, and only its span re-rendered.
Outputs: the MP4 (temporary file renamed at the end; never one of the inputs), target-language SRT and VTT with
the real timings beside it, and ``report.json`` in the job folder.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

from ..errors import InputError
from ..log import get_logger
from ..progress import Progress
from ..types import LipSyncOptions, PhonemeTiming, Speech
from . import render, speakers as speakers_mod, speech as dub_speech, timing
from ..hashing import file_sha256
from .files import key, read_json, write_json
from .mix import MixOptions, mix, speech_track
from .script import is_script, read_script, timed_script
from .subtitles import SubtitleLine, read_subtitles, write_subtitles
from .timing import FitOptions, LineFit
from .translate import find_translator, normalise_language

log = get_logger("dubbing.job")

VERSION = 2  # 2: lines trimmed of leading/trailing silence, long pauses shortened


@dataclass(frozen=True)
class DubOptions:
    language: Optional[str] = None  # language of the subtitles; None = from the file name (x.es.srt), else "en"
    target_language: Optional[str] = None  # translate the lines into this language first
    voice: Optional[str] = None  # None/"base", a saved voice name, or "auto" (clone from the video; needs consent)
    speaker_voices: tuple = ()  # ((speaker name, saved voice name or "base"), ...): voices for named speakers
    consent: Optional[str] = None
    # voice "auto": the engine the clones are made with; None = by the dub's language (speech.AUTO_ENGINES: knn
    # for English, kokoro - the closest Kokoro voice, no conversion - for the others); "hybrid" adds kNN conversion
    auto_engine: Optional[str] = None
    consent_covers_marked: bool = False  # --voice auto: the consent covers cloning from speech with an audio mark
    tts_engine: Optional[str] = None  # None = the engine that speaks the language
    translator: Optional[str] = None  # None = the first translator with the language pair
    fit: FitOptions = FitOptions()
    mix: MixOptions = MixOptions()
    lipsync: LipSyncOptions = LipSyncOptions()
    lip_sync: bool = True  # False: only the sound is dubbed
    keep_original_audio: bool = False  # the original sound as a second audio track
    # the inaudible watermark every fitted line carries (studio.trust.audio_mark). Off: Python API only,
    # for measuring the dub itself (tests, benchmarks), like SpeakOptions.audio_mark
    audio_mark: bool = True
    job_dir: Optional[str] = None
    # ((line number, target-language text), ...): replaces the dubbed text of those lines (an edit in the app or
    # `Studio.dub_edit_line`); only the edited lines are synthesized again and only their spans re-rendered
    line_edits: tuple = ()
    # several speakers: None = diarize the source speech when the lines name no speakers and each speaker gets
    # their own cloned voice (voice "auto"); True/False forces it. Lower threshold = more speakers found
    diarize: Optional[bool] = None
    speaker_threshold: float = 0.3
    # lip-sync the face that says each line (the one whose mouth follows the original sound best): None = when
    # the lines have two or more speakers
    active_face: Optional[bool] = None


@dataclass(frozen=True)
class DubResult:
    path: Path
    srt_path: Path
    vtt_path: Path
    report_path: Path
    job_dir: Path
    language: str
    lines: tuple = ()  # per line: the fit report (dicts)
    fit: dict = field(default_factory=dict)
    work: dict = field(default_factory=dict)  # what this run computed (not taken from the job folder)
    seconds: float = 0.0


def language_from_name(path: Path) -> Optional[str]:
    """'ep01.es.srt' -> 'es' (a known two-letter code before the suffix)."""
    from .translate import LANGUAGE_NAMES

    m = re.search(r"\.([A-Za-z]{2})(?:[-_][A-Za-z]{2})?$", Path(path).stem)
    return m.group(1).lower() if m and m.group(1).lower() in LANGUAGE_NAMES else None


def default_job_dir(out: Path) -> Path:
    return out.parent / f"{out.stem}.dubjob"


def _side_path(out: Path, suffix: str, inputs) -> Path:
    from ..video.io import same_file

    p = out.with_suffix(suffix)
    if any(same_file(p, i) for i in inputs):
        p = out.with_name(f"{out.stem}.dubbed{suffix}")
    return p


class _Cache:
    """Speech of one line, stored as WAV + JSON (its fit and phoneme timings) under its key."""

    def __init__(self, root: Path):
        self.root = root

    def load_line(self, k: str) -> Optional[tuple[Speech, LineFit]]:
        import soundfile as sf

        meta = read_json(self.root / "lines" / f"{k}.json")
        wav = self.root / "lines" / f"{k}.wav"
        if not meta or not wav.is_file():
            return None
        try:
            audio, sr = sf.read(str(wav), dtype="float32")
        except Exception:  # a damaged file is a cache miss
            return None
        phonemes = tuple(PhonemeTiming(p, a, b) for p, a, b in meta["phonemes"]) if meta["phonemes"] else None
        return Speech(audio, int(sr), phonemes, meta["text"]), LineFit(**meta["fit"])

    def save_line(self, k: str, speech: Speech, fit: LineFit) -> None:
        from ..audio.io import save_audio

        save_audio(self.root / "lines" / f"{k}.wav", speech.audio, speech.sample_rate)
        phonemes = [(p.phoneme, p.start, p.end) for p in speech.phonemes] if speech.phonemes else None
        write_json(self.root / "lines" / f"{k}.json", {"fit": asdict(fit), "phonemes": phonemes, "text": speech.text})


def _translate(lines, source: str, target: str, name: Optional[str], folder: Path, work: dict, progress) -> list[str]:
    """Target-language text per line; each line's translation is cached under its own key."""
    keys = [key("translation", s.spoken, source, target, name) for s in lines]
    cached = [read_json(folder / f"{k}.json") for k in keys]
    todo = [i for i, c in enumerate(cached) if not c]
    progress.update("dub: translate", len(lines) - len(todo), len(lines))
    if todo:
        translator = find_translator(source, target, name)
        texts = translator.translate([lines[i].spoken for i in todo], source, target)
        for i, text in zip(todo, texts):
            cached[i] = {"text": text, "source": lines[i].spoken, "translator": translator.name}
            write_json(folder / f"{keys[i]}.json", cached[i])
        work["translated"] += len(todo)
    progress.update("dub: translate", len(lines), len(lines))
    return [c["text"] for c in cached]


def apply_line_edits(texts: list[str], lines, edits) -> list[str]:
    """``texts`` with the edited lines' text replaced (line numbers as in the subtitles, 1-based)."""
    texts = list(texts)
    numbers = {s.index: i for i, s in enumerate(lines)}
    for number, text in edits:
        if int(number) not in numbers:
            raise InputError(f"line {number} does not exist; the subtitles have lines "
                             f"{min(numbers)}-{max(numbers)}")
        if not str(text).strip():
            raise InputError(f"the new text of line {number} is empty; type what the line should say")
        texts[numbers[int(number)]] = " ".join(str(text).split())
    return texts


def options_to_dict(options: DubOptions) -> dict:
    return json.loads(json.dumps(asdict(options)))


def options_from_dict(d: dict) -> DubOptions:
    """The DubOptions written by :func:`options_to_dict` (the job's request.json)."""
    from ..types import LipSyncOptions as L

    d = dict(d)
    lipsync = dict(d.pop("lipsync", {}))
    if lipsync.get("face_point") is not None:
        lipsync["face_point"] = tuple(lipsync["face_point"])
    return DubOptions(**{**d, "fit": FitOptions(**d.pop("fit", {})), "mix": MixOptions(**d.pop("mix", {})),
                         "lipsync": L(**lipsync),
                         "speaker_voices": tuple(tuple(x) for x in d.get("speaker_voices", ())),
                         "line_edits": tuple(tuple(x) for x in d.get("line_edits", ()))})


def edit_line(job_dir, number: int, text: str, device: str = "cpu", progress=None) -> DubResult:
    """Rerun the finished job in ``job_dir`` with line ``number`` saying ``text`` (target language): only that line
    is synthesized again and only its span of the picture re-rendered (everything else comes from the job's
    content-hashed cache). Earlier edits of other lines are kept."""
    job_dir = Path(job_dir).expanduser()
    request = read_json(job_dir / "request.json")
    if not request:
        raise InputError(f"{job_dir} holds no finished dubbing job (no request.json); dub the video first")
    options = options_from_dict(request["options"])
    edits = {int(n): t for n, t in options.line_edits}
    edits[int(number)] = text
    options = replace(options, line_edits=tuple(sorted(edits.items())), job_dir=str(job_dir))
    return run_dub(request["video"], request["subtitles"], request["out"], options, device=device, progress=progress)


def run_dub(video, subs, out, options: DubOptions = DubOptions(), device: str = "cpu", progress=None) -> DubResult:
    """Dub ``video`` with the lines of ``subs`` (SRT/VTT; None = transcribed from the video's English speech) into
    ``out`` (MP4). See the module's docstring."""
    from ..audio.io import load_audio, save_audio
    from ..video.io import check_output_path, probe

    t0 = time.perf_counter()
    progress = Progress.of(progress)
    out = check_output_path(out, inputs=(video, subs))
    info = probe(video, "video")
    if not info.has_video or info.is_image:
        raise InputError(f"{info.path} is not a video; dubbing needs a video (for a photo use `studio say`)")
    if info.duration <= 0 or not info.fps:
        raise InputError(f"cannot tell the length or frame rate of {info.path}; re-encode it with a constant frame rate")
    script = subs if subs is not None and is_script(subs) else None  # untimed: timed against the speech below
    if script is not None:
        read_script(script)  # a bad script fails before any work
        named_language = options.language or language_from_name(Path(script))
        subtitles, source = None, normalise_language(named_language) if named_language else None
        if not info.has_audio:
            raise InputError(f"{info.path} has no sound track to time the script against; give timed subtitles "
                             "(SRT/WebVTT)")
    elif subs is not None:
        subtitles = read_subtitles(subs, video_duration=info.duration)
        source = normalise_language(options.language or language_from_name(Path(subs)) or "en")
    else:  # transcribed from the video's own speech, below (its language detected unless given)
        subtitles, source = None, normalise_language(options.language) if options.language else None
        if not info.has_audio:
            raise InputError(f"{info.path} has no sound track to transcribe; give the lines with --subs")
    # None: the language of the transcribed speech (known after transcription)
    target = normalise_language(options.target_language) if options.target_language else source
    if target is not None:  # before any work: can the language be spoken, and translated into?
        engine = dub_speech.tts_engine_for(target, options.tts_engine)
        if source is not None and target != source:
            find_translator(source, target, options.translator)
    options.mix.check()
    voice = None if options.voice == dub_speech.AUTO else dub_speech.resolve_voice(options.voice)
    if options.voice == dub_speech.AUTO:
        if not info.has_audio:
            raise InputError(f"{info.path} has no sound track to clone a voice from; use --voice NAME or the base "
                             "voice")
        dub_speech.check_auto_consent(options.consent)
        if target is not None:
            dub_speech.auto_engine(target, options.auto_engine)  # an engine that speaks the language, before any work

    job_dir = Path(options.job_dir).expanduser() if options.job_dir else default_job_dir(out)
    job_dir.mkdir(parents=True, exist_ok=True)
    cache = _Cache(job_dir)
    job_id = _job_id(job_dir)  # one id for the whole job: in the video mark of every lip-synced span and the record
    work = {"translated": 0, "synthesized": 0, "synth_calls": 0, "spans_rendered": 0, "mixed": False,
            "assembled": False, "voice_cloned": False, "diarized": False}
    video_hash = file_sha256(info.path)
    transcribed = subtitles is None and script is None
    if subtitles is None:
        from .transcribe import transcript

        if script is not None:
            subs, source = timed_script(script, info.path, video_hash, source, info.duration, job_dir, progress)
        else:
            subs, source = transcript(info.path, video_hash, source, job_dir, progress)
        subtitles = read_subtitles(subs, video_duration=info.duration)
        target = target or source
        engine = dub_speech.tts_engine_for(target, options.tts_engine)
        if target != source:  # the detected language must be translatable into the target
            find_translator(source, target, options.translator)
    lines = list(subtitles.lines)
    source16 = None  # the source sound at 16 kHz, loaded when speakers or faces need it
    if info.has_audio and not speakers_mod.named(lines) and len(lines) > 1 and (
            options.diarize or (options.diarize is None and options.voice == dub_speech.AUTO)):
        progress.update("dub: who speaks when", 0, 1)
        source16 = load_audio(info.path, 16000, what="video", allow_silent=True)[0]
        lines = speakers_mod.diarize_lines(lines, source16, 16000, video_hash, job_dir, options.speaker_threshold)
        work["diarized"] = True
    speaker_voices = dub_speech.speaker_voices(options.speaker_voices, lines)
    speakers = list(dict.fromkeys(s.speaker for s in lines if s.speaker))

    # 1. text in the target language
    texts = [s.spoken for s in lines]
    if target != source:
        texts = _translate(lines, source, target, options.translator, job_dir / "translations", work, progress)
    texts = apply_line_edits(texts, lines, options.line_edits)
    write_json(job_dir / "request.json", {"video": str(info.path),
                                          "subtitles": str(script) if script is not None else
                                          None if transcribed else str(subs),
                                          "out": str(out), "options": options_to_dict(options)})
    if voice is None and len(speakers) >= 2:  # "auto" with several speakers: each cloned from their own lines
        source16 = source16 if source16 is not None else load_audio(info.path, 16000, what="video")[0]
        for name in speakers:
            if name.casefold() in speaker_voices:
                continue
            progress.update(f"dub: cloning the voice of {name}", 0, 1)
            reference = speakers_mod.speaker_reference(lines, name, source16, 16000)
            ident = f"{video_hash[:16]}:" + key("speaker-lines", [(s.start, s.end) for s in lines
                                                                   if s.speaker == name])[:12]
            before = read_json(job_dir / "auto-voices.json") or {}
            speaker_voices[name.casefold()] = dub_speech.speaker_auto_voice(
                reference, 16000, name, ident, options.consent, job_dir, progress, options.consent_covers_marked,
                dub_speech.auto_engine(target, options.auto_engine))
            if before.get(name) != speaker_voices[name.casefold()].ident:
                work["voice_cloned"] = True
                write_json(job_dir / "auto-voices.json", {**before, name: speaker_voices[name.casefold()].ident})
    if voice is None and any((s.speaker or "").casefold() not in speaker_voices for s in lines):
        progress.update("dub: cloning the voice", 0, 1)
        had = read_json(job_dir / "auto-voice.json")
        voice = dub_speech.auto_voice(info.path, video_hash, options.consent, job_dir, progress,
                                      options.consent_covers_marked, dub_speech.auto_engine(target, options.auto_engine))
        work["voice_cloned"] = not (had and had.get("id") == voice.ident)

    # 2. speech per line, fitted by rate and stretch
    fitted: list[tuple[Speech, LineFit]] = []
    line_keys = []
    line_voices = [speaker_voices.get((s.speaker or "").casefold(), voice) for s in lines]
    voice = voice or line_voices[0]  # the report's and the seal's voice when every speaker has their own
    for n, (s, text, line_voice) in enumerate(zip(lines, texts, line_voices)):
        progress.update("dub: speech", n, len(lines))
        k = key("line", VERSION, text, target, engine, line_voice.ident, round(s.duration, 3), asdict(options.fit),
                options.audio_mark)
        line_keys.append(k)
        hit = cache.load_line(k)
        if hit is None:
            def synth(rate, text=text, line_voice=line_voice):
                work["synth_calls"] += 1
                return dub_speech.synthesize_line(text, language=target, engine=engine, voice=line_voice, rate=rate)

            speech_, fit = timing.fit_line(synth, s.duration, options.fit)
            speech_ = replace(speech_, text=text)
            if options.audio_mark:  # last change to the line's sound, so fitting cannot weaken the mark
                speech_ = dub_speech.mark(speech_)
            cache.save_line(k, speech_, fit)
            work["synthesized"] += 1
            hit = cache.load_line(k)  # what a rerun reads (16-bit WAV), so both runs mix and render the same sound
        fitted.append(hit)
    progress.update("dub: speech", len(lines), len(lines))

    # 3. placement (borrowing from the gaps) and the report per line
    placements = timing.place([(s.index, s.start, s.end) for s in lines], [f for _, f in fitted], info.duration,
                              options.fit)

    # 4. the mix
    sr = options.mix.sample_rate
    n = int(round(info.duration * sr))
    items = [(p.start, sp) for p, (sp, _) in zip(placements, fitted)]
    track = speech_track(items, n, sr)
    regions = [(s.start, s.end) for s in lines] + [(p.start, p.end) for p in placements]
    mix_key = key("mix", VERSION, video_hash, line_keys, [(round(p.start, 4), round(p.end, 4)) for p in placements],
                  asdict(options.mix))
    mix_wav = job_dir / "mix" / f"{mix_key}.wav"
    mix_meta = read_json(mix_wav.with_suffix(".json"))
    if not (mix_wav.is_file() and mix_meta):
        progress.update("dub: mix", 0, 1)
        original = load_audio(info.path, sr, what="video", allow_silent=True)[0] if info.has_audio else None
        mixed, mix_meta = mix(original, track, regions, sr, options.mix)
        save_audio(mix_wav, mixed, sr)
        write_json(mix_wav.with_suffix(".json"), mix_meta)
        work["mixed"] = True
    progress.update("dub: mix", 1, 1)

    # 5. the picture: lip-sync where new speech plays, the rest untouched
    fps = info.fps
    n_frames = info.frames or int(round(info.duration * fps))
    phonemes = [PhonemeTiming(ph.phoneme, ph.start + p.start, ph.end + p.start)
                for p, (sp, _) in zip(placements, fitted) for ph in (sp.phonemes or ())]
    speech_regions = [(p.start, p.end) for p in placements]
    spans = render.plan_spans(speech_regions if options.lip_sync else [], fps, n_frames)
    face_points: list = [None] * len(lines)
    if options.lip_sync and info.has_audio and (options.active_face or (options.active_face is None
                                                                         and len(speakers) >= 2)):
        source16 = source16 if source16 is not None else load_audio(info.path, 16000, what="video")[0]
        face_points = speakers_mod.speaking_faces(info, lines, source16, 16000, video_hash, job_dir,
                                                  options.lipsync.tracker, progress)
    pieces, span_facts = [], []
    speech_rate = 16000
    track16 = speech_track(items, int(round(info.duration * speech_rate)), speech_rate)
    for i, span in enumerate(spans):
        progress.update("dub: picture", i, len(spans))
        sp = render.span_speech(track16, speech_rate, phonemes, span, fps) if span.synced else None
        a, b = span.seconds(fps)
        inside = [(line_keys[j], round(p.start, 4)) for j, p in enumerate(placements) if p.end > a and p.start < b]
        lipsync = options.lipsync
        point = next((face_points[j] for j, p in enumerate(placements)
                      if p.end > a and p.start < b and face_points[j] is not None), None) if span.synced else None
        if point is not None:  # the face that says the line, not the largest one
            lipsync = replace(lipsync, face_point=point, face_index=None)
        k = render.span_key(video_hash, span, fps, inside if span.synced else None, lipsync)
        piece = job_dir / "spans" / f"{k}.mp4"
        facts = read_json(piece.with_suffix(".json"))
        if not (piece.is_file() and facts):
            piece.parent.mkdir(parents=True, exist_ok=True)
            facts = render.render_span(info, span, fps, sp, piece, lipsync, device, progress, job_id=job_id)
            write_json(piece.with_suffix(".json"), facts)
            work["spans_rendered"] += 1
        pieces.append(piece)
        span_facts.append({"start": round(a, 3), "end": round(b, 3), "frames": span.stop - span.first,
                           "lip_synced": span.synced, "face_point": list(point) if point else None, **facts})
    progress.update("dub: picture", len(spans), len(spans))

    final_key = key("final", VERSION, [str(p.name) for p in pieces], mix_key, options.keep_original_audio, target)
    done = read_json(job_dir / "done.json")
    if not (done and done.get("key") == final_key and out.is_file() and done.get("out") == str(out.resolve())):
        progress.update("dub: writing the video", 0, 1)
        render.assemble(pieces, mix_wav, out, info.duration,
                        original=info.path if options.keep_original_audio and info.has_audio else None,
                        language=target, original_language=source)
        _seal(out, info.path, subs, options, voice, target, source, job_id,
              sum(f.get("frames_marked") or 0 for f in span_facts))
        work["assembled"] = True
    progress.update("dub: writing the video", 1, 1)

    # 6. subtitles with the real timings, the report
    dubbed = [SubtitleLine(s.index, round(p.sound_start, 3), round(min(p.end, info.duration), 3), text, s.speaker)
              for s, p, text in zip(lines, placements, texts)]
    srt_path = write_subtitles(dubbed, _side_path(out, ".srt", (video, subs)))
    vtt_path = write_subtitles(dubbed, _side_path(out, ".vtt", (video, subs)))
    edited = {int(n) for n, _ in options.line_edits}
    per_line = tuple({**p.as_dict(), "text": s.spoken, "dubbed_text": text, "speaker": s.speaker, "voice": v.ident,
                      "face_point": list(f) if f else None, "edited": s.index in edited}
                     for s, p, text, v, f in zip(lines, placements, texts, line_voices, face_points))
    fit_summary = timing.summary(placements)
    seconds = round(time.perf_counter() - t0, 2)
    report = {
        "version": VERSION, "video": str(info.path), "subtitles": str(Path(subs)), "transcribed": transcribed,
        "script": str(script) if script is not None else None,
        "output": str(out),
        "subtitles_out": [str(srt_path), str(vtt_path)], "encoding": subtitles.encoding,
        "format": subtitles.format, "source_language": source, "language": target, "tts_engine": engine,
        "voice": voice.describe(), "consent": voice.consent,
        "speaker_voices": {name: v.describe() for name, v in speaker_voices.items()},
        "diarized": bool(work.get("diarized")), "speakers": speakers, "stretcher": timing.stretcher_name(),
        "fit": fit_summary, "lines": list(per_line), "mix": mix_meta, "spans": span_facts,
        "lip_sync": {"enabled": options.lip_sync, **asdict(options.lipsync),
                     "note": "only spans with new speech are lip-synced; the other spans keep their frames, "
                             "re-encoded (H.264 CRF 18)"},
        "work": work, "seconds": seconds,
    }
    report_path = write_json(job_dir / "report.json", report)
    write_json(job_dir / "done.json", {"key": final_key, "out": str(out.resolve())})
    log.info("dubbed %s -> %s: %d/%d lines fit, %d synthesized, %d span(s) rendered", info.path, out,
             fit_summary["fit"], len(lines), work["synthesized"], work["spans_rendered"])
    return DubResult(out, srt_path, vtt_path, report_path, job_dir, target, per_line, fit_summary, work, seconds)


def _model_consent(model) -> Optional[str]:
    """The consent stored in an actor model's checkpoint (None: a general model, not trained on one person)."""
    from ..checkpoints import load_checkpoint, resolve

    try:
        return load_checkpoint(resolve(model)).meta.get("consent")
    except Exception as e:  # a record without it beats no record: the render itself already used the model
        log.warning("could not read the consent of model %s: %s", model, e)
        return None


def _job_id(job_dir: Path) -> str:
    """The job's id, made once and kept in the job folder (a rerun's cached spans carry it in their video mark)."""
    from ..trust.provenance import new_job_id

    saved = read_json(job_dir / "job-id.json")
    if saved and saved.get("job_id"):
        return saved["job_id"]
    job_id = new_job_id()
    write_json(job_dir / "job-id.json", {"job_id": job_id})
    return job_id


def _seal(out: Path, video: Path, subs, options: DubOptions, voice, target: str, source: str, job_id: str,
          frames_marked: int) -> None:
    """The dub's signed provenance (C2PA manifest and signed sidecar), as every output of the studio has; the
    output is removed if it cannot be sealed."""
    from ..trust.provenance import seal

    engine = options.lipsync.engine if options.lip_sync else None
    consents = {"voice": voice.consent or "the bundled base voice (no person's voice is cloned)",
                "face_model": _model_consent(options.lipsync.model) if options.lipsync.model else
                (f"no face model (the {engine} engine)" if engine else "the picture is not lip-synced")}
    seal(out, kind="dub", inputs={"video": video, "subtitles": Path(subs) if subs else None},
         models=[{"role": "voice", **voice.describe()},
                 {"role": "face", "engine": engine, "name": Path(options.lipsync.model).name
                  if options.lipsync.model else None}],
         settings={"source_language": source, "language": target, "lip_sync": options.lip_sync,
                   "tts_engine": options.tts_engine, "translator": options.translator,
                   "keep_original_audio": options.keep_original_audio},
         consents=consents, job_id=job_id,
         marks={"audio": options.audio_mark, "video": frames_marked > 0,
                **({"video_mark": {"job": job_id[:6], "frames": frames_marked,
                                   "label": options.lipsync.label}} if frames_marked else {})})
