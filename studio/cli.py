"""The `studio` command. A thin layer over ``studio.api``: parse, call, show progress, print the result."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional

from .errors import InputError, StudioError


class _ProgressBars:
    """A Progress callback drawing one tqdm bar per stage on stderr. A stage is named by the text before " · ";
    what follows (e.g. live validation numbers) only changes the bar's label, so rate and ETA keep counting."""

    def __init__(self):
        self.bars: dict = {}

    def __call__(self, stage: str, done: int, total: Optional[int]) -> None:
        from tqdm import tqdm

        key = stage.split(" · ")[0]
        bar = self.bars.get(key)
        if bar is None:
            self.close()
            # initial=done: a resumed run's rate counts only the steps taken in this run
            bar = self.bars[key] = tqdm(total=total, desc=stage, unit="step", leave=False, file=sys.stderr,
                                        dynamic_ncols=True, initial=done)
        elif bar.desc != stage:
            bar.set_description_str(stage, refresh=False)
        if total is not None and bar.total != total:
            bar.total = total
        if done >= bar.n:
            bar.update(done - bar.n)
        else:
            bar.n = done
            bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("a point is X,Y in pixels, e.g. 320,180") from None
    return x, y


def _add_lipsync_options(p: argparse.ArgumentParser) -> None:
    from .lipsync.base import ENGINES
    from .lipsync import engines as _  # noqa: F401  (registers the engines)

    p.add_argument("--face", required=True, help="video or photo with the face to animate")
    p.add_argument("-o", "--out", required=True, help="output MP4 path")
    p.add_argument("--engine", default="auto", choices=["auto", *ENGINES.names()],
                   help="auto = a general neural checkpoint when installed, else the weights-free visemes engine")
    p.add_argument("--model", help="checkpoint name or path for the wav2lip engine (see `studio checkpoints`)")
    p.add_argument("--face-index", type=int, help="which face when there are several (0 = largest)")
    p.add_argument("--face-point", type=_point, metavar="X,Y", help="use the face at this pixel")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--fps", type=float, default=25.0, help="frame rate used when the face is a still photo")
    p.add_argument("--label", action="store_true", help="draw a visible \"AI-generated\" label in a corner")
    p.add_argument("--footage", help="visemes engine: a video of the same person speaking to learn the mouth from "
                                     "(default: the face video itself; useful with a photo)")


def _lipsync_overrides(args) -> dict:
    return dict(engine=args.engine, model=args.model, face_index=args.face_index, face_point=args.face_point,
                batch_size=args.batch_size, fps_for_image=args.fps, label=args.label, footage=args.footage)


def _print_result(result) -> None:
    print(f"wrote {result.path}")
    print(f"engine: {result.engine}; {result.frames} frames at {result.fps:g} fps ({result.duration:.2f} s); "
          f"face found in {result.frames_with_face} frames")
    if result.frames_with_face == 0:
        print("warning: no face was found in any frame; the video only got the new audio", file=sys.stderr)
    if result.audio_path:
        print(f"audio: {result.audio_path}")
    if result.sync is not None:
        print(result.sync.summary())
    if getattr(result, "personalization", None) is not None:
        print(result.personalization.describe())
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds_per_stage.items())
    print(f"time per stage: {stages}")
    if result.job_id:
        print(f"job {result.job_id}: video mark in {result.frames_marked} frames (job {result.job_id[:6]})")
    print(f"provenance: {Path(result.path).name}.provenance.json (signed; the audio and video marks and a C2PA "
          "manifest are in the file; `studio verify FILE` checks them)")


def _speak_options(args):
    from .voice.service import SpeakOptions

    kwargs = {k: v for k, v in dict(rate=args.rate, duration=args.duration, pitch_semitones=args.pitch,
                                    sample_rate=args.sample_rate, engine=args.tts, language=args.lang,
                                    tts_voice=args.tts_voice).items() if v is not None}
    return SpeakOptions(**kwargs)


def _add_speak_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--voice", help="a voice name (see `studio voice list`), or a reference recording to clone "
                   "for this job (needs --consent); default: the bundled base voice")
    p.add_argument("--consent", help="with --voice FILE: who agreed to have their voice cloned, and when (at least 10 characters)")
    p.add_argument("--rate", type=float, help="speaking rate, 1.0 = normal")
    p.add_argument("--duration", type=float, help="fit the line to this many seconds (keeps the pitch)")
    p.add_argument("--pitch", type=float, help="pitch shift in semitones")
    p.add_argument("--sample-rate", type=int, choices=[16000, 22050, 24000, 48000])
    p.add_argument("--tts", help="speech engine: piper (English) or kokoro (en, es, fr, it, pt); default: the first "
                   "that speaks --lang (see `studio tts`)")
    p.add_argument("--lang", help="language of the text: en (default), es, fr, it, pt")
    p.add_argument("--tts-voice", help="one of the speech engine's own voices (see `studio tts`), e.g. jm_kumo")


def _text(args) -> str:
    if args.text_file:
        return Path(args.text_file).read_text(encoding="utf-8")
    return args.text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio", description="Make a person in a video or photo say new words.")
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda[:N]")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)
    # --device may also follow the subcommand (studio train ... --device cuda)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default=argparse.SUPPRESS, help="auto (cuda when present), cpu or cuda[:N]")
    _sub_add = sub.add_parser
    sub.add_parser = lambda *a, **k: _sub_add(*a, parents=[common], **k)  # noqa: E731

    p = sub.add_parser("lipsync", help="make the face in a video/photo follow an audio track")
    _add_lipsync_options(p)
    p.add_argument("--audio", required=True, help="audio file (WAV, MP3, FLAC...) or a video with sound")
    p.add_argument("--personalize", action="store_true",
                   help="first fine-tune a model on the face video's own footage (10-60 s of the person talking; "
                   "cached, so a second render starts at once); needs --consent")
    p.add_argument("--budget-minutes", type=float, default=5.0, help="with --personalize: time for the fine-tune")
    p.add_argument("--consent", help='with --personalize: who agreed to have a model trained on their face, and '
                   'when, e.g. "Anna Novak agreed on 2026-11-20"')
    p.add_argument("--init", help="with --personalize: the generator to start from (default: the bundled base "
                   "model; e.g. wav2lip.pth if you have the official one)")

    p = sub.add_parser("say", help="speak text and lip-sync a face to it")
    _add_lipsync_options(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text")
    g.add_argument("--text-file")
    _add_speak_options(p)
    p.add_argument("--save-audio", help="also save the speech to this WAV file")

    p = sub.add_parser("speak", help="speak text to an audio file")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text")
    g.add_argument("--text-file")
    _add_speak_options(p)
    p.add_argument("-o", "--out", required=True, help="output .wav/.flac path")

    sub.add_parser("voices", help="list the voices speak/say accept")
    sub.add_parser("tts", help="list the speech engines, their languages and voices")

    p = sub.add_parser("voice", help="create, list or delete cloned voices")
    vsub = p.add_subparsers(dest="voice_command", required=True)
    q = vsub.add_parser("create", help="clone a voice from a reference recording (10 s to a few minutes)")
    q.add_argument("--name", required=True, help="voice name, used later as --voice NAME")
    q.add_argument("--from", dest="source", required=True, help="reference: audio file or a video with the speaker")
    q.add_argument("--consent", required=True, help='who agreed, and when (at least 10 characters), e.g. "Anna Novak agreed on 2026-11-20"')
    q.add_argument("--engine", help="voice engine (see `studio voice engines`): knn/global convert the English base "
                   "voice; kokoro (a Kokoro style fitted to the speaker) and hybrid (that, then kNN) speak en, es, fr, "
                   "it, pt; default: the benchmark's best (studio.voice.profiles.DEFAULT_ENGINE)")
    q.add_argument("--fit-seconds", type=float, help="kokoro/hybrid: CPU seconds for fitting the style (default 300)")
    q.add_argument("--overwrite", action="store_true", help="replace a voice of the same name")
    q.add_argument("--consent-covers-marked", action="store_true",
                   help="the reference carries a watermark (speech the studio or another Perth user made) and the "
                   "consent covers cloning from such audio; without this such references are refused")
    vsub.add_parser("list", help="list saved voices")
    q = vsub.add_parser("delete", help="delete a saved voice")
    q.add_argument("name")
    vsub.add_parser("engines", help="list voice engines")

    p = sub.add_parser("train", help="train (or resume) an actor model on footage of one person")
    p.add_argument("--name", required=True, help="model name, used later as `studio lipsync --model NAME`")
    p.add_argument("--footage", nargs="+", help="folder(s) or video files of the person talking (or a prepared dataset)")
    p.add_argument("--minutes", type=float,
                   help="stop (with a checkpoint) after this many minutes; the sync expert gets at most its share "
                   "(its fraction of the steps, at most half) and the generator the rest; a model whose generator "
                   "has not reached the preset's minimum steps is saved unfinished; --resume continues")
    p.add_argument("--resume", action="store_true", help="continue where the last run of this model stopped")
    p.add_argument("--consent", help='who agreed to have a model trained on their face, and when (at least 10 '
                   'characters), e.g. "Anna Novak agreed on 2026-11-20"; required for a new model, stored in it; '
                   "--resume reuses it")
    p.add_argument("--consent-covers-marked", action="store_true",
                   help="the footage may carry the studio's video mark (renders) and the consent covers training "
                   "on them; without this such footage is refused")
    p.add_argument("--img-size", type=int, choices=[96, 192], help="face resolution (default 96)")
    p.add_argument("--preset", choices=["gpu", "cpu", "debug"], help="default: gpu on CUDA, else cpu")
    p.add_argument("--steps", type=int,
                   help="generator steps (overrides the preset; with --resume: the run's new length, longer or shorter)")
    p.add_argument("--expert-steps", type=int, help="sync expert steps (overrides the preset)")
    p.add_argument("--gan-weight", type=float,
                   help="add the visual-quality GAN loss with this weight (0.07 in the published recipe; default off)")
    p.add_argument("--init", help="fine-tune from this generator checkpoint (e.g. wav2lip.pth, with --img-size 96)")
    p.add_argument("--init-expert", help="with --init: reuse this trained sync expert (a model's expert.pt) and skip "
                   "training a new one (unless --expert-steps)")
    p.add_argument("--lr", type=float, help="starting learning rate (overrides the preset; 1e-4 suits fine-tuning)")
    p.add_argument("--cross-clip-refs", type=float,
                   help="fraction of training samples whose reference face comes from another clip (0 to 1)")
    p.add_argument("--mouth-weight", type=float,
                   help="extra L1 weight on the mouth box: 3 counts its pixels 4x (0 = plain L1, as published)")

    sub.add_parser("models", help="list trained actor models")
    p = sub.add_parser("verify", help="check a file for the studio's marks, manifest and signed provenance")
    p.add_argument("file", help="a video or audio file (its FILE.provenance.json is read when it is beside it)")
    p.add_argument("--sidecar", help="the provenance record, when it is not beside the file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--frames", type=int, default=300, help="frames to search for the video mark (0 = all)")
    p = sub.add_parser("detect", help="how likely a talking-face video's mouth was re-synced (any tool, marked or not)")
    p.add_argument("file", help="a video with a talking face and its sound")
    sub.add_parser("checkpoints", help="list known checkpoints and whether they are installed")
    sub.add_parser("engines", help="list lip-sync engines")
    _add_dub_parser(sub)

    p = sub.add_parser("app", help="start the browser app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="ask Gradio for a public share link (needs internet)")
    return parser


def _run(args) -> int:
    from .api import Studio

    if args.command == "app":
        from .ui.app import launch

        launch(host=args.host, port=args.port, share=args.share, device=args.device)
        return 0
    if args.command == "checkpoints":
        from .checkpoints import list_checkpoints

        for info in list_checkpoints():
            print(info.describe() if hasattr(info, "describe") else info)
        return 0
    if args.command == "tts":
        from .voice.tts import TTS_ENGINES

        for name in TTS_ENGINES.names():
            factory = TTS_ENGINES.entry(name).factory
            state = "" if name in TTS_ENGINES.available_names() else " (not installed)"
            default = factory.voices[0]
            if name == "kokoro":
                from .voice.kokoro import DEFAULT_VOICES

                default = ", ".join(f"{lang} {v}" for lang, v in DEFAULT_VOICES.items())
            print(f"{name}{state}: languages {', '.join(factory.languages)}; voices {', '.join(factory.voices)} "
                  f"(default: {default})")
            print(f"    {TTS_ENGINES.entry(name).description}")
        return 0
    if args.command == "engines":
        from .lipsync.base import ENGINES
        from .lipsync import engines as _  # noqa: F401

        _print_registry(ENGINES)
        return 0

    studio = Studio(device=args.device)
    if args.command == "verify":
        result = studio.verify(args.file, sidecar=args.sidecar, max_frames=args.frames or None)
        if args.json:
            import json

            print(json.dumps(result.as_dict(), indent=2))
        else:
            print(result.summary())
        return 1 if result.tampered else 0
    if args.command == "detect":
        print(studio.detect(args.file).summary())
        return 0
    if args.command == "voices":
        for name in studio.voices():
            print(name)
        return 0

    if args.command == "models":
        models = studio.list_models()
        for m in models:
            print(m.describe())
        if not models:
            print("no actor models yet; train one with `studio train --name NAME --footage FOLDER`")
        return 0

    if args.command == "voice" and args.voice_command in ("list", "delete", "engines"):
        if args.voice_command == "list":
            voices = studio.list_voices()
            for v in voices:
                print(v.summary())
            if not voices:
                print("no voices yet; create one with `studio voice create --name NAME --from ref.wav --consent ...`")
        elif args.voice_command == "delete":
            studio.delete_voice(args.name)
            print(f"deleted voice {args.name}")
        else:
            from .voice.cloning import VOICE_CONVERTERS
            from .voice.profiles import KOKORO_ENGINES, voice_engines

            _print_registry(VOICE_CONVERTERS)
            for name, description in KOKORO_ENGINES.items():
                print(f"{name}{'' if name in voice_engines() else ' (not installed)'}: {description}")
        return 0

    from .voice.service import looks_like_file

    callback = _ProgressBars()
    try:
        if getattr(args, "voice", None) and (looks_like_file(args.voice) or Path(args.voice).exists()):
            # a reference recording given directly: an unsaved voice for this job only (consent still required)
            args.voice = studio.create_voice(args.voice, consent=args.consent, progress=callback)
        if args.command == "voice":
            extra = {"engine": args.engine} if args.engine else {}
            if args.fit_seconds is not None:
                extra["fit_seconds"] = args.fit_seconds
            v = studio.create_voice(args.source, name=args.name, consent=args.consent, overwrite=args.overwrite,
                                    progress=callback, consent_covers_marked=args.consent_covers_marked, **extra)
            print(f"created voice {v.name} at {v.path}")
            print(v.summary())
        elif args.command == "train":
            from .lipsync.training.service import options_from_cli

            print(studio.train(options_from_cli(args), progress=callback).describe())
        elif args.command == "lipsync":
            personal = dict(personalize=True, budget_minutes=args.budget_minutes, consent=args.consent,
                            personalize_from=args.init) if args.personalize else {}
            _print_result(studio.lipsync(args.face, args.audio, args.out, progress=callback,
                                         **_lipsync_overrides(args), **personal))
        elif args.command == "say":
            result = studio.say(args.face, _text(args), args.out, voice=args.voice, speak_options=_speak_options(args),
                                save_audio=args.save_audio, progress=callback, **_lipsync_overrides(args))
            _print_result(result)
        elif args.command == "dub":
            return _dub(studio, args, callback)
        elif args.command == "speak":
            import soundfile as sf

            path = studio.speak_to_file(_text(args), args.out, voice=args.voice, options=_speak_options(args),
                                        progress=callback)
            info = sf.info(str(path))
            print(f"wrote {path} ({info.frames / info.samplerate:.2f} s at {info.samplerate} Hz)")
            print(f"provenance: {path.name}.provenance.json (signed; `studio verify {path.name}` checks it)")
    finally:
        callback.close()
    return 0


def _add_dub_parser(sub) -> None:
    from .lipsync.base import ENGINES
    from .lipsync import engines as _  # noqa: F401  (registers the engines)

    p = sub.add_parser("dub", help="dub a video from its subtitles (SRT/WebVTT), optionally translated, lip-synced")
    p.add_argument("--video", help="the video to dub")
    p.add_argument("--subs", help="timed lines (SRT or WebVTT, any common encoding); 'NAME: text' or <v NAME> "
                   "names a speaker; without it the video's speech is transcribed (its language detected: Whisper base; "
                   "English by tiny.en)")
    p.add_argument("-o", "--out", help="output MP4 (default VIDEO.LANG.mp4 beside the video)")
    p.add_argument("--to", help="translate the lines into this language first (e.g. es; apertium: en<->es)")
    p.add_argument("--lang", help="language of the subtitles (default: from a name like ep01.es.srt, else en) or, "
                   "without --subs, of the speech (default: detected)")
    p.add_argument("--edit-line", nargs=2, metavar=("N", "TEXT"),
                   help="with --job-dir of a finished dub: line N says TEXT (the dub's language); only that line "
                   "is synthesized and rendered again")
    p.add_argument("--voice", help="a saved voice name, 'auto' (clone the speaker from the video; needs --consent) "
                   "or a reference recording; default: the base voice")
    p.add_argument("--consent", help="for --voice auto or a recording: who agreed to have their voice cloned, and when")
    p.add_argument("--consent-covers-marked", action="store_true",
                   help="with --voice auto: the video's speech may carry an audio mark and the consent covers cloning it")
    p.add_argument("--auto-engine", choices=["knn", "global", "kokoro", "hybrid"],
                   help="with --voice auto: the engine each clone is made with (default: knn for English, kokoro - "
                   "the closest Kokoro voice - for other languages; hybrid adds kNN conversion to it)")
    p.add_argument("--speaker-voice", action="append", default=[], metavar="SPEAKER=VOICE",
                   help="a saved voice for the lines of one named speaker (repeatable), e.g. ANNA=anna")
    p.add_argument("--tts", help="speech engine (default: the first that speaks the dub's language)")
    p.add_argument("--translator", help="translation engine (default: the first with the language pair)")
    p.add_argument("--engine", default="auto", choices=["auto", *ENGINES.names()], help="lip-sync engine")
    p.add_argument("--model", help="checkpoint name or path for the wav2lip engine")
    p.add_argument("--no-lipsync", action="store_true", help="dub the sound only; the picture stays as it is")
    p.add_argument("--label", action="store_true", help="draw a visible \"AI-generated\" label on lip-synced spans")
    p.add_argument("--keep-original-audio", action="store_true", help="keep the original sound as a second track")
    p.add_argument("--loudness", type=float, default=-16.0, help="loudness target in LUFS (-16 web, -23 EBU R128)")
    p.add_argument("--background", default="duck", choices=["duck", "repet", "none"],
                   help="the original sound under the new speech: ducked (default), REPET-SIM estimate, or none")
    p.add_argument("--max-rate", type=float, default=1.3, help="fastest speaking rate used to fit a line")
    p.add_argument("--max-stretch", type=float, default=1.25, help="fastest pitch-keeping time-stretch after that")
    p.add_argument("--job-dir", help="job folder for resumable intermediates (default OUT.dubjob beside the output)")
    p.add_argument("--batch", help="CSV or JSON file of jobs (columns video,subs[,out,to,lang,voice,consent,engine,"
                   "model,name]); needs --jobs-dir")
    p.add_argument("--jobs-dir", help="with --batch: one job folder per video under this folder")
    p.add_argument("--workers", type=int, default=1, help="with --batch: local worker processes (default 1)")
    p.add_argument("--ray", metavar="auto|ADDRESS", help="with --batch: run the jobs as tasks on an existing Ray "
                   "cluster (auto: the one this machine belongs to); job folders must be on shared storage")


def _dub(studio, args, callback) -> int:
    from dataclasses import replace

    from .dubbing.job import DubOptions
    from .dubbing.mix import MixOptions
    from .dubbing.timing import FitOptions
    from .types import LipSyncOptions

    pairs = []
    for item in args.speaker_voice:
        speaker, sep, voice = item.partition("=")
        if not sep or not speaker.strip() or not voice.strip():
            raise InputError(f"--speaker-voice {item!r}: write SPEAKER=VOICE, e.g. ANNA=anna")
        pairs.append((speaker.strip(), voice.strip()))
    options = DubOptions(language=args.lang, target_language=args.to, voice=args.voice, consent=args.consent,
                         auto_engine=args.auto_engine, consent_covers_marked=args.consent_covers_marked, speaker_voices=tuple(pairs),
                         tts_engine=args.tts, translator=args.translator,
                         fit=replace(FitOptions(), max_rate=args.max_rate, max_stretch=args.max_stretch),
                         mix=replace(MixOptions(), loudness=args.loudness, background=args.background),
                         lipsync=LipSyncOptions(engine=args.engine, model=args.model, label=args.label), lip_sync=not args.no_lipsync,
                         keep_original_audio=args.keep_original_audio, job_dir=args.job_dir)
    if args.batch:
        if not args.jobs_dir:
            raise InputError("--batch needs --jobs-dir FOLDER (one job folder per video goes there)")
        result = studio.dub_batch(args.batch, args.jobs_dir, workers=args.workers, options=options, progress=callback,
                                  ray=args.ray)
        callback.close()
        for o in result.outcomes:
            print(f"{o.status:7s} {o.name}: " + (o.error if o.status == "failed" else str(o.out)))
        done = sum(o.status == "done" for o in result.outcomes)
        skipped = sum(o.status == "skipped" for o in result.outcomes)
        print(f"{len(result.outcomes)} job(s): {done} done, {skipped} skipped (finished before), "
              f"{len(result.failed)} failed" + ("; run the same command again to retry them" if result.failed else ""))
        return 1 if result.failed else 0
    if args.edit_line:
        if not args.job_dir:
            raise InputError("--edit-line needs --job-dir FOLDER: the job folder of the finished dub")
        number, text = args.edit_line
        if not number.strip().isdigit():
            raise InputError(f"--edit-line {number!r}: the line number comes first, e.g. --edit-line 3 \"Hola.\"")
        result = studio.dub_edit_line(args.job_dir, int(number), text, progress=callback)
    elif not args.video:
        raise InputError("studio dub needs --video (and --subs, or its speech is transcribed; or --batch FILE "
                         "--jobs-dir FOLDER)")
    else:
        result = studio.dub(args.video, subs=args.subs, out=args.out, options=options, progress=callback)
    callback.close()
    print(f"wrote {result.path} ({result.language}); subtitles {result.srt_path}, {result.vtt_path}")
    fit = result.fit
    print(f"lines: {fit['fit']}/{fit['lines']} fit their slots (max rate {fit['max_rate']:g}, max stretch "
          f"{fit['max_stretch']:g}, mean start shift {fit['mean_start_shift']:.3f} s)")
    for line in result.lines:
        if not line["fits"]:
            print(f"warning: line {line['index']} overflows by {line['overflow']:.2f} s "
                  f"(slot {line['slot']:.2f} s, speech {line['produced']:.2f} s)", file=sys.stderr)
    w = result.work
    print(f"this run: {w['translated']} translated, {w['synthesized']} synthesized, {w['spans_rendered']} span(s) "
          f"rendered; report {result.report_path} ({result.seconds:.1f} s)")
    return 0


def _print_registry(registry) -> None:
    for name in registry.names():
        print(f"{name}: {registry.entry(name).description}")


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .stops import exit_code, stops_raise

    try:
        with stops_raise():  # SIGTERM and SIGHUP stop a job like Ctrl-C: children ended, partial files removed
            return _run(args)
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or stops.Stopped for SIGTERM/SIGHUP
        from .paths import models_dir

        if args.command == "train" and (models_dir() / args.name / "state.pt").exists():  # saved on the way out
            print(f"interrupted; the run was saved: `studio train --name {args.name} --resume` continues it",
                  file=sys.stderr)
        elif args.command == "app":
            print("stopped; running jobs were cancelled and the app's temporary files removed", file=sys.stderr)
        else:
            print("interrupted; nothing was written", file=sys.stderr)
        return exit_code(e)


if __name__ == "__main__":
    sys.exit(main())
