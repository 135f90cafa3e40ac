"""Silence around and inside synthesized speech: where the sound is, and the speech without the silence.

TTS engines put silence before and after each utterance (Kokoro keeps 0.1 s before the first sound, and its pad
tokens ring out after the last one), and pauses at commas and between sentences. A dub that places a line at its
subtitle's start must place the first *sound* there, and a line that is too long for its slot can lose long
pauses before it is sped up. Energy based (10 ms frames against the utterance's loudest frame): synthesized speech
has no background noise, so a plain threshold finds the first and last sound reliably.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np

from ..types import PhonemeTiming, Speech

FRAME = 0.01  # seconds per energy frame
FLOOR_DB = -40.0  # a frame this far below the loudest one is silence
PAD_BEFORE = 0.02  # seconds kept before the first sound (the onset of a plosive builds up below the threshold)
PAD_AFTER = 0.05  # seconds kept after the last sound (decays)


def _loud(audio: np.ndarray, sr: int, floor_db: float) -> np.ndarray:
    """Per frame of FRAME seconds: True where the frame's RMS is within ``floor_db`` of the loudest frame."""
    hop = max(1, int(round(FRAME * sr)))
    n = len(audio) // hop
    if n == 0:
        return np.zeros(0, bool)
    rms = np.sqrt(np.mean(np.square(audio[:n * hop].astype(np.float64)).reshape(n, hop), axis=1))
    peak = float(rms.max())
    if peak <= 1e-6:
        return np.zeros(n, bool)
    return rms > peak * 10 ** (floor_db / 20)


def sound_bounds(audio: np.ndarray, sr: int, floor_db: float = FLOOR_DB) -> Optional[tuple[float, float]]:
    """(first sound, end of last sound) in seconds; None for silence."""
    loud = np.flatnonzero(_loud(audio, sr, floor_db))
    if not len(loud):
        return None
    hop = max(1, int(round(FRAME * sr)))
    return loud[0] * hop / sr, min(len(audio), (loud[-1] + 1) * hop) / sr


def _remap(phonemes, keep: list[tuple[float, float]]):
    """Phoneme timings moved onto the audio made of the ``keep`` pieces (seconds, in order) joined together."""
    if phonemes is None:
        return None
    src = np.array([t for a, b in keep for t in (a, b)])
    dst = np.concatenate([[0.0], np.cumsum([b - a for a, b in keep])])
    dst = np.repeat(dst, 2)[1:-1]  # each piece maps linearly; gaps between pieces collapse to a point

    def at(t: float) -> float:
        return float(np.interp(t, src, dst))

    out = []
    for p in phonemes:
        a, b = at(p.start), at(p.end)
        out.append(PhonemeTiming(p.phoneme, a, max(a, b)))
    return tuple(out)


def trim_silence(speech: Speech, pad_before: float = PAD_BEFORE, pad_after: float = PAD_AFTER,
                 floor_db: float = FLOOR_DB) -> Speech:
    """The speech without its leading and trailing silence (a short pad kept); phoneme timings follow."""
    bounds = sound_bounds(speech.audio, speech.sample_rate, floor_db)
    if bounds is None:
        return speech
    a, b = max(0.0, bounds[0] - pad_before), min(speech.duration, bounds[1] + pad_after)
    return _cut(speech, [(a, b)])


def shorten_pauses(speech: Speech, max_pause: float = 0.12, floor_db: float = FLOOR_DB) -> Speech:
    """Every silence inside the speech longer than ``max_pause`` shortened to it (its middle taken out): commas
    and sentence breaks keep a pause, the line gets shorter without speaking any faster."""
    loud = _loud(speech.audio, speech.sample_rate, floor_db)
    hop = max(1, int(round(FRAME * speech.sample_rate)))
    idx = np.flatnonzero(loud)
    if len(idx) < 2:
        return speech
    keep, cursor = [], 0.0
    gaps = np.flatnonzero(np.diff(idx) > 1)
    for g in gaps:
        quiet_from, quiet_to = (idx[g] + 1) * hop / speech.sample_rate, idx[g + 1] * hop / speech.sample_rate
        if quiet_to - quiet_from > max_pause:
            half = max_pause / 2
            keep.append((cursor, quiet_from + half))
            cursor = quiet_to - half
    if not keep:
        return speech
    keep.append((cursor, speech.duration))
    return _cut(speech, keep)


def _cut(speech: Speech, keep: list[tuple[float, float]]) -> Speech:
    sr = speech.sample_rate
    pieces = [speech.audio[int(round(a * sr)):int(round(b * sr))] for a, b in keep]
    # the pieces' real edges (sample rounding) so the timings match the audio exactly
    keep = [(int(round(a * sr)) / sr, int(round(b * sr)) / sr) for a, b in keep]
    audio = np.concatenate(pieces).astype(np.float32) if pieces else speech.audio[:0]
    return replace(speech, audio=audio, phonemes=_remap(speech.phonemes, keep))
