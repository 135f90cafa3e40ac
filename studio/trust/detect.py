"""``studio detect FILE``: how likely a talking face's mouth was re-synced (by any tool, marked or not).

Cues, measured per frame on the tracked face and summarised per clip (``measure``):
- audio-visual consistency: the sync score's correlation and its best lag (``studio.lipsync.sync_score``);
- sharpness: Laplacian energy of the mouth region against the eye region (a generated mouth is usually rendered
  at low resolution and scaled up, or drawn: either changes its texture relative to the untouched upper face);
- flicker: frame-to-frame change of the mouth region against the eye region, and the jitter of the lip opening
  (frame-wise generation jitters; real lips move smoothly);
- mouth interior: the spread of brightness inside the open lips (teeth and tongue against a painted interior);
- the blend seam: the gradient across the lower-face outline against the gradient just inside it.
A logistic model over these (``checkpoints/detect_weights.npz``, fitted by ``benchmarks/detect.py --fit`` on the
calibration half of real and re-synced clips, with its provenance) turns them into a probability.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from ..log import get_logger
from ..paths import BUNDLED_CHECKPOINTS

log = get_logger("trust.detect")

WEIGHTS_FILE = "detect_weights.npz"
FEATURES = ("sync_corr", "sync_lag_abs", "sharp_ratio", "flicker_ratio", "lip_jitter", "mouth_spread",
            "seam_ratio", "flicker_corr")
LIKELY, UNCERTAIN, UNLIKELY = "likely re-synced", "uncertain", "no sign of re-syncing"
MAX_SECONDS = 20.0  # enough to decide; longer files are measured on their first 20 s


@dataclass(frozen=True)
class DetectResult:
    path: Path
    probability: Optional[float]  # 0..1 that the mouth was re-synced; None: no face to judge
    verdict: str
    features: dict = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        if self.probability is None:
            return f"{self.path.name}: {self.verdict}"
        f = self.features
        sync = (f"audio-visual sync: correlation {f['sync_corr']:.2f}, lag {f['sync_lag_abs']:.0f} frames"
                if np.isfinite(f.get("sync_corr", np.nan)) else "no sound: judged from the picture alone")
        return (f"{self.path.name}: {self.verdict} (probability {self.probability:.2f})\n{sync}\n"
                f"mouth vs eyes: sharpness {f['sharp_ratio']:+.2f}, flicker {f['flicker_ratio']:+.2f} (log ratios); "
                f"lip jitter {f['lip_jitter']:.2f}\n"
                f"measured on {self.frames} frames in {self.seconds:.1f} s")


def _gray(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _box(points: np.ndarray, shape, grow: float = 0.0):
    x1, y1 = points.min(axis=0)
    x2, y2 = points.max(axis=0)
    gx, gy = (x2 - x1) * grow, (y2 - y1) * grow
    h, w = shape[:2]
    return (int(max(0, x1 - gx)), int(max(0, y1 - gy)), int(min(w, x2 + gx + 1)), int(min(h, y2 + gy + 1)))


def _lap_energy(g: np.ndarray) -> float:
    import cv2

    return float(np.mean(np.abs(cv2.Laplacian(g, cv2.CV_32F, ksize=3)))) if g.size else float("nan")


class _Frames:
    """Per-frame measurements of one clip."""

    def __init__(self):
        self.sharp, self.flick_m, self.flick_e, self.spread, self.seam = [], [], [], [], []
        self.prev: Optional[np.ndarray] = None
        self.prev_boxes = None

    def add(self, frame: np.ndarray, lm: Optional[np.ndarray]) -> None:
        import cv2

        from ..face.landmarks import MP, lower_face_polygon

        if lm is None:
            self.prev = None
            return
        g = _gray(frame)
        mouth = _box(lm[MP["lips_outer_upper"] + MP["lips_outer_lower"]], g.shape, 0.15)
        eyes = _box(lm[[33, 133, 362, 263, 159, 145, 386, 374]], g.shape, 0.15)
        m, e = g[mouth[1]:mouth[3], mouth[0]:mouth[2]], g[eyes[1]:eyes[3], eyes[0]:eyes[2]]
        if m.size < 16 or e.size < 16:
            self.prev = None
            return
        self.sharp.append(np.log((_lap_energy(m) + 1e-3) / (_lap_energy(e) + 1e-3)))
        if self.prev is not None:
            pm, pe = self.prev_boxes
            dm = np.abs(g[pm[1]:pm[3], pm[0]:pm[2]] - self.prev[pm[1]:pm[3], pm[0]:pm[2]]).mean()
            de = np.abs(g[pe[1]:pe[3], pe[0]:pe[2]] - self.prev[pe[1]:pe[3], pe[0]:pe[2]]).mean()
            self.flick_m.append(float(dm))
            self.flick_e.append(float(de))
        self.prev, self.prev_boxes = g, (mouth, eyes)
        # inside the open lips: brightness spread (teeth, tongue, shadow) relative to the face's
        inner = np.round(lm[MP["lips_inner_upper"] + MP["lips_inner_lower"][::-1]]).astype(np.int32)
        mask = np.zeros(g.shape, np.uint8)
        cv2.fillPoly(mask, [inner], 1)
        if mask.sum() >= 20:
            vals = g[mask.astype(bool)]
            self.spread.append(float(vals.std() / (e.std() + 1e-3)))
        # the seam: gradient on the lower-face outline against the gradient a little inside it
        poly = lower_face_polygon(lm)
        centre = lm[MP["mouth_corners"]].mean(axis=0)
        gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
        grad = np.hypot(gx, gy)
        h, w = g.shape

        def along(points):
            p = np.round(points).astype(int)
            p[:, 0], p[:, 1] = np.clip(p[:, 0], 0, w - 1), np.clip(p[:, 1], 0, h - 1)
            return float(grad[p[:, 1], p[:, 0]].mean())

        edge = _dense(poly)
        self.seam.append(np.log((along(edge) + 1e-3) / (along(centre + 0.8 * (edge - centre)) + 1e-3)))


def _dense(poly: np.ndarray, per_side: int = 8) -> np.ndarray:
    closed = np.vstack([poly, poly[:1]])
    t = np.linspace(0, 1, per_side, endpoint=False)[None, :, None]
    return (closed[:-1, None] + t * (closed[1:, None] - closed[:-1, None])).reshape(-1, 2)


def measure(path, *, max_seconds: float = MAX_SECONDS) -> dict:
    """The clip-level features of ``FEATURES`` (plus ``frames``, ``frames_with_face``) of a video file."""
    from ..audio.io import load_audio
    from ..face import track_with_frames
    from ..lipsync.sync_score import observed_opening, score_landmarks
    from ..types import Speech
    from ..video.io import probe, read_frames

    info = probe(path, "video")
    if not info.has_video or info.is_image:
        raise InputError(f"{info.path.name} is not a video; `studio detect` judges talking-face videos")
    limit = int(max_seconds * info.fps)
    acc, landmarks = _Frames(), []
    for frame, face in track_with_frames(read_frames(info, max_frames=limit), info.fps):
        lm = None if face is None else face.landmarks
        landmarks.append(lm)
        acc.add(frame, lm)
    feats = dict(frames=len(landmarks), frames_with_face=sum(lm is not None for lm in landmarks))
    if feats["frames_with_face"] < 12:
        return feats
    audio = None
    if info.has_audio:
        audio, sr = load_audio(path, 16000, what="video's sound", allow_silent=True)
    if audio is not None and np.abs(audio).max() > 1e-4:
        sync = score_landmarks(Speech(audio[: int(max_seconds * 16000)], 16000), info.fps, landmarks)
        feats["sync_corr"] = sync.correlation if sync.correlation is not None else float("nan")
        feats["sync_lag_abs"] = float(abs(sync.lag_frames))
    else:
        feats["sync_corr"] = feats["sync_lag_abs"] = float("nan")
    opening = np.array([np.nan if lm is None else observed_opening(lm) for lm in landmarks])
    o = opening[np.isfinite(opening)]
    feats["lip_jitter"] = float(np.std(np.diff(o, 2)) / (np.std(o) + 1e-4)) if len(o) > 4 else float("nan")
    med = lambda v: float(np.median(v)) if len(v) else float("nan")  # noqa: E731
    feats["sharp_ratio"] = med(acc.sharp)
    fm, fe = np.array(acc.flick_m), np.array(acc.flick_e)
    feats["flicker_ratio"] = float(np.log((fm.mean() + 1e-3) / (fe.mean() + 1e-3))) if len(fm) else float("nan")
    feats["flicker_corr"] = (float(np.corrcoef(fm, fe)[0, 1]) if len(fm) > 3 and fm.std() > 1e-6 and fe.std() > 1e-6
                             else float("nan"))
    feats["mouth_spread"] = med(acc.spread)
    feats["seam_ratio"] = med(acc.seam)
    return {k: (round(v, 5) if isinstance(v, float) and np.isfinite(v) else v) for k, v in feats.items()}


# ---- the logistic model ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_weights(path: Optional[str] = None) -> tuple[dict, float, dict]:
    """({feature: (mean, std, weight of z, weight of z squared)}, bias, provenance)."""
    path = Path(path) if path else BUNDLED_CHECKPOINTS / WEIGHTS_FILE
    if not path.exists():
        raise InputError(f"the detector's weights {path} are missing; run `python benchmarks/detect.py --fit`")
    with np.load(path, allow_pickle=False) as z:
        names = [str(n) for n in z["features"]]
        w = z["weights"].reshape(2, -1)
        table = {n: (float(m), float(s), float(a), float(b))
                 for n, m, s, a, b in zip(names, z["mean"], z["std"], w[0], w[1])}
        return table, float(z["bias"]), json.loads(str(z["meta"]))


def _expand(z: np.ndarray) -> np.ndarray:
    """Standardised cues and their squares: engines differ from real footage in both directions (a network's
    mouth is blurrier than the eyes, a drawn one sharper), so distance from the real average counts too."""
    return np.concatenate([z, z ** 2], axis=-1)


def _standardised(feats: dict, table: dict) -> np.ndarray:
    # a missing cue (no sound, a closed mouth throughout) counts as average: it neither accuses nor clears
    return np.array([((feats.get(n) if np.isfinite(feats.get(n, np.nan)) else t[0]) - t[0]) / t[1]
                     for n, t in table.items()])


def probability(feats: dict, weights: Optional[str] = None) -> float:
    table, bias, _ = load_weights(weights)
    w = np.array([t[2] for t in table.values()] + [t[3] for t in table.values()])
    z = _expand(_standardised(feats, table)) @ w + bias
    return float(1 / (1 + np.exp(-z)))


def fit_weights(feature_rows: list[dict], resynced: list[bool], *, provenance: dict, l2: float = 1.0,
                linear=FEATURES, quadratic=FEATURES, path: Optional[Path] = None) -> Path:
    """Fit the logistic model (Newton's method, L2 penalty) and write it with its provenance. Only the cues in
    ``linear`` get a weight for their value, only those in ``quadratic`` one for their square (others stay 0)."""
    x = np.array([[r.get(n, np.nan) for n in FEATURES] for r in feature_rows], float)
    y = np.asarray(resynced, float)
    real = x[y == 0]  # standardised against real footage: z = how far from what real clips show
    mean = np.nanmean(real, axis=0)
    std = np.nanstd(real, axis=0) + 1e-6
    x = np.where(np.isfinite(x), x, mean)
    use = np.array([n in linear for n in FEATURES] + [n in quadratic for n in FEATURES] + [True])
    z = np.hstack([_expand((x - mean) / std), np.ones((len(x), 1))]) * use
    w = np.zeros(z.shape[1])
    pen = l2 * np.eye(z.shape[1])
    pen[-1, -1] = 0
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) + pen @ w
        hess = (z * (p * (1 - p))[:, None]).T @ z + pen
        w -= np.linalg.solve(hess, grad)
    path = path or BUNDLED_CHECKPOINTS / WEIGHTS_FILE
    meta = dict(provenance, l2=l2, n=len(y), n_resynced=int(y.sum()), linear=list(linear), quadratic=list(quadratic),
                what="logistic regression over studio.trust.detect.FEATURES, standardised")
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, features=np.array(FEATURES), mean=mean, std=std, weights=w[:-1], bias=np.float64(w[-1]),
             meta=np.array(json.dumps(meta)))
    tmp.replace(path)
    load_weights.cache_clear()
    return path


def verdict(p: Optional[float]) -> str:
    if p is None:
        return "no face found to judge"
    return LIKELY if p >= 0.7 else UNCERTAIN if p >= 0.3 else UNLIKELY


def detect(path, *, max_seconds: float = MAX_SECONDS) -> DetectResult:
    """How likely the mouth of the talking face in ``path`` was re-synced."""
    t0 = time.perf_counter()
    path = Path(path)
    feats = measure(path, max_seconds=max_seconds)
    if feats.get("frames_with_face", 0) < 12:
        return DetectResult(path, None, verdict(None), feats, feats.get("frames", 0), time.perf_counter() - t0)
    p = round(probability(feats), 3)
    return DetectResult(path, p, verdict(p), feats, feats["frames"], round(time.perf_counter() - t0, 2))
