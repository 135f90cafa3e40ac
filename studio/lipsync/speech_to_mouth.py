"""Speech -> this person's mouth opening and width, learned from their own footage at render time.

A talking video usually carries the person's own voice: its frames say how wide this mouth opens for that
sound. A ridge regression from a window of log-mel frames (0.2 s either side, so it learns the audio-visual
timing itself) to the mouth opening and width measured by the face mesh is fitted in well under a second. No
weights are shipped or downloaded; with no footage the rule-based viseme track is used instead.
"""
from __future__ import annotations

from dataclasses import dataclass

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
DELAY_MIN_SECONDS = 5.0


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
    holdout_corr: float  # opening correlation on the last fifth of the footage (fitted on the rest)
    delay: float = 0.0  # s: the footage's own offset between its sound and its mouth, learned with the map

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The linear map, then each output's quantile mapped to the real mouth's: a ridge fit shrinks towards
        the mean (a mouth that never really opens or closes); this restores the person's full range."""
        raw = features @ self.weights
        return np.stack([np.interp(raw[:, j], self.fitted_q[:, j], self.target_q[:, j]) for j in range(2)],
                        1).astype(np.float32)

    def predict_speech(self, speech: Speech, fps: float, n_frames: int) -> np.ndarray:
        """(n_frames, 2) opening and width for new speech, with the window centred as when fitted."""
        return self.predict(frame_features(speech, fps, n_frames, delay=self.delay))


def _solve(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    reg = ridge * np.eye(x.shape[1])
    reg[-1, -1] = 0.0  # never shrink the bias
    return np.linalg.solve(x.T @ x + reg, x.T @ y)


def _corr(a, b) -> float:
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def fit_regressor(speech: Speech, fps: float, targets: np.ndarray, usable: np.ndarray) -> MouthRegressor:
    """Fit on the usable frames (face found, speech present); the ridge and the window's centre (DELAYS) are
    chosen on the last fifth, then the map is refitted on everything."""
    mel = log_mel(speech)
    y = targets[usable].astype(np.float64)
    cut = int(len(y) * 0.8)
    scores = {}
    # a short footage's held-out fifth is a few seconds: too noisy to move the window on (it picks chance peaks)
    delays = DELAYS if usable.sum() >= DELAY_MIN_SECONDS * fps else (0.0,)
    for delay in delays:
        x = frame_features(speech, fps, len(targets), delay, mel)[usable].astype(np.float64)
        for ridge in RIDGES:
            w = _solve(x[:cut], y[:cut], ridge)
            scores[(delay, ridge)] = _corr((x[cut:] @ w)[:, 0], y[cut:, 0])
    (delay, ridge), c = max(scores.items(), key=lambda kv: kv[1])
    centred = max((v, r) for (d, r), v in scores.items() if d == 0.0)
    if c < centred[0] + DELAY_MARGIN:  # a shifted window must clearly beat the centred one (short footage is noisy)
        (delay, ridge), c = (0.0, centred[1]), centred[0]
    best = (c, ridge, delay)
    x = frame_features(speech, fps, len(targets), best[2], mel)[usable].astype(np.float64)
    w = _solve(x, y, best[1])
    levels = np.linspace(0, 100, 51)
    fitted_q = np.percentile(x @ w, levels, axis=0)
    fitted_q += np.arange(len(levels))[:, None] * 1e-9  # strictly increasing for np.interp
    return MouthRegressor(weights=w.astype(np.float32), fitted_q=fitted_q.astype(np.float64),
                          target_q=np.percentile(y, levels, axis=0), holdout_corr=float(best[0]),
                          delay=float(best[2]))
