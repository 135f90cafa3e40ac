"""The one public API. The CLI (``studio/cli.py``) and the Gradio app (``studio/ui``) call only this.

    from studio import Studio
    s = Studio(device="auto")
    s.lipsync(face="talk.mp4", audio="line.wav", out="out.mp4")
    s.say(face="photo.jpg", text="Hello", out="out.mp4")
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

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

    def lipsync_models(self) -> list[str]:
        """Names of the installed network checkpoints and actor models (what ``model=`` accepts by name)."""
        from .checkpoints import installed_names

        return installed_names()

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
        return run_lipsync(face, speech, out, options, self.device, Progress.of(progress))

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
        speech = self.speak_speech(text, voice=voice, options=speak_options, progress=prog)
        audio_path = save_speech(speech, save_audio) if save_audio is not None else None
        result = run_lipsync(face, speech, out, options, self.device, prog)
        return _replace(result, audio_path=audio_path)

    # ---- voices ---------------------------------------------------------------------------------------------
    def speak_speech(self, text: str, *, voice=None, options=None, progress=None):
        """Like :meth:`speak` but returns a ``studio.types.Speech`` with phoneme timings."""
        from .voice import service

        kwargs = {} if options is None else {"options": options}
        return service.speak(text, voice=voice, progress=Progress.of(progress), **kwargs)

    def speak(self, text: str, *, voice=None, options=None, progress=None) -> tuple[np.ndarray, int]:
        """Speak ``text``; returns (float32 mono audio, sample rate)."""
        speech = self.speak_speech(text, voice=voice, options=options, progress=progress)
        return speech.audio, speech.sample_rate

    def voices(self) -> list[str]:
        """Voice names that `speak`/`say` accept ("base" and every saved voice)."""
        from .voice.service import available_voices

        return available_voices()

    def create_voice(self, reference, *, name: Optional[str] = None, consent: str, engine: str = "knn",
                     overwrite: bool = False, progress=None):
        """Clone a voice from a reference recording (audio file, video with sound, or ``(array, sample_rate)``).

        ``consent`` (who agreed, and when) is required and stored with the voice. With ``name`` the voice is saved
        and usable by name from then on; without, an unsaved profile is returned for this script's use.
        """
        from .voice.profiles import create_voice

        return create_voice(reference, name=name, consent=consent, engine=engine, overwrite=overwrite,
                            progress=Progress.of(progress))

    def list_voices(self):
        """Saved voice profiles (``studio.voice.profiles.VoiceProfile``), by name."""
        from .voice.profiles import list_voices

        return list_voices()

    def delete_voice(self, name: str) -> None:
        from .voice.profiles import delete_voice

        delete_voice(name)

    def voice_engines(self) -> list[str]:
        """Voice conversion engines (the first is the default)."""
        from .voice.cloning import VOICE_CONVERTERS

        return VOICE_CONVERTERS.available_names()


    # ---- actor models ---------------------------------------------------------------------------------------
    def train(self, options, progress=None):
        """Train or resume an actor model; ``options`` is a ``studio.lipsync.training.service.TrainOptions``."""
        from .lipsync.training import service

        return service.train(options, progress=Progress.of(progress))

    def list_models(self):
        """Actor models trained here or shipped in checkpoints/ (use one with ``model=NAME``)."""
        from .lipsync.training import service

        return service.list_models()


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
