"""The voice of a dub and the speech of one line.

Voices: the base voice, a saved profile (``studio voice create``), or ``auto``: a voice cloned from the source
video's own sound track (consent required, stored in the job and its report). Speech comes from
``studio.voice.tts.synthesize``; for a language other than English the engine comes from
``tts.engines_for_language`` and gets ``language=`` when the installed TTS module offers them.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from ..log import get_logger
from ..types import Speech
from .files import publish, read_json, temp_beside, write_json
from .translate import language_name

log = get_logger("dubbing.speech")

AUTO = "auto"


@dataclass(frozen=True)
class DubVoice:
    kind: str  # "base", "profile" or "auto"
    ident: str  # part of the cache keys: changes when the voice changes
    profile: object = None  # studio.voice.profiles.VoiceProfile, or None for the base voice
    consent: Optional[str] = None

    def describe(self) -> dict:
        p = self.profile
        out = {"kind": self.kind, "id": self.ident}
        if p is not None:
            out.update(name=p.name, engine=p.engine, consent=p.consent, created=p.created,
                       reference_speech_seconds=p.speech_seconds)
        return out


def resolve_voice(voice: Optional[str]) -> DubVoice:
    """A base or saved voice (``auto`` is resolved later by :func:`auto_voice`, once the job knows its video)."""
    from ..voice.service import resolve_voice as resolve

    profile = resolve(voice)
    if profile is None:
        return DubVoice("base", "base")
    return DubVoice("profile", f"profile:{profile.name}:{profile.created}:{profile.engine}", profile, profile.consent)


def check_auto_consent(consent: Optional[str]) -> str:
    from ..voice.profiles import check_consent

    if not consent:
        raise InputError("--voice auto clones the speaker from the video's own sound track and needs their consent: "
                         'add --consent "who agreed, and when" (at least 10 characters)')
    return check_consent(consent)


def speaker_voices(pairs, lines) -> dict[str, DubVoice]:
    """{speaker name (case-folded): voice} for (speaker, voice name) pairs; each speaker must occur in the lines."""
    named = {(s.speaker or "").casefold() for s in lines if s.speaker}
    out = {}
    for speaker, voice in pairs:
        name = str(speaker).strip().casefold()
        if name not in named:
            known = ", ".join(sorted({s.speaker for s in lines if s.speaker})) or "none (write 'NAME: text')"
            raise InputError(f"speaker {speaker!r} has no lines in the subtitles; speakers named there: {known}")
        if str(voice).strip() == AUTO:
            raise InputError(f"speaker {speaker!r}: 'auto' is not a saved voice; --voice auto clones every speaker "
                             "from their own lines, --speaker-voice gives one speaker a saved voice instead")
        out[name] = resolve_voice(voice)
    return out


# the engine a voice cloned from the video ("auto") is made with, per language of the dub. English: the kNN
# conversion of the Piper voice (README "Voice cloning"). Other languages: the shipped Kokoro voice closest to the
# speaker ("kokoro" with no style search), without conversion. Chosen by benchmarks/dubbing.py (en_auto, two
# speakers, Spanish): the kNN conversion learnt between that Kokoro voice and the speaker ("hybrid") raised the
# speaker similarity of the lines from 0.60 to 0.65 but their Spanish WER from 18 % to 84 % (one speaker's lines
# came out as other words), so it is opt-in (--auto-engine hybrid)
AUTO_ENGINES = {"en": "knn"}
AUTO_ENGINE_OTHER = "kokoro"
AUTO_FIT_SECONDS = 0.0  # style search budget for auto voices: 0 = the closest shipped Kokoro voice (about 20 s)


def auto_engine(language: str, engine: Optional[str] = None) -> str:
    """The voice engine an auto-cloned voice for a dub into ``language`` is made with (``engine`` overrides)."""
    from ..voice.profiles import KOKORO_ENGINES

    engine = engine or AUTO_ENGINES.get(language, AUTO_ENGINE_OTHER)
    if language != "en" and engine not in KOKORO_ENGINES:
        raise InputError(f"a voice made with the {engine} engine speaks English only; to dub into "
                         f"{language_name(language)} use one of: {', '.join(KOKORO_ENGINES)}")
    return engine


def auto_voice(video: Path, video_hash: str, consent: Optional[str], folder: Path, progress,
               consent_covers_marked: bool = False, engine: str = "knn") -> DubVoice:
    """Clone the speaker of ``video``'s sound track (cached in ``folder``)."""
    return _cloned(video, f"auto:{video_hash[:24]}{_engine_tag(engine)}", "auto-voice", consent, folder, progress,
                   consent_covers_marked, engine)


def _engine_tag(engine: str) -> str:
    return "" if engine == "knn" else f":{engine}"  # knn keeps the ids (and caches) it had before


def speaker_auto_voice(reference: np.ndarray, sr: int, speaker: str, ident: str, consent: Optional[str],
                       folder: Path, progress, consent_covers_marked: bool = False, engine: str = "knn") -> DubVoice:
    """Clone one speaker of a video from ``reference`` (their lines' source sound); ``ident`` names the
    reference (the video and the speaker's line times), so the clone is cached in ``folder`` per speaker."""
    import hashlib

    stem = "auto-voice-" + hashlib.sha256(speaker.encode()).hexdigest()[:12]
    try:
        return _cloned((reference, sr), f"auto:{ident}{_engine_tag(engine)}", stem, consent, folder, progress,
                       consent_covers_marked, engine)
    except InputError as e:
        raise InputError(f"{speaker}: {e} (cloning each speaker needs a few seconds of their clear speech; give "
                         f"short parts a saved voice with --speaker-voice \"{speaker}=NAME\")") from None


def _cloned(source, ident: str, stem: str, consent: Optional[str], folder: Path, progress,
            consent_covers_marked: bool = False, engine: str = "knn") -> DubVoice:
    from ..voice.cloning import ConversionData
    from ..voice.profiles import VoiceProfile, create_voice

    consent = check_auto_consent(consent)
    meta_path, data_path = folder / f"{stem}.json", folder / f"{stem}.npz"
    meta = read_json(meta_path)
    if meta and meta.get("id") == ident and data_path.is_file():
        with np.load(data_path, allow_pickle=False) as arrays:
            data = ConversionData.from_arrays(arrays) if "keys" in arrays.files else None
            style = np.array(arrays["style"], np.float32) if "style" in arrays.files else None
        profile = VoiceProfile(None, consent, meta["created"], meta["engine"], meta["speech_seconds"], meta["snr_db"],
                               meta.get("facts", {}), data, style=style)
        log.info("reusing the voice cloned for %s", stem)
        return DubVoice(AUTO, ident, profile, consent)
    profile = create_voice(source, name=None, consent=consent, progress=progress, engine=engine,
                           consent_covers_marked=consent_covers_marked,  # no laundering: marked speech is refused
                           fit_seconds=AUTO_FIT_SECONDS)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(data_path, ".npz")
    arrays = profile.data.to_arrays() if profile.data is not None else {}
    if profile.style is not None:
        arrays["style"] = np.asarray(profile.style, np.float32)
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        publish(tmp, data_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    write_json(meta_path, {"id": ident, "created": profile.created, "engine": profile.engine,
                           "speech_seconds": profile.speech_seconds, "snr_db": profile.snr_db,
                           "facts": json.loads(json.dumps(profile.facts, default=str)), "consent": consent})
    return DubVoice(AUTO, ident, profile, consent)


def tts_engine_for(language: str, engine: Optional[str] = None) -> str:
    """The TTS engine that speaks ``language``; InputError naming the language when none does."""
    from ..voice import tts

    if language == "en":
        if engine:
            tts.TTS_ENGINES.entry(engine)
        return engine or "piper"
    helper = getattr(tts, "engines_for_language", None)
    engines = list(helper(language)) if callable(helper) else []
    if engine and engine in engines:
        return engine
    name = language_name(language)
    if engine:
        raise InputError(f"TTS engine {engine!r} does not speak {name} ({language}); engines that do: "
                         f"{', '.join(engines) or 'none installed'}")
    if not engines:
        raise InputError(f"no installed voice speaks {name} ({language}): the bundled Piper voice speaks English "
                         f"only. Install a TTS engine for {name} (the Kokoro engine) or dub into English")
    return engines[0]


def _takes_language(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "language" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def synthesize_line(text: str, *, language: str, engine: str, voice: DubVoice, rate: float = 1.0) -> Speech:
    """One line's speech at ``rate`` (1.0 = the voice's own pace), in ``voice``."""
    from ..voice import tts

    text = tts.speakable_text(text)
    names = getattr(tts, "LANGUAGES", {"en": "English"})
    if language in names:
        tts.check_language(text, names[language])
    profile = voice.profile
    if profile is not None and getattr(profile, "style", None) is not None:
        # a voice on Kokoro (engines kokoro/hybrid) speaks every language Kokoro speaks; the voice layer knows how
        # (the mark is added later, by mark())
        from ..voice.service import SpeakOptions, speak

        return speak(text, voice=profile, options=SpeakOptions(rate=rate, language=language, audio_mark=False))
    if profile is not None and engine != "piper":
        raise InputError(f"voice {profile.name or '(cloned from the video)'} was made for the English base voice "
                         f"and cannot speak {language_name(language)} with the {engine} engine yet; use --voice base")
    tempo = profile.data.tempo if profile is not None else 1.0
    base_rate = float(np.clip(rate * tempo, 0.25, 4.0))
    kwargs = {}
    if language != "en":
        if not _takes_language(tts.synthesize):
            raise InputError(f"the installed TTS cannot be told to speak {language_name(language)}; update the "
                             "studio (the Kokoro engine) or dub into English")
        kwargs["language"] = language
    speech = tts.synthesize(text, engine=engine, rate=base_rate, **kwargs)
    if profile is not None:
        from ..voice.cloning import VOICE_CONVERTERS

        audio = VOICE_CONVERTERS.create(profile.engine).convert(speech.audio, speech.sample_rate, profile.data)
        speech = replace(speech, audio=np.asarray(audio, np.float32))
    return speech


def mark(speech: Speech) -> Speech:
    """The speech with the studio's inaudible watermark (``studio.trust.audio_mark``)."""
    from ..trust.audio_mark import mark_speech

    return mark_speech(speech)
