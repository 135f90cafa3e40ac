"""Lip-sync quality measures computed from face-mesh landmarks and mouth crops.

All landmark measures use landmarks normalised for position, scale (inter-ocular distance = 1) and in-plane
rotation (``studio.face.landmarks.normalise_landmarks``), so they compare mouths, not head poses.
"""
from __future__ import annotations

import numpy as np


def pearson(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if n < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def best_lag(generated, real, max_lag: int = 5) -> int:
    """The shift (frames) of ``generated`` that correlates best with ``real``; positive = generated is late."""
    g, r = np.asarray(generated, float), np.asarray(real, float)
    best, best_c = 0, -np.inf
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            c = pearson(g[lag:], r[: len(r) - lag] if lag else r)
        else:
            c = pearson(g[:lag], r[-lag:])
        if c > best_c + 1e-12:
            best, best_c = lag, c
    return best


def lip_distance(generated: np.ndarray, real: np.ndarray) -> float:
    """LMD: mean Euclidean distance between corresponding normalised lip landmarks, (frames, K, 2) each, in
    inter-ocular units. Each frame's lips are centred first so a head shift does not count as a lip error."""
    n = min(len(generated), len(real))
    g = generated[:n] - generated[:n].mean(axis=1, keepdims=True)
    r = real[:n] - real[:n].mean(axis=1, keepdims=True)
    return float(np.linalg.norm(g - r, axis=2).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=255))
