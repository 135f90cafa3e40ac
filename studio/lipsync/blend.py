"""Compositing an engine's patch into the frame without a visible seam.

Wav2Lip pastes its whole box back, so its edges and colour shift show. Here only a feathered lower-face region
(from the landmarks: below the nose, inside the jaw line) changes, the patch's colours are matched to the frame
around that region's edge first, and the mask reaches zero well inside the patch box, so no box edge can show.
Pixels where the mask is zero are returned bit-exactly as they were.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..face.landmarks import inter_ocular, lower_face_polygon
from ..types import Face, Patch

JAW_ROOM = 1.12  # the mask reaches a little beyond the jaw line, so a dropped chin is not cut off


def lower_face_mask(shape: tuple[int, int], face: Face, box=None, feather: float = 0.12) -> np.ndarray:
    """A float32 mask of ``shape`` (or of ``box``'s size, in box coordinates): 1 inside the lower face, easing
    to 0 over ``feather`` x the inter-ocular distance *inside* the polygon's edge."""
    import cv2

    h, w = shape[:2]
    x0, y0 = (box[0], box[1]) if box is not None else (0, 0)
    if box is not None:
        w, h = box[2] - box[0], box[3] - box[1]
    poly = lower_face_polygon(face.landmarks, face.scheme, expand=JAW_ROOM) - np.array([x0, y0], np.float32)
    blur = max(1.0, feather * inter_ocular(face.landmarks, face.scheme))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    # shrink first so the soft edge lies inside the polygon, then soften
    k = int(2 * round(blur) + 1)
    mask = cv2.erode(mask, _ellipse(k))
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigmaX=blur / 2 + 0.5)
    soft[soft < 1e-3] = 0.0
    return soft


@lru_cache(maxsize=64)
def _ellipse(k: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


@lru_cache(maxsize=64)
def _edge_taper(h: int, w: int, margin: int) -> np.ndarray:
    """1 in the middle of a box, 0 at its border: keeps the mask off the patch edges whatever the landmarks say.
    Cached (a tracked face keeps its box size for many frames); read-only."""
    if margin <= 0:
        return np.ones((h, w), np.float32)
    ys = np.clip(np.minimum(np.arange(h), np.arange(h)[::-1]) / margin, 0, 1)
    xs = np.clip(np.minimum(np.arange(w), np.arange(w)[::-1]) / margin, 0, 1)
    taper = np.outer(ys, xs).astype(np.float32)
    taper.flags.writeable = False
    return taper


def _lab(pixels: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(pixels, cv2.COLOR_RGB2LAB)


def colour_stats(patch: np.ndarray, target: np.ndarray, ring: np.ndarray):
    """Per-channel Lab (mean, spread) of the patch and of the target over the ``ring`` pixels (a boolean mask),
    as float64; None when the ring is too small to measure. Only the ring's pixels are converted."""
    if int(ring.sum()) < 16:
        return None
    pl = _lab(patch[ring][None]).reshape(-1, 3).astype(np.float64)
    tl = _lab(target[ring][None]).reshape(-1, 3).astype(np.float64)
    pm, tm = pl.mean(0), tl.mean(0)
    ps, ts = pl.std(0) + 1e-3, tl.std(0) + 1e-3
    ratio = np.clip(ts / ps, 0.7, 1.4)  # a bounded contrast fix: large ratios would amplify noise
    return pm, tm, ratio


def apply_colour_shift(patch: np.ndarray, stats) -> np.ndarray:
    """The patch with its Lab colours moved by ``colour_stats``' shift."""
    import cv2

    pm, tm, ratio = (np.asarray(v, np.float32) for v in stats)
    out = (_lab(patch).astype(np.float32) - pm) * ratio + tm
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def match_colours(patch: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Shift the patch's per-channel mean and spread (in Lab) to the target's, measured where weights > 0."""
    stats = colour_stats(patch, target, weights > 0)
    return patch if stats is None else apply_colour_shift(patch, stats)


def blend_region(frame: np.ndarray, patch: Patch, face: Face, feather: float = 0.12):
    """Where the patch goes: (y0, y1, x0, x1) of the smallest frame rectangle holding every pixel the blend may
    change, the mask there (float32) and the patch's pixels there; None when nothing changes."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (max(0, patch.box[0]), max(0, patch.box[1]), min(w, patch.box[2]), min(h, patch.box[3]))
    if x2 <= x1 or y2 <= y1:
        return None
    px, py = x1 - patch.box[0], y1 - patch.box[1]
    image = patch.image[py:py + (y2 - y1), px:px + (x2 - x1)]
    mask = lower_face_mask(frame.shape, face, box=(x1, y1, x2, y2), feather=feather)
    mask *= _edge_taper(y2 - y1, x2 - x1, max(2, (x2 - x1) // 20))
    if patch.mask is not None:
        mask *= patch.mask[py:py + (y2 - y1), px:px + (x2 - x1)].astype(np.float32)
    # the mask is zero over much of the box (everything above the nose): work on its bounding rectangle only
    rows, cols = np.flatnonzero(mask.max(axis=1) > 0), np.flatnonzero(mask.max(axis=0) > 0)
    if rows.size == 0:
        return None
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return (y1 + r0, y1 + r1, x1 + c0, x1 + c1), mask[r0:r1, c0:c1], image[r0:r1, c0:c1]


def blend(frame: np.ndarray, patch: Patch, face: Face, *, feather: float = 0.12, color_match: bool = True,
          inplace: bool = False) -> np.ndarray:
    """``frame`` with ``patch`` composited into the lower face: a copy, or ``frame`` itself when ``inplace``."""
    out = frame if inplace else frame.copy()
    found = blend_region(frame, patch, face, feather)
    if found is None:
        return out
    (y0, y1, x0, x1), mask, image = found
    region = frame[y0:y1, x0:x1]
    if color_match:
        stats = colour_stats(image, region, (mask > 0.05) & (mask < 0.6))  # the soft edge, where a step would show
        if stats is not None:
            image = apply_colour_shift(image, stats)
    m = mask[..., None]
    mixed = np.round(region.astype(np.float32) * (1 - m) + image.astype(np.float32) * m).astype(np.uint8)
    out[y0:y1, x0:x1] = np.where(m > 0, mixed, region)
    return out
