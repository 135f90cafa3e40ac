"""Which face is speaking: every face is tracked through a stretch of video and the one whose mouth opening
follows the sound best (Pearson correlation with the speech envelope, frame by frame, at the best shift within
±3 frames) is taken. On a two-person scene (a GRID speaker beside a faces-dev speaker, each line spoken by one of
them while the other's mouth moves silently) zero shift chose wrongly for 1 line of 4; ±3 frames chose all 4.

Used by dubbing to lip-sync only the face that says a line when a shot holds several people.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..log import get_logger
from .landmarks import inter_ocular, mouth_opening

log = get_logger("face.active_speaker")

MAX_LAG = 3  # frames of shift allowed between mouth and sound (120 ms at 25 fps)
MIN_PRESENT = 0.5  # a track must hold a face in at least half the frames to be a candidate


@dataclass
class _Track:
    first: int
    centres: list = field(default_factory=list)  # (frame, x, y)
    opening: dict = field(default_factory=dict)  # frame -> mouth opening
    size: float = 1.0


class FaceTracks:
    """All faces of consecutive frames, linked frame to frame by their nearest centre."""

    def __init__(self, tracker: str = "mediapipe"):
        from .tracking import _create

        self._detector = _create(tracker, video=True)
        self.tracks: list[_Track] = []
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        t = self.frames
        self.frames += 1
        scheme = self._detector.scheme
        taken = set()
        for lm in self._detector.detect(frame):
            c = lm.mean(axis=0)
            size = inter_ocular(lm, scheme)
            best, dist = None, 1.5 * size  # a face moves less than 1.5 eye distances between two frames
            for k, tr in enumerate(self.tracks):
                if k in taken or not tr.centres or tr.centres[-1][0] < t - 5:
                    continue
                d = float(np.hypot(*(np.asarray(tr.centres[-1][1:]) - c)))
                if d < dist:
                    best, dist = k, d
            if best is None:
                self.tracks.append(_Track(t))
                best = len(self.tracks) - 1
            taken.add(best)
            tr = self.tracks[best]
            tr.centres.append((t, float(c[0]), float(c[1])))
            tr.opening[t] = mouth_opening(lm, scheme)
            tr.size = size

    def close(self) -> None:
        self._detector.close()

    def scores(self, envelope: np.ndarray) -> list[tuple[float, tuple[float, float]]]:
        """(correlation with ``envelope`` (one value a frame), median centre) for each face present in at least
        half the frames; the others are left out."""
        out = []
        n = min(self.frames, len(envelope))
        for tr in self.tracks:
            frames = [t for t in tr.opening if t < n]
            if len(frames) < max(3, MIN_PRESENT * n):
                continue
            curve = np.full(n, np.mean([tr.opening[t] for t in frames]))
            curve[frames] = [tr.opening[t] for t in frames]
            corr = _best_lag_pearson(curve, envelope[:n], MAX_LAG)
            xy = np.median(np.asarray([c[1:] for c in tr.centres]), axis=0)
            out.append((corr, (float(xy[0]), float(xy[1]))))
        return out


def _best_lag_pearson(mouth: np.ndarray, sound: np.ndarray, max_lag: int) -> float:
    """The highest correlation of the two curves shifted by up to ``max_lag`` frames either way (the mouth
    often moves a little before or after the sound it makes, and videos are often a frame or two off)."""
    n = len(mouth)
    return max(_pearson(mouth[lag:], sound[:n - lag]) if lag >= 0 else _pearson(mouth[:n + lag], sound[-lag:])
               for lag in range(-max_lag, max_lag + 1) if n - abs(lag) >= 3)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    d = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d) if d > 1e-12 else 0.0


def speech_envelope(audio: np.ndarray, sample_rate: int, fps: float, frames: int) -> np.ndarray:
    """Loudness of the sound per video frame (RMS over each frame's time, in dB above the quietest frames),
    lightly smoothed: the curve a speaking mouth opens and closes with."""
    hop = sample_rate / fps
    out = np.zeros(frames, np.float64)
    for t in range(frames):
        piece = audio[int(t * hop):int((t + 1) * hop)]
        out[t] = float(np.sqrt(np.mean(piece.astype(np.float64) ** 2))) if len(piece) else 0.0
    db = 20 * np.log10(out + 1e-5)
    db = np.maximum(db, np.percentile(db, 10) if frames else 0)
    if frames >= 3:
        db = np.convolve(np.pad(db, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    return db


def pick_speaking_face(scores) -> Optional[tuple[float, float]]:
    """The centre of the face with the highest correlation; None when there are fewer than two candidates (the
    lip-sync's own choice, the largest face, is then right)."""
    if len(scores) < 2:
        return None
    return max(scores, key=lambda s: s[0])[1]
