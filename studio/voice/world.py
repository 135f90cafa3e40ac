"""WORLD vocoder analysis and synthesis (pyworld), the signal layer of voice conversion.

Speech is split into F0, a spectral envelope (the voice's timbre: formants, tilt) and aperiodicity. Envelopes are
kept as 40 mel-cepstral coefficients, a log-domain code where averaging and adding differences are meaningful.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import MissingDependencyError

WORK_RATE = 22050  # all conversion happens at this rate (the base voice's own)
FRAME_MS = 10.0
ENVELOPE_DIMS = 40
SILENCE_DB = 12.0  # frames whose energy coefficient is this far below the loudest are treated as silence


def _pyworld():
    try:
        with warnings.catch_warnings():  # pyworld imports pkg_resources, which warns on import
            warnings.simplefilter("ignore")
            import pyworld
    except ImportError:
        raise MissingDependencyError("pyworld is not installed; run `make setup` (pip install pyworld)") from None
    return pyworld


@dataclass(frozen=True)
class WorldFrames:
    f0: np.ndarray  # Hz, 0 where unvoiced
    envelope: np.ndarray  # (frames, ENVELOPE_DIMS) mel-cepstrum of the spectral envelope
    aperiodicity: np.ndarray  # (frames, bands) coded aperiodicity

    @property
    def voiced(self) -> np.ndarray:
        return self.f0 > 0

    @property
    def loud(self) -> np.ndarray:
        """Frames that are not silence (by the envelope's energy coefficient)."""
        energy = self.envelope[:, 0]
        return energy > energy.max() - SILENCE_DB if len(energy) else np.zeros(0, bool)


def analyse(audio: np.ndarray, sample_rate: int = WORK_RATE) -> WorldFrames:
    """WORLD features, F0 by DIO + StoneMask. (Harvest was tried for references: no gain, 10x slower; the base
    voice and the reference must be analysed alike for the pitch mapping to hold.)"""
    pw = _pyworld()
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, t = pw.dio(x, sample_rate, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, sample_rate)
    sp = pw.cheaptrick(x, f0, t, sample_rate)
    ap = pw.d4c(x, f0, t, sample_rate)
    return WorldFrames(f0, pw.code_spectral_envelope(sp, sample_rate, ENVELOPE_DIMS),
                       pw.code_aperiodicity(ap, sample_rate))


def synthesize(f0: np.ndarray, envelope: np.ndarray, aperiodicity: np.ndarray,
               sample_rate: int = WORK_RATE) -> np.ndarray:
    pw = _pyworld()
    fft = pw.get_cheaptrick_fft_size(sample_rate)
    sp = pw.decode_spectral_envelope(np.ascontiguousarray(envelope, dtype=np.float64), sample_rate, fft)
    ap = pw.decode_aperiodicity(np.ascontiguousarray(aperiodicity, dtype=np.float64), sample_rate, fft)
    y = pw.synthesize(np.ascontiguousarray(f0, dtype=np.float64), sp, ap, sample_rate, FRAME_MS)
    return y.astype(np.float32)


def log_f0_stats(f0: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of log F0 over voiced frames (the speaker's pitch level and range)."""
    voiced = f0[f0 > 0]
    if len(voiced) < 10:
        return float(np.log(120.0)), 0.2
    lf = np.log(voiced)
    return float(lf.mean()), float(max(lf.std(), 0.05))


def with_context(envelope: np.ndarray, width: int = 2) -> np.ndarray:
    """Each frame's envelope (without the energy term) stacked with its neighbours: a phonetic context key."""
    core = envelope[:, 1:]
    n = len(core)
    padded = np.pad(core, ((width, width), (0, 0)), mode="edge")
    return np.concatenate([padded[i:i + n] for i in range(2 * width + 1)], axis=1)
