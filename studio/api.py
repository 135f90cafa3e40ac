"""The one public API. The CLI (``studio/cli.py``) and the Gradio app (``studio/ui``) call only this.

    from studio import Studio
    s = Studio(device="auto")
    s.lipsync(face="talk.mp4", audio="line.wav", out="out.mp4")
    s.say(face="photo.jpg", text="Hello", out="out.mp4")
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

# the option/result types and the device choice live below the API (the pipeline and the trainer use them too)
from .device import resolve_device
from .progress import Progress, ProgressCallback
from .types import LipSyncOptions, LipSyncResult

__all__ = ["Studio", "LipSyncOptions", "LipSyncResult", "resolve_device"]


class Studio:
    """Entry point for scripts, the CLI and the app. Cheap to create: models load on first use."""

    def __init__(self, device: str = "auto", *, model_paths: bool = True):
        """``model_paths=False`` accepts models by name only, never a file path (the app: a remote client must
        not make the server load a file of its choosing)."""
        self.device = resolve_device(device)
        self.model_paths = model_paths

    # ---- lip-sync -------------------------------------------------------------------------------------------
    def engines(self) -> list[str]:
        """Names of the lip-sync engines this machine can run now (plus "auto")."""
        from .lipsync.engines import ENGINES

        return ["auto", *ENGINES.available_names()]

    def lipsync_models(self, *, ready_only: bool = True) -> list[str]:
        """Names of the installed network checkpoints and actor models (what ``model=`` accepts by name); by default
        without unfinished actor models, which lip-sync refuses (``ready_only=False`` lists them too)."""
        from .checkpoints import REGISTRY, installed_names

        # generators only: a sync expert (lipsync_expert, base_expert) cannot render
        names = [n for n in installed_names() if n not in REGISTRY or REGISTRY[n].kind == "wav2lip"]
        if ready_only:
            from .lipsync.training.service import list_models

            unfinished = {m.name for m in list_models() if not m.ready}
            names = [n for n in names if n not in unfinished]
        return names

    def _checked(self, options: LipSyncOptions) -> LipSyncOptions:
        """With ``model_paths=False`` the model must be a name; it is replaced by its file in a managed folder."""
        if self.model_paths or not options.model:
            return options
        from .checkpoints import resolve

        return _replace(options, model=str(resolve(options.model, allow_paths=False)))

    def lipsync(
        self,
        face: str | Path,
        audio: str | Path,
        out: str | Path,
        *,
        options: LipSyncOptions = LipSyncOptions(),
        progress: Progress | ProgressCallback | None = None,
        **overrides,
    ) -> LipSyncResult:
        """Make the face in ``face`` (video or photo) speak ``audio`` (audio file or a video with sound).

        Keyword ``overrides`` replace fields of ``options`` (e.g. ``engine="visemes"``).
        """
        from .lipsync.pipeline import check_face_source, load_speech_file, run_lipsync
        from .video.io import check_output_path

        check_output_path(out, inputs=(face, audio))  # before any work: never overwrite a source
        check_face_source(face)
        options = self._checked(_with(options, overrides))
        speech = load_speech_file(audio)
        report = None
        if options.personalize:  # fine-tune on the face video's own footage first (cached), or fall back
            from .lipsync.personalize import personalized_options

            options, report = personalized_options(face, options, self.device, Progress.of(progress))
        result = run_lipsync(face, speech, out, options, self.device, Progress.of(progress))
        result = _replace(result, personalization=report) if report is not None else result
        _seal_render(result, "lipsync", options, inputs={"face": face, "audio": audio})
        return result

    def say(
        self,
        face: str | Path,
        text: str,
        out: str | Path,
        *,
        voice: str | None = None,
        speak_options=None,
        save_audio: str | Path | None = None,
        options: LipSyncOptions = LipSyncOptions(),
        progress: Progress | ProgressCallback | None = None,
        **overrides,
    ) -> LipSyncResult:
        """Speak ``text`` (in ``voice``, a voice profile name, or the bundled base voice) and lip-sync ``face`` to it."""
        from .lipsync.pipeline import check_face_source, run_lipsync, save_speech
        from .video.io import check_output_path

        check_output_path(out, inputs=(face,))
        if save_audio is not None:
            check_output_path(save_audio, suffixes=(".wav", ".flac"), inputs=(face, out))
        check_face_source(face)  # fail on a bad face file before spending time on speech
        prog = Progress.of(progress)
        options = self._checked(_with(options, overrides))
        from .voice.service import resolve_voice

        profile = resolve_voice(voice)
        speech = self.speak_speech(text, voice=profile, options=speak_options, progress=prog)
        audio_path = save_speech(speech, save_audio) if save_audio is not None else None
        result = run_lipsync(face, speech, out, options, self.device, prog)
        record = dict(text=text, voice=profile, speak_options=speak_options)
        if audio_path is not None:
            _seal_render(audio_path, "say (audio)", None, **record)
        _seal_render(result, "say", options, inputs={"face": face}, **record)
        return _replace(result, audio_path=audio_path)

    # ---- voices ---------------------------------------------------------------------------------------------
    def speak_speech(self, text: str, *, voice=None, options=None, progress=None, language: Optional[str] = None):
        """Like :meth:`speak` but returns a ``studio.types.Speech`` with phoneme timings."""
        from .voice import service

        if language is not None:  # shorthand for options.language
            options = _replace(options or service.SpeakOptions(), language=language)
        kwargs = {} if options is None else {"options": options}
        return service.speak(text, voice=voice, progress=Progress.of(progress), **kwargs)

    def speak(self, text: str, *, voice=None, options=None, progress=None,
              language: Optional[str] = None) -> tuple[np.ndarray, int]:
        """Speak ``text`` (in ``language``: "en" by default, "es", "fr", "it", "pt"; ``studio.voice.tts.
        engines_for_language`` says which engines speak it); returns (float32 mono audio, sample rate)."""
        speech = self.speak_speech(text, voice=voice, options=options, progress=progress, language=language)
        return speech.audio, speech.sample_rate

    def speak_to_file(self, text: str, out, *, voice=None, options=None, progress=None) -> Path:
        """Speak ``text`` into ``out`` (.wav/.flac/.ogg) with its signed provenance record beside it."""
        from .audio.io import save_audio
        from .voice.service import resolve_voice

        profile = resolve_voice(voice)
        speech = self.speak_speech(text, voice=profile, options=options, progress=progress)
        path = save_audio(out, speech.audio, speech.sample_rate)
        _seal_render(path, "speak", None, text=text, voice=profile, speak_options=options)
        return path

    # ---- trust ----------------------------------------------------------------------------------------------
    def verify(self, path, *, sidecar=None, max_frames: Optional[int] = 300):
        """Check a file for the studio's audio mark, C2PA manifest and signed provenance record
        (``studio.trust.verify.VerifyResult``; ``.verdict`` is "made with studio", "tampered" or
        "no studio marks found")."""
        from .trust.verify import verify

        return verify(path, sidecar=sidecar, max_frames=max_frames)

    def read_video_mark(self, path, *, max_frames: Optional[int] = 300):
        """The studio's video mark in ``path``: ``studio.trust.video_mark.VideoMarkResult`` (``.found``, ``.job``,
        the 6 hex digits of the job id it carries, ``.confidence``, ``.frames_used``)."""
        from .trust.video_mark import read_video_mark

        return read_video_mark(path, max_frames=max_frames)

    def detect(self, path):
        """How likely the talking face in video ``path`` had its mouth re-synced (by any tool, marked or not):
        ``studio.trust.detect.DetectResult`` with ``.probability`` (0..1), ``.verdict`` and the cues measured."""
        from .trust.detect import detect

        return detect(path)

    def sync_score(self, path, audio=None):
        """How well the mouth in video ``path`` follows ``audio`` (default: the video's own sound):
        ``studio.types.SyncScore`` (score 0..1, best lag, weak segments)."""
        from .lipsync.pipeline import load_speech_file
        from .lipsync.sync_score import score_video

        return score_video(path, None if audio is None else load_speech_file(audio))

    def detect_audio_mark(self, path) -> float:
        """Confidence in [0, 1] that the sound of ``path`` (audio, or a video's sound) carries the audio mark."""
        from .audio.io import load_audio
        from .trust.audio_mark import detect

        return detect(*load_audio(path, what="audio", allow_silent=True))

    def voices(self) -> list[str]:
        """Voice names that `speak`/`say` accept ("base" and every saved voice)."""
        from .voice.service import available_voices

        return available_voices()

    def create_voice(self, reference, *, name: Optional[str] = None, consent: str, engine: Optional[str] = None,
                     overwrite: bool = False, progress=None, consent_covers_marked: bool = False,
                     fit_seconds: Optional[float] = None):
        """Clone a voice from a reference recording (audio file, video with sound, or ``(array, sample_rate)``).

        ``consent`` (who agreed, and when) is required and stored with the voice. With ``name`` the voice is saved
        and usable by name from then on; without, an unsaved profile is returned for this script's use.
        ``engine``: one of ``voice_engines()`` (None = the default, the first); ``fit_seconds``: CPU seconds the
        kokoro and hybrid engines spend fitting the speaker's style (None = KOKORO_FIT_SECONDS).
        """
        from .voice.profiles import DEFAULT_ENGINE, KOKORO_FIT_SECONDS, create_voice

        return create_voice(reference, name=name, consent=consent, engine=engine or DEFAULT_ENGINE,
                            overwrite=overwrite, progress=Progress.of(progress),
                            consent_covers_marked=consent_covers_marked,
                            fit_seconds=KOKORO_FIT_SECONDS if fit_seconds is None else float(fit_seconds))

    def list_voices(self):
        """Saved voice profiles (``studio.voice.profiles.VoiceProfile``), by name."""
        from .voice.profiles import list_voices

        return list_voices()

    def delete_voice(self, name: str) -> None:
        from .voice.profiles import delete_voice

        delete_voice(name)

    def voice_engines(self) -> list[str]:
        """Voice engines installed here (the first is the default): knn, global, kokoro, hybrid."""
        from .voice.profiles import voice_engines

        return voice_engines()


    # ---- actor models ---------------------------------------------------------------------------------------
    def train(self, options, progress=None):
        """Train or resume an actor model; ``options`` is a ``studio.lipsync.training.service.TrainOptions``."""
        from .lipsync.training import service

        return service.train(options, progress=Progress.of(progress))

    def list_models(self):
        """Actor models trained here or shipped in checkpoints/ (use one with ``model=NAME``)."""
        from .lipsync.training import service

        return service.list_models()

    # ---- dubbing --------------------------------------------------------------------------------------------
    def dub(self, video, *, subs=None, out=None, target_lang: Optional[str] = None, voice: Optional[str] = None,
            consent: Optional[str] = None, options=None, progress=None, **overrides):
        """Dub ``video`` with the timed lines of ``subs`` (SRT/WebVTT; a .txt script, one line per cue, timed against
        the speech; None = transcribed from the video's speech, its language detected), translated into
        ``target_lang`` when given, spoken in ``voice`` (None = base voice, a saved voice name, or "auto": each speaker cloned from their own lines, diarized when the lines name no speakers; needs
        ``consent``), lip-synced where the new speech plays. ``out`` defaults to VIDEO.LANG.mp4 (or .dub.mp4).
        Keyword ``overrides`` replace fields of ``studio.dubbing.job.DubOptions``. Returns a ``DubResult``."""
        from .dubbing.job import DubOptions, run_dub

        options = _with(options or DubOptions(), overrides)
        options = _replace(options, target_language=target_lang or options.target_language,
                           voice=voice or options.voice, consent=consent or options.consent)
        if out is None:
            out = Path(video).with_name(f"{Path(video).stem}.{options.target_language or 'dub'}.mp4")
        return run_dub(video, subs, out, self._checked_dub(options), device=self.device, progress=Progress.of(progress))

    def dub_edit_line(self, job_dir, line: int, text: str, *, progress=None):
        """Rerun the dub whose job folder is ``job_dir`` with line number ``line`` saying ``text`` (in the dub's
        language): only that line is re-synthesized and only its frames re-rendered. Returns a ``DubResult``."""
        from .dubbing.job import edit_line

        return edit_line(job_dir, line, text, device=self.device, progress=Progress.of(progress))

    @staticmethod
    def dub_table(result) -> list[list]:
        """The per-line report of a ``DubResult`` as table rows: line, speaker, slot start, slot (s), produced (s),
        stretch, overflow (s), fits, dubbed text."""
        return [[d["index"], d.get("speaker") or "", d["slot_start"], d["slot"], d["produced"], d["stretch"],
                 d["overflow"], "yes" if d["fits"] else "NO", d["dubbed_text"]] for d in result.lines]

    def dub_batch(self, batch, jobs_dir, *, workers: int = 1, options=None, progress=None, ray=None):
        """Run a CSV/JSON batch of dubbing jobs (see ``studio.dubbing.batch``); returns a ``BatchResult``.
        ``ray="auto"`` or an address runs the jobs as tasks on that Ray cluster instead of local processes."""
        from .dubbing.batch import run_batch
        from .dubbing.job import DubOptions

        return run_batch(batch, jobs_dir, self._checked_dub(options or DubOptions()), workers=workers,
                         device=self.device, progress=Progress.of(progress), ray=ray)

    def _checked_dub(self, options):
        return _replace(options, lipsync=self._checked(options.lipsync))


def _seal_render(result, kind: str, options, *, inputs=None, text=None, voice=None, speak_options=None):
    """Sign the provenance of an output (``result`` is a LipSyncResult or the output's path): C2PA manifest and
    ``<out>.provenance.json`` with the inputs, models, settings and the consents of the voice and face model."""
    from dataclasses import asdict

    from .trust.provenance import model_sha256, seal

    out = Path(getattr(result, "path", result))
    models, consents = [], {}
    if voice is not None:  # a cloned voice: its conversion data is the model
        models.append({"role": "voice", "name": voice.name, "engine": voice.engine, "created": voice.created})
        consents["voice"] = voice.consent
    else:
        consents["voice"] = "the bundled base voice (no person's voice is cloned)" if text is not None else None
    engine = getattr(result, "engine", None)
    if getattr(result, "model", None):  # the checkpoint the engine loaded (by name, path or its "auto" choice)
        from . import checkpoints

        path = Path(result.model)
        name = options.model or (path.parent.name if path.name == "model.pt" else path.stem)
        meta = checkpoints.load_checkpoint(path).meta
        models.append({"role": "face", "engine": engine, "name": Path(str(name)).name, "file": path.name,
                       "sha256": model_sha256(path), "step": meta.get("step", meta.get("global_step")),
                       "consent": meta.get("consent")})
        consents["face_model"] = meta.get("consent")  # None: a general model, not trained on one person
    elif engine is not None:
        models.append({"role": "face", "engine": engine, "name": None})
        consents["face_model"] = f"no face model (the weights-free {engine} engine)"
    settings = {}
    if options is not None:
        settings["lipsync"] = {k: (Path(v).name if k in ("model", "personalize_from") and v else v)
                               for k, v in asdict(options).items()}
    if text is not None:
        from .voice.service import SpeakOptions

        settings["speak"] = asdict(speak_options or SpeakOptions())
    report = getattr(result, "personalization", None)
    if report is not None:  # what personalisation did (its consent is in the model's metadata, above)
        settings["personalization"] = {
            "model": report.model.name if report.model else None, "key": report.key, "cached": report.cached,
            "fallback_reason": report.fallback_reason, "base": Path(str(report.base)).name if report.base else None,
            "usable_seconds": report.usable_seconds, "steps": report.steps, "heldout": report.heldout,
            "heldout_base": report.heldout_base}
        if report.model is None:
            consents["face_model"] = f"no face model (personalisation fell back: {report.fallback_reason})"
    if engine is not None:
        settings["render"] = {"frames": result.frames, "fps": result.fps, "frames_with_face": result.frames_with_face}
        if getattr(result, "sync", None) is not None:  # the output's sync score and weak segments
            settings["render"]["sync"] = asdict(result.sync)
    # a rendered sound track is always marked (run_lipsync); speech alone unless the API's option turned it off
    marks = {"audio": engine is not None or getattr(speak_options, "audio_mark", True),
             "video": bool(getattr(result, "frames_marked", 0))}
    job_id = getattr(result, "job_id", None)
    if marks["video"]:  # what the video mark carries (trust/video_mark.py): the job id's first 6 hex digits
        from .trust.video_mark import job_number

        marks["video_mark"] = {"job": f"{job_number(job_id):06x}", "frames": result.frames_marked,
                               "label": bool(getattr(options, "label", False))}
    seal(out, kind=kind, inputs=inputs, text=text, models=models, settings=settings, consents=consents, marks=marks,
         job_id=job_id)


def _with(options, overrides: dict):
    if not overrides:
        return options
    from dataclasses import fields, replace

    known = {f.name for f in fields(options)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return replace(options, **overrides)


def _replace(result, **changes):
    from dataclasses import replace

    return replace(result, **changes)
