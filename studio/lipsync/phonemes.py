"""Speech -> a per-frame track of mouth parameters (visemes).

Each video frame gets five numbers in [0, 1]:
  open   - jaw drop and lip gap ("a" wide open, "i" slightly open, "m" shut)
  round  - lips pulled in and rounded ("o", "u", "w")
  spread - lips stretched sideways ("i", "e")
  press  - lips pressed together (p, b, m): forces the gap shut
  fv     - lower lip tucked under the upper teeth (f, v)

From TTS phoneme timings (IPA as espeak writes it) when the speech has them; otherwise from the audio alone:
loudness in the speech band drives the opening (syllable nuclei are loud and open; consonant closures and pauses
are quiet), and the balance of high to low formant energy drives spread against rounding.
Targets are then smoothed (co-articulation: lips move continuously and start moving before the sound) and
sampled at the video's frame rate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import Speech

TRACK_RATE = 100.0  # Hz of the internal track
ANTICIPATION = 0.04  # s: the mouth shape leads the sound it makes (phoneme timings mark the sound)
# The loudness envelope already rises before a vowel's peak, so the audio path needs a delay instead: measured on
# GRID s1 (benchmarks/lipsync_quality.py), +0.04 s made the mouth lead the real one by 2 frames at 25 fps.
AUDIO_SHIFT = -0.04
LEGACY_AUDIO_SHIFT = -0.04  # the first engine's value, kept reachable for comparisons (engine "visemes-v1")
PARAMS = ("open", "round", "spread", "press", "fv")

# (open, round, spread, press, fv)
_VOWELS = {
    "a": (0.95, 0.0, 0.15, 0, 0), "ɑ": (1.0, 0.1, 0.0, 0, 0), "æ": (0.85, 0.0, 0.35, 0, 0),
    "ʌ": (0.7, 0.0, 0.1, 0, 0), "ɐ": (0.7, 0.0, 0.1, 0, 0), "ɒ": (0.85, 0.35, 0.0, 0, 0),
    "e": (0.5, 0.0, 0.55, 0, 0), "ɛ": (0.6, 0.0, 0.45, 0, 0), "ə": (0.4, 0.0, 0.1, 0, 0),
    "ɚ": (0.35, 0.35, 0.0, 0, 0), "ɜ": (0.45, 0.2, 0.1, 0, 0), "ᵻ": (0.3, 0.0, 0.4, 0, 0),
    "i": (0.25, 0.0, 0.85, 0, 0), "ɪ": (0.3, 0.0, 0.6, 0, 0), "y": (0.25, 0.8, 0.0, 0, 0),
    "o": (0.6, 0.75, 0.0, 0, 0), "ɔ": (0.7, 0.6, 0.0, 0, 0), "ø": (0.45, 0.7, 0.0, 0, 0),
    "u": (0.25, 1.0, 0.0, 0, 0), "ʊ": (0.3, 0.8, 0.0, 0, 0), "ɯ": (0.3, 0.0, 0.4, 0, 0),
}
_CONSONANTS = {
    **{c: (0.0, 0.0, 0.0, 1, 0) for c in "pbm"},
    **{c: (0.12, 0.0, 0.1, 0, 1) for c in "fv"},
    "w": (0.15, 0.95, 0.0, 0, 0), "ʍ": (0.15, 0.95, 0.0, 0, 0),
    **{c: (0.2, 0.0, 0.25, 0, 0) for c in "θð"},
    **{c: (0.15, 0.0, 0.35, 0, 0) for c in "szt"},
    **{c: (0.2, 0.0, 0.2, 0, 0) for c in "dnlɾ"},
    **{c: (0.22, 0.55, 0.0, 0, 0) for c in "ʃʒ"},
    "ɹ": (0.22, 0.45, 0.0, 0, 0), "r": (0.25, 0.3, 0.0, 0, 0), "j": (0.2, 0.0, 0.5, 0, 0),
    **{c: (0.35, 0.0, 0.1, 0, 0) for c in "kgŋxh"}, "ʔ": (0.1, 0, 0, 0, 0),
}
_REST = (0.0, 0.0, 0.0, 0.0, 0.0)
_PAUSE_SYMBOLS = set(".,;:!?…—-\"' \n")


def viseme_of(phoneme: str):
    """Mouth targets for one IPA symbol; None for symbols with no shape of their own (stress, length marks)."""
    if not phoneme:
        return None
    if phoneme in _PAUSE_SYMBOLS or phoneme.isspace():
        return _REST
    base = phoneme[0]
    if base in _VOWELS:
        return _VOWELS[base]
    if base in _CONSONANTS:
        return _CONSONANTS[base]
    return None  # ˈ ˌ ː and combining marks: keep the neighbours' shape


@dataclass(frozen=True)
class VisemeTrack:
    """Mouth parameters per video frame: ``values`` has shape (n_frames, 5) in the order of PARAMS."""

    values: np.ndarray
    fps: float
    source: str  # "phonemes" or "audio"

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[:, PARAMS.index(name)]


def _targets_from_phonemes(speech: Speech, n: int) -> np.ndarray:
    track = np.zeros((n, 5), np.float32)
    t = np.arange(n) / TRACK_RATE
    items = [(p.start, p.end, viseme_of(p.phoneme)) for p in speech.phonemes]
    # symbols without a shape take the shape of the next symbol that has one (stress marks precede vowels)
    shapes, nxt = [], _REST
    for start, end, v in reversed(items):
        nxt = v if v is not None else nxt
        shapes.append((start, end, nxt))
    for start, end, v in reversed(shapes):
        sel = (t >= start) & (t < end)
        track[sel] = v
    return track


def _smooth(track: np.ndarray, sigma_s: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(track, sigma=sigma_s * TRACK_RATE, axis=0, mode="nearest")


def _track_from_phonemes(speech: Speech) -> np.ndarray:
    n = int(np.ceil(speech.duration * TRACK_RATE)) + 1
    raw = _targets_from_phonemes(speech, n)
    smooth = _smooth(raw, 0.03)
    # bilabials must really close: a Gaussian would leave them half open between two open vowels
    press = _smooth(raw[:, 3:4], 0.015)[:, 0]
    smooth[:, 0] *= 1.0 - np.clip(press * 1.6, 0, 1)
    smooth[:, 3] = np.clip(press * 1.6, 0, 1)
    return smooth


def _track_from_audio(speech: Speech) -> np.ndarray:
    """Opening from band-limited loudness; spread vs round from the high/low formant energy balance."""
    from scipy.signal import stft

    sr = speech.sample_rate
    hop = int(sr / TRACK_RATE)
    f, _, z = stft(speech.audio, fs=sr, nperseg=hop * 4, noverlap=hop * 3, boundary="even", padded=True)
    power = np.abs(z) ** 2
    band = (f >= 100) & (f <= 4000)
    db = 10 * np.log10(power[band].sum(axis=0) + 1e-10)
    peak = np.percentile(db, 95)
    loud = np.clip((db - (peak - 30.0)) / 30.0, 0, 1)
    open_ = np.clip(loud ** 1.5 * 1.1, 0, 1)
    low = power[(f >= 250) & (f < 1000)].sum(axis=0) + 1e-10
    high = power[(f >= 1500) & (f < 3500)].sum(axis=0) + 1e-10
    balance = np.log10(high / low)
    voiced = loud > 0.3
    centre = np.median(balance[voiced]) if voiced.any() else 0.0
    spread = np.clip((balance - centre) * 0.8, 0, 1) * voiced
    round_ = np.clip((centre - balance) * 0.8, 0, 1) * voiced
    n = int(np.ceil(speech.duration * TRACK_RATE)) + 1
    out = np.zeros((n, 5), np.float32)
    m = min(n, len(open_))
    out[:m, 0], out[:m, 1], out[:m, 2] = open_[:m], round_[:m], spread[:m]
    return _smooth(out, 0.025)


def viseme_track(speech: Speech, fps: float, n_frames: int, legacy_timing: bool = False) -> VisemeTrack:
    """The mouth parameters for output frames 0..n_frames-1 at ``fps`` (``legacy_timing``: the first engine's)."""
    if speech.phonemes:
        track, source, shift = _track_from_phonemes(speech), "phonemes", ANTICIPATION
    else:
        track, source = _track_from_audio(speech), "audio"
        shift = LEGACY_AUDIO_SHIFT if legacy_timing else AUDIO_SHIFT
    # average over each frame's time span, shifted so the shape leads the sound slightly
    t = (np.arange(n_frames) + 0.5) / fps + shift
    idx = np.clip(np.round(t * TRACK_RATE).astype(int), 0, len(track) - 1)
    half = max(1, int(TRACK_RATE / fps / 2))
    csum = np.vstack([np.zeros((1, 5)), np.cumsum(track, axis=0)])
    lo, hi = np.clip(idx - half, 0, len(track)), np.clip(idx + half + 1, 0, len(track))
    values = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)[:, None]
    values[t - shift > speech.duration + 0.05] = 0.0  # after the speech ends: mouth at rest
    return VisemeTrack(values=np.clip(values, 0, 1).astype(np.float32), fps=fps, source=source)
