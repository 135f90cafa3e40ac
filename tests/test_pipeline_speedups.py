"""The cheaper and GPU-ready stages: blend on the face region, its torch twin, encoder choice, engine cache."""
from __future__ import annotations

import numpy as np
import pytest

from studio.face import detect_faces
from studio.lipsync.blend import blend, match_colours
from studio.types import Patch


@pytest.fixture(scope="module")
def face_and_patch(astronaut):
    face = detect_faces(astronaut)[0]
    x1, y1, x2, y2 = face.box
    rng = np.random.default_rng(0)
    # a patch with a colour cast and noise, so colour matching and mixing both have work to do
    image = np.clip(astronaut[y1:y2, x1:x2].astype(int) + [30, -15, 10] + rng.integers(-20, 20, (y2 - y1, x2 - x1, 3)),
                    0, 255).astype(np.uint8)
    return face, Patch(box=face.box, image=image)


def _weighted_reference(patch, target, weights):
    """The colour match as first written: float32 weighted statistics over the whole box."""
    import cv2

    wsum = float(weights.sum())
    pl = cv2.cvtColor(patch, cv2.COLOR_RGB2LAB).astype(np.float32)
    tl = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    wt = weights[..., None] / wsum
    pm, tm = (pl * wt).sum((0, 1)), (tl * wt).sum((0, 1))
    ps = np.sqrt((((pl - pm) ** 2) * wt).sum((0, 1))) + 1e-3
    ts = np.sqrt((((tl - tm) ** 2) * wt).sum((0, 1))) + 1e-3
    out = (pl - pm) * np.clip(ts / ps, 0.7, 1.4) + tm
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def test_ring_only_colour_match_agrees_with_the_weighted_formula(astronaut, face_and_patch):
    face, patch = face_and_patch
    x1, y1, x2, y2 = face.box
    region = astronaut[y1:y2, x1:x2]
    ring = np.zeros(region.shape[:2], np.float32)
    ring[10:-10:3, 5:-5] = 1
    fast, slow = match_colours(patch.image, region, ring), _weighted_reference(patch.image, region, ring)
    assert np.abs(fast.astype(int) - slow).max() <= 2  # float64 vs float32 statistics


def test_in_place_blend_equals_the_copy(astronaut, face_and_patch):
    face, patch = face_and_patch
    frame = astronaut.copy()
    copy = blend(astronaut, patch, face)
    same = blend(frame, patch, face, inplace=True)
    assert same is frame and np.array_equal(same, copy) and not np.array_equal(copy, astronaut)


def test_torch_blend_matches_numpy_on_cpu(astronaut, face_and_patch):
    from studio.lipsync.blend_torch import blend_torch

    face, patch = face_and_patch
    for color_match in (True, False):
        a = blend(astronaut, patch, face, color_match=color_match)
        b = blend_torch(astronaut, patch, face, "cpu", color_match=color_match)
        assert np.abs(a.astype(int) - b).max() <= 1
        assert (a != astronaut).any()
