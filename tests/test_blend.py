"""Seam-free blending: only the feathered lower face changes, colours are matched, no box edge."""
from __future__ import annotations

import numpy as np
import pytest

from studio.face import detect_faces
from studio.lipsync.blend import blend, lower_face_mask, match_colours
from studio.types import Patch


@pytest.fixture(scope="module")
def face(astronaut):
    return detect_faces(astronaut)[0]


def test_pixels_outside_the_mask_are_unchanged(astronaut, face):
    x1, y1, x2, y2 = face.box
    patch = Patch(box=face.box, image=np.full((y2 - y1, x2 - x1, 3), 255, np.uint8))
    out = blend(astronaut, patch, face, color_match=False)
    mask = lower_face_mask(astronaut.shape, face, box=face.box)
    full = np.zeros(astronaut.shape[:2], np.float32)
    full[y1:y2, x1:x2] = mask
    outside = full == 0
    assert np.array_equal(out[outside], astronaut[outside])  # bit-exact
    assert (out[full > 0.99] != astronaut[full > 0.99]).any()
    nose_y = face.landmarks[2, 1]
    assert np.array_equal(out[: int(nose_y) - 2], astronaut[: int(nose_y) - 2])  # nothing above the nose


def test_mask_is_soft_and_stays_off_the_box_edge(astronaut, face):
    mask = lower_face_mask(astronaut.shape, face, box=face.box)
    assert mask.max() == pytest.approx(1, abs=1e-3)
    assert np.abs(np.diff(mask, axis=0)).max() < 0.35 and np.abs(np.diff(mask, axis=1)).max() < 0.35
    x1, y1, x2, y2 = face.box
    patch = Patch(box=face.box, image=np.zeros((y2 - y1, x2 - x1, 3), np.uint8))
    out = blend(astronaut, patch, face, color_match=False)
    border = np.concatenate([out[y1, x1:x2], out[y2 - 1, x1:x2], out[y1:y2, x1], out[y1:y2, x2 - 1]])
    orig = np.concatenate([astronaut[y1, x1:x2], astronaut[y2 - 1, x1:x2], astronaut[y1:y2, x1], astronaut[y1:y2, x2 - 1]])
    assert np.array_equal(border, orig)  # the box outline itself never changes: no pasted-box edge


def test_colour_matching_removes_a_colour_cast(astronaut, face):
    x1, y1, x2, y2 = face.box
    region = astronaut[y1:y2, x1:x2]
    cast = np.clip(region.astype(int) + [40, -20, 10], 0, 255).astype(np.uint8)
    weights = np.ones(region.shape[:2], np.float32)
    fixed = match_colours(cast, region, weights)
    before = np.abs(cast.astype(int) - region).mean()
    after = np.abs(fixed.astype(int) - region).mean()
    assert after < before / 3
