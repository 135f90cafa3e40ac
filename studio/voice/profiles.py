"""Voice profiles: a folder per cloned voice under ``studio.paths.voices_dir()``.

    NAME/profile.json     name, consent statement, creation time, engine, facts about the reference
    NAME/reference.wav    the cleaned reference (speech only, loudness-normalised)
    NAME/conversion.npz   what the conversion engine learned from it
    NAME/embedding.npy    the speaker embedding (resemblyzer, 256-d) of the reference
    NAME/style.npy        kokoro and hybrid voices: the Kokoro style table fitted to the speaker (kokoro_fit)

Engines: the conversion engines of ``cloning`` (knn, global: the piper voice converted, English), and two on
Kokoro that speak every language Kokoro speaks (en, es, fr, it, pt): "kokoro" (Kokoro with the speaker's fitted
style) and "hybrid" (that voice, then kNN conversion learnt between it and the reference).

A profile is written into a hidden temporary folder beside the others and renamed into place only when complete,
so a failed or cancelled creation leaves nothing behind, and readers never see a half-written voice.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from ..log import get_logger
from ..paths import voices_dir
from ..progress import Progress
from . import world
from .cloning import DEFAULT_CONVERTER, VOICE_CONVERTERS, ConversionData
from .reference import clean_reference

log = get_logger("voice.profiles")

PROFILE_VERSION = 1
RESERVED_NAMES = {"base"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MIN_CONSENT_CHARS = 10
# voice engines on Kokoro (the others are the conversion engines of cloning.VOICE_CONVERTERS)
KOKORO_ENGINES = {
    "kokoro": "Kokoro-82M with a style fitted to the speaker; speaks en, es, fr, it, pt",
    "hybrid": "the fitted Kokoro voice, then kNN conversion toward the reference; speaks en, es, fr, it, pt",
}
KOKORO_LANGUAGES = ("en", "es", "fr", "it", "pt")
KOKORO_FIT_SECONDS = 300.0  # the style search's budget (the issue allows 10 CPU minutes for 30 s of reference)
# how kokoro/hybrid voices fit the style (kokoro_fit.STYLE_FITS): the one benchmarks/voice_clone.py measures best
KOKORO_FIT_METHOD = "gradient"


# the engine `studio voice create` uses unless told: the one benchmarks/voice_clone.py finds best on both speaker
# encoders with WER <= 5 % (README, "Voice cloning")
DEFAULT_ENGINE = DEFAULT_CONVERTER


def voice_engines() -> list[str]:
    """Engines a voice can be made with here, the default first."""
    from .tts import TTS_ENGINES

    kokoro = list(KOKORO_ENGINES) if "kokoro" in TTS_ENGINES.available_names() else []
    names = [*VOICE_CONVERTERS.available_names(), *kokoro]
    return sorted(names, key=lambda n: n != DEFAULT_ENGINE)


@dataclass(frozen=True)
class VoiceProfile:
    name: Optional[str]  # None: an unsaved profile made for one job
    consent: str
    created: str
    engine: str
    speech_seconds: float
    snr_db: float
    facts: dict = field(default_factory=dict, compare=False)
    data: Optional[ConversionData] = field(default=None, repr=False, compare=False)
    path: Optional[Path] = None
    style: Optional[np.ndarray] = field(default=None, repr=False, compare=False)  # kokoro/hybrid: (rows, 256)

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages this voice speaks."""
        return KOKORO_LANGUAGES if self.engine in KOKORO_ENGINES else ("en",)

    def summary(self) -> str:
        pitch = self.facts.get("pitch_hz")
        sim = self.facts.get("similarity_to_reference")
        return (f"{self.name or '(unsaved)'}: {self.speech_seconds:.1f} s of reference speech, engine {self.engine}"
                + (f", pitch {pitch:.0f} Hz" if pitch else "")
                + (f", similarity to the reference {sim:.2f} (base voice {self.facts['base_voice_similarity']:.2f})"
                   if sim is not None else "")
                + f", speaks {', '.join(self.languages)}, created {self.created}; consent: {self.consent}")


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        raise InputError(f"voice name {name!r} is not usable; use 1-64 letters, digits, '-' or '_' "
                         "(starting with a letter or digit)")
    if name.lower() in RESERVED_NAMES:
        raise InputError(f"the voice name {name!r} is reserved for the bundled voice; choose another name")
    return name


def check_consent(consent: Optional[str]) -> str:
    """The consent statement, stripped: required, and at least MIN_CONSENT_CHARS characters long."""
    text = (consent or "").strip()
    example = "for example \"Anna Novak agreed on 2026-11-20\""
    if not text:
        raise InputError("a consent statement is required to clone a voice: say who agreed to have their voice "
                         f"cloned and when ({example})")
    if len(text) < MIN_CONSENT_CHARS:
        raise InputError(f"the consent statement {text!r} is too short ({len(text)} characters): it must be at "
                         f"least {MIN_CONSENT_CHARS} characters and say who agreed to have their voice cloned "
                         f"and when ({example})")
    return text


@lru_cache(maxsize=1)
def _speaker_encoder():
    from resemblyzer import VoiceEncoder

    return VoiceEncoder(device="cpu", verbose=False)


def speaker_embedding(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """256-d unit-length resemblyzer (GE2E) embedding of the speech."""
    from resemblyzer import preprocess_wav

    from ..audio.io import resample

    wav = preprocess_wav(resample(audio, sample_rate, 16000), 16000)
    if len(wav) < 1600:
        raise InputError("too little speech to measure the voice (under 0.1 s after trimming silences)")
    return _speaker_encoder().embed_utterance(wav).astype(np.float32)


def create_voice(source, *, name: Optional[str], consent: str, engine: str = DEFAULT_ENGINE,
                 overwrite: bool = False, progress=None, consent_covers_marked: bool = False,
                 fit_seconds: float = KOKORO_FIT_SECONDS, fit_method: Optional[str] = None) -> VoiceProfile:
    """Make a voice from a reference recording (any audio file, or a video's sound track).

    ``name=None`` makes an unsaved profile for one job; otherwise it is stored under ``voices_dir()/name``.
    A reference that carries an audio watermark (speech the studio, or another tool using Perth, synthesized) is
    refused unless ``consent_covers_marked``: the consent statement then covers cloning from such audio.
    ``fit_seconds``: how long the kokoro and hybrid engines search for the speaker's style; ``fit_method``: how
    (``kokoro_fit.STYLE_FITS``; None = KOKORO_FIT_METHOD).
    """
    from ..audio.io import load_audio

    progress = Progress.of(progress)
    consent = check_consent(consent)
    if name is not None:
        name = check_name(name)
        if (voices_dir() / name).exists() and not overwrite:
            raise InputError(f"a voice named {name!r} exists already; choose another name, delete it first "
                             f"(studio voice delete {name}) or overwrite it")
    if engine in KOKORO_ENGINES:
        if engine not in voice_engines():
            raise InputError(f"the {engine} voice engine needs Kokoro, which is not installed here; run `make setup`")
        converter = VOICE_CONVERTERS.create("knn") if engine == "hybrid" else None
    else:
        converter = VOICE_CONVERTERS.create(engine)
    if isinstance(source, (tuple, list)) and len(source) == 2 and isinstance(source[0], np.ndarray):
        audio, sr = np.asarray(source[0], np.float32), int(source[1])
        source_name = "(audio array)"
    else:
        if source is None or not str(source).strip():
            raise InputError("no reference was given; give a recording of the speaker (WAV/MP3/FLAC or a video)")
        audio, sr = load_audio(source, what="reference")
        source_name = Path(source).name
    marked = _check_not_marked(audio, sr, source_name, consent_covers_marked)
    progress.update("cleaning the reference", 0, 1)
    clean = clean_reference(audio, sr, out_rate=world.WORK_RATE)
    progress.check()
    style, data, facts = None, None, {}
    if engine in KOKORO_ENGINES:
        from .kokoro import KokoroTTS
        from .kokoro_fit import STYLE_FITS

        method = fit_method or KOKORO_FIT_METHOD
        fit = STYLE_FITS.create(method)(clean.audio, clean.sample_rate, budget_s=fit_seconds, progress=progress)
        style = fit.style
        facts.update(kokoro_fit_method=method, kokoro_start_voice=fit.base_voice, kokoro_fit_score=fit.score,
                     kokoro_start_score=fit.base_score, kokoro_fit_evaluations=fit.evaluations,
                     kokoro_fit_seconds=fit.seconds)
        fitted = KokoroTTS(style=style)
        say = fitted.synthesize  # the hybrid's conversion is learnt from the fitted voice, which it starts from
    else:
        say = None
    if converter is not None:
        data, conversion_facts = converter.prepare(clean.audio, clean.sample_rate, progress=progress, say=say)
        facts.update(conversion_facts)
    progress.update("measuring the voice", 0, 1)
    embedding = speaker_embedding(clean.audio, clean.sample_rate)
    profile = VoiceProfile(name, consent, time.strftime("%Y-%m-%dT%H:%M:%S%z"), engine,
                           round(clean.speech_seconds, 2), round(clean.snr_db, 1), facts, data, style=style)
    facts.update(source=source_name, input_seconds=round(clean.input_seconds, 2), speech_segments=clean.segments,
                 **_check_similarity(profile, embedding), reference_audio_mark=round(marked, 3),
                 consent_covers_marked=bool(consent_covers_marked))
    if name is None:
        return profile
    progress.check()
    return _write(profile, clean.audio, clean.sample_rate, embedding, overwrite)


def _check_not_marked(audio: np.ndarray, sr: int, source_name: str, covered: bool) -> float:
    """No laundering: a voice is not made from speech that a machine made (it carries the audio mark) unless the
    consent says it covers that. Returns the mark's confidence."""
    from ..trust.audio_mark import DETECT_THRESHOLD, detect

    confidence = detect(audio, sr)
    if confidence >= DETECT_THRESHOLD:
        if not covered:
            raise InputError(
                f"the reference {source_name} carries a watermark (audio mark confidence {confidence:.2f}): it is "
                "speech that the studio (or another tool using the Perth mark) synthesized, not a recording of a "
                "person, so a voice made from it could pass off a voice nobody agreed to. Use a real recording of "
                "the speaker; or, if the consent covers cloning from this synthesized speech (the person agreed to "
                "it), say so in the consent statement and pass --consent-covers-marked "
                "(consent_covers_marked=True)")
        log.warning("the reference %s carries an audio watermark; accepted: the consent covers it", source_name)
    return confidence


CHECK_LINE = "The quick brown fox jumps over the lazy dog, and then it runs back home."


def _check_similarity(profile: VoiceProfile, reference_embedding: np.ndarray) -> dict:
    """How close a test line in the new voice comes to the reference (speaker-embedding cosine), next to the base
    voice's score (piper, or the shipped Kokoro voice the fit started from): a first, honest indication of the
    clone's quality, shown with the voice."""
    from .service import SpeakOptions, speak

    unmarked = SpeakOptions(audio_mark=False)
    cloned = speak(CHECK_LINE, voice=profile, options=unmarked)
    start = profile.facts.get("kokoro_start_voice")
    base = speak(CHECK_LINE, options=SpeakOptions(engine="kokoro", tts_voice=start, audio_mark=False)
                 if start else unmarked)
    ref = reference_embedding / np.linalg.norm(reference_embedding)
    return {"similarity_to_reference": round(float(speaker_embedding(cloned.audio, cloned.sample_rate) @ ref), 3),
            "base_voice_similarity": round(float(speaker_embedding(base.audio, base.sample_rate) @ ref), 3)}


def _write(profile: VoiceProfile, reference: np.ndarray, sample_rate: int, embedding: np.ndarray,
           overwrite: bool) -> VoiceProfile:
    import soundfile as sf

    root = voices_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / profile.name
    tmp = Path(tempfile.mkdtemp(prefix=f".creating-{profile.name}-", dir=root))
    try:
        sf.write(str(tmp / "reference.wav"), reference, sample_rate, subtype="PCM_16")
        if profile.data is not None:
            np.savez_compressed(tmp / "conversion.npz", **profile.data.to_arrays())
        if profile.style is not None:
            np.save(tmp / "style.npy", profile.style.astype(np.float32))
        np.save(tmp / "embedding.npy", embedding)
        meta = {"version": PROFILE_VERSION, "name": profile.name, "consent": profile.consent,
                "created": profile.created, "engine": profile.engine, "speech_seconds": profile.speech_seconds,
                "snr_db": profile.snr_db, "facts": profile.facts}
        (tmp / "profile.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))
        os.chmod(tmp, 0o755)
        if final.exists():
            if not overwrite:
                raise InputError(f"a voice named {profile.name!r} was created meanwhile; choose another name")
            old = Path(tempfile.mkdtemp(prefix=f".deleting-{profile.name}-", dir=root))
            os.replace(final, old / "v")
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("voice %s created at %s", profile.name, final)
    return load_voice(profile.name)


def list_voices() -> list[VoiceProfile]:
    """Saved voices, by name (hidden in-progress folders and broken folders are skipped)."""
    root = voices_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if d.name.startswith(".") or not (d / "profile.json").is_file():
            continue
        try:
            out.append(_read(d, with_data=False))
        except (OSError, ValueError, KeyError) as e:
            log.warning("skipping unreadable voice folder %s: %s", d, e)
    return out


def voice_names() -> list[str]:
    return [v.name for v in list_voices()]


def _read(folder: Path, with_data: bool = True) -> VoiceProfile:
    meta = json.loads((folder / "profile.json").read_text())
    data = style = None
    if with_data:
        if meta["engine"] != "kokoro":
            with np.load(folder / "conversion.npz") as arrays:
                data = ConversionData.from_arrays(arrays)
        if meta["engine"] in KOKORO_ENGINES:
            style = np.load(folder / "style.npy", allow_pickle=False)
    return VoiceProfile(meta["name"], meta["consent"], meta["created"], meta["engine"], meta["speech_seconds"],
                        meta["snr_db"], meta.get("facts", {}), data, folder, style)


def load_voice(name: str) -> VoiceProfile:
    folder = voices_dir() / str(name)
    if not _NAME.match(str(name)) or not (folder / "profile.json").is_file():
        known = voice_names()
        raise InputError(f"unknown voice {name!r}; available voices: {', '.join(['base', *known])} "
                         "(create one with `studio voice create --name NAME --from ref.wav --consent ...`)")
    return _read(folder)


def delete_voice(name: str) -> None:
    folder = voices_dir() / check_name(name)
    if not (folder / "profile.json").is_file():
        raise InputError(f"unknown voice {name!r}; nothing was deleted (available: {', '.join(voice_names()) or 'none'})")
    trash = Path(tempfile.mkdtemp(prefix=f".deleting-{name}-", dir=voices_dir()))
    os.replace(folder, trash / "v")
    shutil.rmtree(trash, ignore_errors=True)
    log.info("voice %s deleted", name)
