"""Speech for the API: text -> Speech with phoneme timings, with the controls a dubbing workflow needs.

Controls: speaking rate, a target duration for the line (fitted while keeping the pitch), a pitch shift and
the output sample rate. Phoneme timings are rescaled with every time change so lip-sync stays aligned.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from ..audio.io import resample
from ..errors import InputError
from ..progress import Progress
from ..types import PhonemeTiming, Speech
from .tts import TTS_ENGINES, synthesize

SAMPLE_RATES = (16000, 22050, 24000, 48000)
BASE_VOICE = "base"


@dataclass(frozen=True)
class SpeakOptions:
    rate: float = 1.0  # 1.0 = the voice's normal speed
    duration: Optional[float] = None  # seconds: fit the line to this length (keeps the pitch)
    pitch_semitones: float = 0.0
    sample_rate: Optional[int] = None  # None = the engine's own rate
    engine: str = "auto"  # a TTS engine name, or "auto": the first engine that speaks the language (piper for en)
    language: str = "en"  # ISO 639-1 code: en, es, fr, it, pt (see tts.engines_for_language)
    tts_voice: Optional[str] = None  # one of the engine's own voices (e.g. Kokoro's jm_kumo); None = its default
    # the inaudible watermark (studio.trust.audio_mark) that every synthesized speech carries. Python API only, for
    # measuring the studio itself (clone quality or the mark's own effect, in benchmarks): nothing else turns it off
    audio_mark: bool = True


def available_voices() -> list[str]:
    """Voices `speak` accepts: the bundled base voice and every saved voice profile."""
    from .profiles import voice_names

    return [BASE_VOICE, *voice_names()]


def looks_like_file(voice: str) -> bool:
    """Voice names cannot hold '.', '/' or '\\'; a value that does is a path to a reference recording."""
    return any(c in voice for c in "./\\")


def resolve_voice(voice):
    """None/"base" -> None (the base voice); a name -> its saved profile; a VoiceProfile is used as it is."""
    from .profiles import VoiceProfile, load_voice

    if voice is None or isinstance(voice, VoiceProfile):
        return voice
    name = str(voice).strip()
    if name in ("", BASE_VOICE):
        return None
    if looks_like_file(name):
        raise InputError(f"voice {name!r} looks like a file; make a voice from it first (`studio voice create "
                         "--name NAME --from FILE --consent ...`, or Studio.create_voice) and use its name")
    return load_voice(name)


def _check_options(options: SpeakOptions) -> None:
    if options.sample_rate is not None and options.sample_rate not in SAMPLE_RATES:
        raise InputError(f"sample rate {options.sample_rate} is not supported; use one of {SAMPLE_RATES}")
    if options.duration is not None and not 0.2 <= options.duration <= 600:
        raise InputError(f"target duration {options.duration} s is out of range; use 0.2 to 600 seconds")
    if not -12 <= options.pitch_semitones <= 12:
        raise InputError(f"pitch shift {options.pitch_semitones} is out of range; use -12 to 12 semitones")
    tts_engine(options)


def tts_engine(options: SpeakOptions) -> str:
    """The TTS engine the options name, "auto" resolved for their language; InputError when it cannot speak it."""
    from .tts import check_language_code, engines_for_language

    language = check_language_code(options.language)
    engines = engines_for_language(language)
    if options.engine == "auto":
        if not engines:
            raise InputError(f"no TTS engine installed here speaks {language!r}; run `make setup`")
        return engines[0]
    if language not in getattr(TTS_ENGINES.entry(options.engine).factory, "languages", ()):
        raise InputError(f"the {options.engine} TTS engine does not speak {language!r}; engines that do: "
                         f"{', '.join(engines) or 'none'}")
    return options.engine


def _scale_timings(speech: Speech, factor: float, audio: np.ndarray) -> Speech:
    phonemes = None
    if speech.phonemes is not None:
        phonemes = tuple(PhonemeTiming(p.phoneme, p.start * factor, p.end * factor) for p in speech.phonemes)
    return replace(speech, audio=audio.astype(np.float32), phonemes=phonemes)


def fit_duration(speech: Speech, seconds: float) -> Speech:
    """Stretch or squeeze speech to ``seconds`` without changing its pitch (phase-vocoder time stretch)."""
    import librosa

    factor = seconds / speech.duration
    if abs(factor - 1) < 1e-3:
        return speech
    stretched = librosa.effects.time_stretch(speech.audio, rate=1.0 / factor)
    target = int(round(seconds * speech.sample_rate))
    stretched = np.pad(stretched, (0, max(0, target - len(stretched))))[:target]
    return _scale_timings(speech, factor, stretched)


def speak(text: str, *, voice=None, options: SpeakOptions = SpeakOptions(), progress=None) -> Speech:
    """Speak ``text`` in ``voice`` (None or "base" = the bundled voice, a profile name or a VoiceProfile)."""
    from .tts import LANGUAGES, check_language, speakable_text

    progress = Progress.of(progress)
    _check_options(options)
    engine, language = tts_engine(options), options.language.strip().lower()
    text = speakable_text(text)  # emoji and other unspoken symbols are left out (and logged) once, here
    check_language(text, LANGUAGES[language])
    profile = resolve_voice(voice)
    style = getattr(profile, "style", None)
    if profile is not None and style is not None:  # a voice on Kokoro (kokoro/hybrid): speaks Kokoro's languages
        if options.engine not in ("auto", "kokoro"):
            raise InputError(f"the voice {profile.name or '(unsaved)'} is made on Kokoro ({profile.engine} engine); "
                             f"it speaks with the kokoro TTS engine, not {options.engine} (leave --tts out)")
        if language not in profile.languages:
            raise InputError(f"the voice {profile.name} does not speak {language!r}; it speaks "
                             f"{', '.join(profile.languages)}")
        engine = "kokoro"
    elif profile is not None and engine != "piper":
        raise InputError(f"the voice {profile.name or '(unsaved)'} ({profile.engine} engine) is made on the piper "
                         f"base voice and speaks English with it; the {engine} engine cannot speak in it (make the "
                         "voice with --engine kokoro to speak es, fr, it or pt in it)")
    # a converted voice also speaks at its speaker's pace (rate 1.0 = that pace)
    tempo = profile.data.tempo if profile is not None and profile.data is not None else 1.0
    base_rate = float(np.clip(options.rate * tempo, 0.25, 4.0))

    def say(rate: float) -> Speech:
        if style is not None:
            from .kokoro import KokoroTTS

            return KokoroTTS(style=style).synthesize(text, rate=rate, language=language, progress=progress)
        return synthesize(text, engine=engine, rate=rate, language=language, voice=options.tts_voice,
                          progress=progress)

    speech = say(base_rate)
    if options.duration is not None:
        # the engine's own length control gets close and sounds natural; the phase vocoder fixes the remainder
        first = speech.duration
        if abs(first / options.duration - 1) > 0.03:
            speech = say(float(np.clip(base_rate * first / options.duration, 0.25, 4.0)))
        speech = fit_duration(speech, options.duration)
    if profile is not None and profile.data is not None:
        from .cloning import VOICE_CONVERTERS

        # conversion keeps every frame in place, so phoneme timings and the fitted duration stay valid
        progress.update("voice conversion", 0, 1)
        converter = VOICE_CONVERTERS.create("knn" if profile.engine == "hybrid" else profile.engine)
        audio = converter.convert(speech.audio, speech.sample_rate, profile.data,
                                  pitch_semitones=options.pitch_semitones)
        speech = replace(speech, audio=audio)
        progress.update("voice conversion", 1, 1)
    elif options.pitch_semitones:
        import librosa

        shifted = librosa.effects.pitch_shift(speech.audio, sr=speech.sample_rate, n_steps=options.pitch_semitones)
        speech = replace(speech, audio=shifted.astype(np.float32))
    if options.sample_rate and options.sample_rate != speech.sample_rate:
        speech = replace(speech, audio=resample(speech.audio, speech.sample_rate, options.sample_rate),
                         sample_rate=options.sample_rate)
    if options.audio_mark:  # last, so nothing after it weakens the mark: the one place speech leaves this layer
        from ..trust.audio_mark import mark_speech

        speech = mark_speech(speech)
    return speech
