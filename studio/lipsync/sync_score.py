"""Audio-visual sync score: does the mouth follow the speech?

Measured without downloaded weights. The speech gives a per-frame mouth-opening *prediction*: a ridge regression
from log-mel frames around each video frame (fitted here on GRID s1 and faces-dev real clips, stored as a small
``checkpoints/sync_regressor.npz`` with its provenance; no pickle). The video gives the *observed* opening: the
gap between the inner lips from the face mesh, in inter-ocular units. The score is the Pearson correlation of the
two curves at the best lag within +-``MAX_LAG_SECONDS``; weak segments are sliding windows with speech where that
correlation is low or the mouth does not move. Both curves are normalised per clip (z-scores), so the person's
mouth size and the recording level do not matter.

Use it on finished media (:func:`score_video`) or incrementally while rendering (:class:`SyncMeter`).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

from ..log import get_logger
from ..paths import BUNDLED_CHECKPOINTS
from ..types import Face, Speech, SyncScore

log = get_logger("sync")

REGRESSOR_FILE = "sync_regressor.npz"
MAX_LAG_SECONDS = 0.12  # lag search: +-3 frames at 25 fps; a wider search lets mismatched audio find chance peaks
WINDOW_SECONDS = 2.0  # weak-segment windows
HOP_SECONDS = 0.5
WEAK_CORRELATION = 0.05  # a window with speech whose correlation is below this is weak
FROZEN_OPENING = 0.008  # inter-ocular units: a mouth whose opening varies less than this within a window is frozen
MIN_FRAMES = 12  # fewer frames with a face than this give no score
BANDS = 20  # mel bands after pooling the 80 of studio.audio.mel
OFFSETS = np.round(np.arange(-0.2, 0.2001, 0.04), 3)  # seconds around each video frame the regressor sees
SPAN = 0.04  # seconds of mel averaged at each offset
# Both curves lose their slow part (a moving average over this span) before they are compared: what is left is the
# syllable-rate movement. Without it any speech "matches" any talking mouth that is closed in the pauses (on GRID,
# whose sentences all share one rhythm, mismatched audio then correlated at 0.71 against 0.87 for the real audio).
HIGHPASS_SECONDS = 0.28


# ---- the two curves -----------------------------------------------------------------------------------------------
def observed_opening(landmarks: Optional[np.ndarray], scheme: str = "mediapipe478") -> float:
    """Inner-lip gap (mean of three vertical pairs) over the inter-ocular distance; NaN without landmarks."""
    if landmarks is None:
        return float("nan")
    from ..face.landmarks import inter_ocular

    lm = np.asarray(landmarks, np.float64)
    if scheme == "mediapipe478":
        pairs = [(82, 87), (13, 14), (312, 317)]
    else:  # ibug68 inner lips
        pairs = [(61, 67), (62, 66), (63, 65)]
    gap = np.mean([np.linalg.norm(lm[a] - lm[b]) for a, b in pairs])
    return float(gap / inter_ocular(lm, scheme))


def _mel_16k(speech: Speech) -> np.ndarray:
    from ..audio.io import resample
    from ..audio.mel import SAMPLE_RATE, wav2lip_mel

    audio = speech.audio if speech.sample_rate == SAMPLE_RATE else resample(speech.audio, speech.sample_rate,
                                                                               SAMPLE_RATE)
    if len(audio) < 2:
        audio = np.zeros(2, np.float32)
    mel = wav2lip_mel(audio)  # (80, T) at 80 fps, in [-4, 4]
    return mel.reshape(BANDS, -1, mel.shape[1]).mean(axis=1)  # (BANDS, T)


def speech_features(speech: Speech, fps: float, n_frames: int) -> np.ndarray:
    """(n_frames, len(OFFSETS) * BANDS) features of the speech around each video frame's time, z-scored per band
    over the clip (so loudness and microphone colour drop out)."""
    from ..audio.mel import MEL_FPS

    mel = _mel_16k(speech)
    mel = (mel - mel.mean(axis=1, keepdims=True)) / (mel.std(axis=1, keepdims=True) + 1e-3)
    # cumulative sums give the mean over any span of mel frames in O(1)
    csum = np.concatenate([np.zeros((BANDS, 1)), np.cumsum(mel, axis=1)], axis=1)
    n_mel = mel.shape[1]
    t = np.arange(n_frames) / fps
    cols = []
    for off in OFFSETS:
        a = np.clip(np.round((t + off - SPAN / 2) * MEL_FPS).astype(int), 0, n_mel - 1)
        b = np.clip(a + max(1, int(round(SPAN * MEL_FPS))), 1, n_mel)
        cols.append(((csum[:, b] - csum[:, a]) / (b - a)).T)
    return np.concatenate(cols, axis=1).astype(np.float32)


def speech_activity(speech: Speech, fps: float, n_frames: int) -> np.ndarray:
    """True for frames whose 0.2 s around hold speech-level energy (within 30 dB of the clip's loud frames)."""
    from ..audio.mel import MEL_FPS

    mel = _mel_16k(speech)
    energy = mel.mean(axis=0)  # [-4, 4] ~ 100 dB range: 1 unit ~ 12.5 dB
    loud = np.percentile(energy, 95)
    active = energy > loud - 30 / 12.5
    idx = np.clip((np.arange(n_frames) / fps * MEL_FPS).astype(int), 0, len(energy) - 1)
    half = int(0.1 * MEL_FPS)
    csum = np.concatenate([[0], np.cumsum(active)])
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(active))
    return (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1) > 0.5


@lru_cache(maxsize=2)
def load_regressor(path: Optional[str] = None) -> tuple[np.ndarray, float, dict]:
    """(weights, bias, provenance) of the audio -> mouth-opening ridge regression."""
    path = Path(path) if path else BUNDLED_CHECKPOINTS / REGRESSOR_FILE
    with np.load(path, allow_pickle=False) as z:
        weights, bias = z["weights"].astype(np.float32), float(z["bias"])
        meta = json.loads(str(z["meta"]))
    if weights.shape != (len(OFFSETS) * BANDS,):
        raise ValueError(f"{path} holds a regressor for other features ({weights.shape}); refit it")
    return weights, bias, meta


def predicted_opening(speech: Speech, fps: float, n_frames: int, regressor: Optional[str] = None) -> np.ndarray:
    weights, bias, _ = load_regressor(regressor)
    return speech_features(speech, fps, n_frames) @ weights + bias


def highpass(x: np.ndarray, fps: float) -> np.ndarray:
    """``x`` (frames, ...) minus its centred moving average over ``HIGHPASS_SECONDS`` (edges repeated)."""
    k = max(3, int(round(HIGHPASS_SECONDS * fps)) | 1)
    x = np.asarray(x, np.float64)
    pad = np.pad(x, [(k // 2, k // 2)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    csum = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(pad, axis=0)])
    return x - (csum[k:] - csum[:-k]) / k


# ---- scoring ------------------------------------------------------------------------------------------------------
def _z(x: np.ndarray) -> np.ndarray:
    s = x.std()
    return (x - x.mean()) / s if s > 1e-9 else x * 0.0


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _shifted(pred: np.ndarray, obs: np.ndarray, ok: np.ndarray, lag: int):
    """Pairs (pred[t], obs[t + lag]) where both exist and the face was seen; lag > 0 = the mouth is late."""
    n = len(pred)
    t = np.arange(max(0, -lag), min(n, n - lag))
    t = t[ok[t + lag]]
    return t, pred[t], obs[t + lag]


def score_curves(predicted: np.ndarray, observed: np.ndarray, fps: float, active: Optional[np.ndarray] = None
                 ) -> SyncScore:
    """Score an observed mouth-opening curve (NaN where no face) against the opening predicted from the speech."""
    predicted = np.asarray(predicted, np.float64)
    observed = np.asarray(observed, np.float64)
    n = min(len(predicted), len(observed))
    predicted, observed = predicted[:n], observed[:n]
    active = np.ones(n, bool) if active is None else np.asarray(active, bool)[:n]
    ok = np.isfinite(observed)
    measured = int(ok.sum())
    if measured < MIN_FRAMES:
        return SyncScore(score=None, correlation=None, lag_frames=0, lag_seconds=0.0, weak_segments=(),
                         frames_measured=measured)
    raw = observed
    predicted = highpass(predicted, fps)
    observed = np.where(ok, highpass(np.where(ok, observed, np.nanmean(observed)), fps), np.nan)
    max_lag = max(1, int(round(MAX_LAG_SECONDS * fps)))
    best_lag, best = 0, -np.inf
    for lag in range(-max_lag, max_lag + 1):
        _, p, o = _shifted(predicted, observed, ok, lag)
        c = _corr(p, o) - 0.01 * abs(lag)  # ties go to the smaller lag
        if c > best:
            best_lag, best = lag, c
    _, p, o = _shifted(predicted, observed, ok, best_lag)
    r = _corr(p, o)
    weak = _weak_segments(predicted, observed, raw, ok, active, fps, best_lag)
    return SyncScore(score=calibrated(r), correlation=round(r, 4), lag_frames=best_lag,
                     lag_seconds=round(best_lag / fps, 3), weak_segments=weak, frames_measured=measured)


def _weak_segments(pred, obs, raw, ok, active, fps, lag) -> tuple[tuple[float, float], ...]:
    """Time ranges (s) of sliding windows with speech where the mouth does not follow it, merged."""
    n = len(pred)
    win, hop = max(MIN_FRAMES, int(round(WINDOW_SECONDS * fps))), max(1, int(round(HOP_SECONDS * fps)))
    if n < win:
        starts = [0]
        win = n
    else:
        starts = list(range(0, n - win + 1, hop))
        if starts[-1] != n - win:
            starts.append(n - win)
    spans: list[list[float]] = []
    valid, _, _ = _shifted(pred, obs, ok, lag)
    for s in starts:
        if active[s:s + win].mean() < 0.3:  # mostly silence: nothing to follow
            continue
        t = valid[(valid >= s) & (valid < s + win)]
        if len(t) < MIN_FRAMES:
            continue
        p, o, r = pred[t], obs[t + lag], raw[t + lag]
        frozen = np.percentile(r, 90) - np.percentile(r, 10) < FROZEN_OPENING
        if frozen or _corr(p, o) < WEAK_CORRELATION:
            a, b = s / fps, (s + win) / fps
            if spans and a <= spans[-1][1]:
                spans[-1][1] = b
            else:
                spans.append([a, b])
    return tuple((round(a, 2), round(b, 2)) for a, b in spans)


def calibrated(r: float) -> float:
    """The score is the correlation itself, clipped to [0, 1]: an interpretable number. Measured on held-out real
    clips (benchmarks/sync_score.py, README "Sync score"): GRID s1 median 0.75, faces-dev 0.38; the same faces with
    another clip's speech 0.40 and 0.21."""
    return round(float(np.clip(r, 0.0, 1.0)), 3)


# ---- finished media and rendering -------------------------------------------------------------------------------
def score_landmarks(speech: Speech, fps: float, landmarks: list, scheme: str = "mediapipe478",
                    regressor: Optional[str] = None) -> SyncScore:
    """Score per-frame landmarks (arrays, or None where no face) against ``speech``."""
    observed = np.array([observed_opening(lm, scheme) for lm in landmarks])
    n = len(observed)
    return score_curves(predicted_opening(speech, fps, n, regressor), observed, fps, speech_activity(speech, fps, n))


def score_video(path, speech: Optional[Speech] = None, *, face_index: Optional[int] = None,
                max_seconds: Optional[float] = None) -> SyncScore:
    """Track the face in a video file and score its mouth against ``speech`` (default: the file's own sound)."""
    from ..audio.io import load_audio
    from ..face import track_with_frames
    from ..video.io import probe, read_frames

    info = probe(path, "video")
    if speech is None:
        audio, sr = load_audio(path, 16000, what="video's sound", allow_silent=True)
        speech = Speech(audio, sr)
    limit = int(max_seconds * info.fps) if max_seconds else None
    landmarks = [None if f is None else f.landmarks
                 for _, f in track_with_frames(read_frames(info, max_frames=limit), info.fps, face_index=face_index)]
    return score_landmarks(speech, info.fps, landmarks)


class SyncMeter:
    """Accumulates the mouth of each output frame during a render; ``result()`` scores it against the speech.

        meter = SyncMeter(speech, fps)
        meter.add(index, face)                 # landmarks already measured on the output frame
        meter.add_frame(index, frame, face)    # or: re-track the output mouth inside the input face's box
        score = meter.result()

    ``add_frame`` runs the face mesh on a crop around the face (at most ``CROP_SIDE`` px), since the mouth was
    re-rendered and the input frame's landmarks show the old one. It is ``measure(index, cut(frame, face))``:
    a render cuts in its blend worker and measures in a worker of its own.
    """

    CROP_SIDE = 192

    def __init__(self, speech: Speech, fps: float):
        self.speech, self.fps = speech, fps
        self._open: dict[int, float] = {}
        self._mesh = None

    def add(self, index: int, face: Optional[Face]) -> None:
        if face is not None:
            self._open[int(index)] = observed_opening(face.landmarks, face.scheme)

    def add_frame(self, index: int, frame: np.ndarray, face: Optional[Face]) -> None:
        if face is None:
            return
        self.measure(index, self.cut(frame, face))

    def measure(self, index: int, crop: Optional[np.ndarray]) -> None:
        """Run the face mesh on a crop from :meth:`cut` (in frame order: the mesh follows the face between
        frames). ``cut`` and ``measure`` may run in different threads (a render does), ``measure`` in one."""
        lm = self._track_crop(crop)
        if lm is not None:
            self._open[int(index)] = observed_opening(lm)

    def cut(self, frame: np.ndarray, face: Face) -> Optional[np.ndarray]:
        """The output face (a square around the input face's box, with margin), at most ``CROP_SIDE`` px: a
        copy, so the frame may change or go once this returns; None when the box is off the frame."""
        import cv2

        x1, y1, x2, y2 = face.box
        side = max(x2 - x1, y2 - y1) * 1.3  # a square with margin: the mesh wants the whole face
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        h, w = frame.shape[:2]
        a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        c, d = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        crop = frame[b:d, a:c]
        if crop.size == 0:
            return None
        scale = min(1.0, self.CROP_SIDE / max(crop.shape[:2]))
        if scale < 1.0:
            return cv2.resize(crop, (int(crop.shape[1] * scale), int(crop.shape[0] * scale)),
                              interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(crop).copy()

    def _track_crop(self, crop: Optional[np.ndarray]) -> Optional[np.ndarray]:
        from ..face.tracking import MediapipeDetector

        if crop is None:
            return None
        if self._mesh is None:
            self._mesh = MediapipeDetector(video=True, max_faces=1)
        try:
            found = self._mesh._run(self._mesh._mesh, crop)  # no tiled search: the crop is the face
        except RuntimeError as e:  # a failed graph must not fail the render: this frame goes unmeasured
            log.debug("sync meter: face mesh failed (%s); restarting it", e)
            self._mesh.close()
            self._mesh = None
            return None
        return found[0] if found else None

    def result(self) -> SyncScore:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
        n = max(self._open, default=-1) + 1
        observed = np.full(n, np.nan)
        for i, v in self._open.items():
            observed[i] = v
        if n < MIN_FRAMES:
            return score_curves(np.zeros(n), observed, self.fps)
        return score_curves(predicted_opening(self.speech, self.fps, n), observed, self.fps,
                            speech_activity(self.speech, self.fps, n))
