"""Compositing an engine's patch into the frame without a visible seam.

Wav2Lip pastes its whole box back, so its edges and colour shift show. Here only a feathered lower-face region
(from the landmarks: below the nose, inside the jaw line) changes, the patch's colours are matched to the frame
around that region's edge first, and the mask reaches zero well inside the patch box, so no box edge can show.
Pixels where the mask is zero are returned bit-exactly as they were.
"""
from __future__ import annotations

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
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigmaX=blur / 2 + 0.5)
    soft[soft < 1e-3] = 0.0
    return soft


def _edge_taper(h: int, w: int, margin: int) -> np.ndarray:
    """1 in the middle of a box, 0 at its border: keeps the mask off the patch edges whatever the landmarks say."""
    if margin <= 0:
        return np.ones((h, w), np.float32)
    ys = np.clip(np.minimum(np.arange(h), np.arange(h)[::-1]) / margin, 0, 1)
    xs = np.clip(np.minimum(np.arange(w), np.arange(w)[::-1]) / margin, 0, 1)
    return np.outer(ys, xs).astype(np.float32)


def match_colours(patch: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Shift the patch's per-channel mean and spread (in Lab) to the target's, measured where weights > 0."""
    import cv2

    wsum = float(weights.sum())
    if wsum < 16:
        return patch
    pl = cv2.cvtColor(patch, cv2.COLOR_RGB2LAB).astype(np.float32)
    tl = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    wt = weights[..., None] / wsum
    pm, tm = (pl * wt).sum((0, 1)), (tl * wt).sum((0, 1))
    ps = np.sqrt((((pl - pm) ** 2) * wt).sum((0, 1))) + 1e-3
    ts = np.sqrt((((tl - tm) ** 2) * wt).sum((0, 1))) + 1e-3
    ratio = np.clip(ts / ps, 0.7, 1.4)  # a bounded contrast fix: large ratios would amplify noise
    out = (pl - pm) * ratio + tm
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def blend(frame: np.ndarray, patch: Patch, face: Face, *, feather: float = 0.12, color_match: bool = True) -> np.ndarray:
    """Return a copy of ``frame`` with ``patch`` composited into the lower face."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (max(0, patch.box[0]), max(0, patch.box[1]), min(w, patch.box[2]), min(h, patch.box[3]))
    if x2 <= x1 or y2 <= y1:
        return frame.copy()
    px, py = x1 - patch.box[0], y1 - patch.box[1]
    image = patch.image[py:py + (y2 - y1), px:px + (x2 - x1)]
    box = (x1, y1, x2, y2)
    mask = lower_face_mask(frame.shape, face, box=box, feather=feather)
    mask *= _edge_taper(y2 - y1, x2 - x1, max(2, (x2 - x1) // 20))
    if patch.mask is not None:
        mask *= patch.mask[py:py + (y2 - y1), px:px + (x2 - x1)].astype(np.float32)
    region = frame[y1:y2, x1:x2]
    if color_match:
        ring = ((mask > 0.05) & (mask < 0.6)).astype(np.float32)  # the soft edge, where a colour step would show
        image = match_colours(image, region, ring)
    m = mask[..., None]
    mixed = np.round(region.astype(np.float32) * (1 - m) + image.astype(np.float32) * m).astype(np.uint8)
    out = frame.copy()
    out[y1:y2, x1:x2] = np.where(m > 0, mixed, region)
    return out
