"""Speech -> this person's mouth opening and width, learned from their own footage at render time.

A talking video usually carries the person's own voice: its frames say how wide this mouth opens for that
sound. A ridge regression from a window of log-mel frames (0.2 s either side, so it learns the audio-visual
timing itself) to the mouth opening and width measured by the face mesh is fitted in well under a second; its
ridge and the window's centre are chosen by blocked cross-validation on the footage itself.

A *general* map (``checkpoints/mouth_map.npz``, fitted by ``scripts/fit_mouth_map.py`` on GRID s1 and the first
70 % of the faces-dev clips: z-scored opening and width of many frames) serves where the person's own speech is
missing or too short: a photo (its output drives the warp's opening), footage without speech (mapped onto the
person's own range), and, averaged with the personal map, footage with speech (a few seconds of it are too few
to learn the whole sound-to-mouth relation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..types import Speech

FEATURE_RATE = 100.0  # Hz of the log-mel frames
N_MELS = 40
CONTEXT = tuple(range(-20, 21, 4))  # feature frames around the video frame: -0.2 s .. +0.2 s in 40 ms steps
RIDGES = (1.0, 10.0, 100.0, 1000.0)
# Where that window is centred (s; positive: the mouth shows a sound that comes later in the track). People differ
# in how far their mouth leads their sound, and a recording's picture can be a little off its sound: the map tries
# each centre and keeps the one that predicts the held-out mouth best.
DELAYS = (-0.24, -0.16, -0.08, 0.0, 0.08, 0.16, 0.24)
DELAY_MARGIN = 0.03
DELAY_MIN_SECONDS = 10.0  # of usable footage before the window may move (shorter: chance peaks)
FOLDS = 5  # blocked cross-validation: contiguous fifths, so neighbouring (near-identical) frames never straddle
GENERAL_MAP_FILE = "mouth_map.npz"


def log_mel(speech: Speech) -> np.ndarray:
    """(T, N_MELS) log-mel energies at FEATURE_RATE, normalised per recording (mean 0, unit spread per band) so
    a louder or differently recorded line maps to the same mouth."""
    import librosa

    audio = speech.audio.astype(np.float32)
    sr = speech.sample_rate
    hop = int(round(sr / FEATURE_RATE))
    mel = librosa.feature.melspectrogram(y=audio, sr=sr, n_fft=int(0.025 * sr) * 2, hop_length=hop,
                                         win_length=int(0.025 * sr), n_mels=N_MELS, fmin=80, fmax=min(7600, sr / 2))
    db = np.log(mel + 1e-8).T
    # silence sets the floor: frames far below the loud ones carry no mouth information
    db = np.maximum(db, np.percentile(db, 95, axis=0) - 12.0)
    return ((db - db.mean(0)) / (db.std(0) + 1e-3)).astype(np.float32)


def frame_features(speech: Speech, fps: float, n_frames: int, delay: float = 0.0, mel=None) -> np.ndarray:
    """(n_frames, len(CONTEXT) * N_MELS + 1) features for video frames 0..n_frames-1 (frame centres + delay)."""
    mel = log_mel(speech) if mel is None else mel
    centre = np.round(((np.arange(n_frames) + 0.5) / fps + delay) * FEATURE_RATE).astype(int)
    cols = [mel[np.clip(centre + k, 0, len(mel) - 1)] for k in CONTEXT]
    return np.hstack(cols + [np.ones((n_frames, 1), np.float32)])


@dataclass(frozen=True)
class MouthRegressor:
    """Linear map from frame_features to (opening, width), with the spread of the fitted curve restored."""

    weights: np.ndarray  # (D, 2)
    fitted_q: np.ndarray  # (Q, 2) quantiles of the map's output on the footage
    target_q: np.ndarray  # (Q, 2) quantiles of the real mouth in the footage
    holdout_corr: float  # opening correlation of out-of-fold predictions on the footage (blocked CV)
    delay: float = 0.0  # s: the footage's own offset between its sound and its mouth, learned with the map
    general: Optional["GeneralMap"] = None  # averaged in (see fit_regressor)
    mix: Optional[np.ndarray] = None  # (4, 2): mean and spread of the personal, then the general, output on the footage

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The linear map, then each output's quantile mapped to the real mouth's: a ridge fit shrinks towards
        the mean (a mouth that never really opens or closes); this restores the person's full range."""
        return self._restore(features @ self.weights)

    def _restore(self, raw: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(raw[:, j], self.fitted_q[:, j], self.target_q[:, j]) for j in range(2)],
                        1).astype(np.float32)

    def predict_speech(self, speech: Speech, fps: float, n_frames: int) -> np.ndarray:
        """(n_frames, 2) opening and width for new speech, with the window centred as when fitted."""
        own = frame_features(speech, fps, n_frames, delay=self.delay) @ self.weights
        if self.general is not None and self.mix is not None:
            gen = self.general.predict_z(speech, fps, n_frames)
            own = (own - self.mix[0]) / self.mix[1] + (gen - self.mix[2]) / self.mix[3]
        return self._restore(own)


def _solve(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    reg = ridge * np.eye(x.shape[1])
    reg[-1, -1] = 0.0  # never shrink the bias
    return np.linalg.solve(x.T @ x + reg, x.T @ y)


def _corr(a, b) -> float:
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _cv_corr(x: np.ndarray, y: np.ndarray, ridges, folds: int = FOLDS) -> dict:
    """Per ridge: the opening correlation of out-of-fold predictions (each contiguous block predicted by a fit on
    the rest; the rest's normal equations are the whole's minus the block's)."""
    gram, rhs = x.T @ x, x.T @ y
    preds = {r: np.zeros(len(y)) for r in ridges}
    for block in np.array_split(np.arange(len(y)), folds):
        xb = x[block]
        g, b = gram - xb.T @ xb, rhs - xb.T @ y[block]
        for r in ridges:
            reg = r * np.eye(len(g))
            reg[-1, -1] = 0.0
            preds[r][block] = (xb @ np.linalg.solve(g + reg, b))[:, 0]
    return {r: _corr(p, y[:, 0]) for r, p in preds.items()}


def fit_regressor(speech: Speech, fps: float, targets: np.ndarray, usable: np.ndarray,
                  general: Optional["GeneralMap"] = None) -> MouthRegressor:
    """Fit on the usable frames (face found, speech present); the ridge and the window's centre (DELAYS) are
    chosen by blocked cross-validation, then the map is refitted on everything. ``general``: a GeneralMap whose
    output is averaged with the personal map's (each z-scored on the footage) before the person's range is
    restored: a few seconds of footage fit the person's timing and manner, many people's frames the rest."""
    mel = log_mel(speech)
    y = targets[usable].astype(np.float64)
    scores = {}
    # short footage: too few blocks of speech to move the window on (it picks chance peaks)
    delays = DELAYS if usable.sum() >= DELAY_MIN_SECONDS * fps else (0.0,)
    folds = FOLDS if len(y) >= 10 * FOLDS else 2
    for delay in delays:
        x = frame_features(speech, fps, len(targets), delay, mel)[usable].astype(np.float64)
        for ridge, c in _cv_corr(x, y, RIDGES, folds).items():
            scores[(delay, ridge)] = c
    (delay, ridge), c = max(scores.items(), key=lambda kv: kv[1])
    centred = max((v, r) for (d, r), v in scores.items() if d == 0.0)
    if c < centred[0] + DELAY_MARGIN:  # a shifted window must clearly beat the centred one (short footage is noisy)
        (delay, ridge), c = (0.0, centred[1]), centred[0]
    x = frame_features(speech, fps, len(targets), delay, mel)[usable].astype(np.float64)
    w = _solve(x, y, ridge)
    own = x @ w
    mix = None
    if general is not None:
        gen = general.predict_z(speech, fps, len(targets))[usable].astype(np.float64)
        mix = np.stack([own.mean(0), own.std(0) + 1e-9, gen.mean(0), gen.std(0) + 1e-9])
        own = (own - mix[0]) / mix[1] + (gen - mix[2]) / mix[3]
    levels = np.linspace(0, 100, 51)
    fitted_q = np.percentile(own, levels, axis=0)
    fitted_q += np.arange(len(levels))[:, None] * 1e-9  # strictly increasing for np.interp
    return MouthRegressor(weights=w.astype(np.float32), fitted_q=fitted_q.astype(np.float64),
                          target_q=np.percentile(y, levels, axis=0), holdout_corr=float(c),
                          delay=float(delay), general=general, mix=mix)


@dataclass(frozen=True)
class GeneralMap:
    """Speech -> z-scored (opening, width) for anyone: fitted on many people's frames (scripts/fit_mouth_map.py)."""

    weights: np.ndarray  # (D, 2) on frame_features at delay 0
    out_q: np.ndarray  # (Q, 2) quantiles of its output on its training frames (levels 0, 2, ..., 100)
    meta: dict

    def predict_z(self, speech: Speech, fps: float, n_frames: int) -> np.ndarray:
        return (frame_features(speech, fps, n_frames) @ self.weights).astype(np.float32)

    def openness(self, speech: Speech, fps: float, n_frames: int) -> np.ndarray:
        """(n_frames,) in [0, 1]: where each frame's predicted opening sits between this map's usual closed
        (10th percentile) and wide open (97th) outputs: the ``open`` parameter of the viseme warp."""
        z = self.predict_z(speech, fps, n_frames)[:, 0]
        lo, hi = np.interp([10, 97], np.linspace(0, 100, len(self.out_q)), self.out_q[:, 0])
        return np.clip((z - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)

    def for_person(self, shapes: np.ndarray) -> "MouthRegressor":
        """The map onto one person's mouth range (``shapes``: their (opening, width) in the footage): for
        footage without speech."""
        levels = np.linspace(0, 100, 51)
        q = np.stack([np.interp(levels, np.linspace(0, 100, len(self.out_q)), self.out_q[:, j]) for j in range(2)], 1)
        q += np.arange(len(levels))[:, None] * 1e-9  # strictly increasing for np.interp
        return MouthRegressor(weights=self.weights, fitted_q=q, target_q=np.percentile(shapes, levels, axis=0),
                              holdout_corr=float(self.meta.get("heldout_corr", 0.0)), delay=0.0)


def fit_general(recordings, ridge: float = 100.0) -> np.ndarray:
    """Weights (D, 2) from (speech, fps, targets (n, 2), usable (n,)) recordings, each one's targets z-scored on
    its usable frames (people differ in mouth size; the map learns the movement, not the size)."""
    xs, ys = [], []
    for speech, fps, targets, usable in recordings:
        y = targets[usable].astype(np.float64)
        xs.append(frame_features(speech, fps, len(targets))[usable].astype(np.float64))
        ys.append((y - y.mean(0)) / (y.std(0) + 1e-6))
    return _solve(np.vstack(xs), np.vstack(ys), ridge)


def load_general_map(path=None) -> Optional[GeneralMap]:
    """The bundled general map, or None when the file is missing (then the rule-based track is used)."""
    import json
    from pathlib import Path

    from ..paths import BUNDLED_CHECKPOINTS

    path = Path(path) if path else BUNDLED_CHECKPOINTS / GENERAL_MAP_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        weights, out_q, meta = z["weights"].astype(np.float32), z["out_q"].astype(np.float64), json.loads(str(z["meta"]))
    if weights.shape != (len(CONTEXT) * N_MELS + 1, 2):
        raise ValueError(f"{path} holds a map for other features {weights.shape}; refit it (scripts/fit_mouth_map.py)")
    return GeneralMap(weights=weights, out_q=out_q, meta=meta)
