"""Face detection, tracking and landmark measurements."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import GRID, needs_grid
from studio.face import OneEuroFilter, detect_faces, track_frames
from studio.face import landmarks as L


@pytest.fixture(scope="module")
def two_faces(astronaut):
    import cv2

    big = astronaut
    small = cv2.resize(astronaut, (384, 384))
    canvas = np.full((512, 936, 3), 200, np.uint8)  # wide: the tiled search must find both faces
    canvas[:, :512] = big
    canvas[64:448, 532:916] = small
    return canvas


def test_astronaut_face_found(astronaut):
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    f = faces[0]
    assert f.landmarks.shape == (478, 2) and f.scheme == "mediapipe478"
    x1, y1, x2, y2 = f.box
    mouth = f.landmarks[[13, 14]].mean(axis=0)
    assert x1 < mouth[0] < x2 and y1 < mouth[1] < y2
    assert 60 < x2 - x1 < 200  # the face is ~100 px wide in this photo


def test_no_face_in_a_blank_image():
    assert detect_faces(np.full((240, 320, 3), 128, np.uint8)) == []


def test_largest_face_first_and_choice(two_faces):
    faces = detect_faces(two_faces)
    assert len(faces) == 2
    assert faces[0].box[2] <= 512 and faces[1].box[0] >= 512
    frames = [two_faces] * 3
    default = list(track_frames(frames, 25))
    second = list(track_frames(frames, 25, face_index=1))
    point = list(track_frames(frames, 25, face_point=(650, 250)))
    assert default[-1].box[2] <= 512
    assert second[-1].box[0] >= 512 and point[-1].box[0] >= 512


def test_tracking_follows_motion_and_survives_a_gap(astronaut):
    import cv2

    frames = []
    for i in range(12):
        m = np.float32([[1, 0, 3 * i], [0, 1, 0]])  # the face drifts right by 3 px a frame
        frames.append(cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REPLICATE))
    frames[5] = np.full_like(astronaut, 100)
    faces = list(track_frames(frames, 25))
    assert faces[5] is None and all(f is not None for k, f in enumerate(faces) if k != 5)
    centres = [f.landmarks[1, 0] for k, f in enumerate(faces) if k != 5]
    steps = np.diff(centres)
    assert np.all(steps > 0)  # follows the drift
    assert abs(centres[-1] - centres[0] - 33) < 6  # with little lag over 11 frames


def test_one_euro_filter():
    f = OneEuroFilter(25, min_cutoff=1.0, beta=0.0)
    assert all(np.allclose(f(np.array([5.0])), 5.0) for _ in range(5))
    f = OneEuroFilter(25, min_cutoff=1.0, beta=0.0)
    f(np.array([0.0]))
    ys = [float(f(np.array([10.0]))[0]) for _ in range(60)]
    assert ys[0] < 10 and abs(ys[-1] - 10) < 0.05 and np.all(np.diff(ys) >= 0)
    slow, fast = OneEuroFilter(25, beta=0.0), OneEuroFilter(25, beta=1.0)
    for filt in (slow, fast):
        filt(np.array([0.0]))
    ramp = [np.array([10.0 * k]) for k in range(1, 10)]
    lag_slow = 90 - float([slow(x) for x in ramp][-1][0])
    lag_fast = 90 - float([fast(x) for x in ramp][-1][0])
    assert lag_fast < lag_slow / 3  # a high beta follows fast motion with little lag


def test_landmark_measures_on_synthetic_points():
    lm = np.zeros((478, 2), np.float32)
    lm[[33, 133]] = [[0, 0], [20, 0]]
    lm[[362, 263]] = [[80, 0], [100, 0]]  # eye centres at 10 and 90: inter-ocular 80
    lm[13], lm[14] = [50, 100], [50, 120]
    lm[61], lm[291] = [30, 110], [70, 110]
    assert L.inter_ocular(lm) == pytest.approx(80)
    assert L.mouth_opening(lm) == pytest.approx(20 / 80)
    assert L.mouth_width(lm) == pytest.approx(40 / 80)
    rot = np.array([[0, -1], [1, 0]], np.float32)  # the same face rotated 90 degrees, scaled, moved
    moved = (lm @ rot.T) * 2 + 7
    np.testing.assert_allclose(L.normalise_landmarks(moved), L.normalise_landmarks(lm), atol=1e-4)


@needs_grid
def test_a_grid_clip_has_a_face_in_every_frame():
    from studio.video.io import probe, read_frames

    clip = sorted((GRID / "clips").glob("*.mp4"))[0]
    info = probe(clip)
    faces = list(track_frames(read_frames(info), info.fps))
    assert len(faces) >= 70 and all(f is not None for f in faces)


def test_face_alignment_backend_needs_cached_weights(monkeypatch, tmp_path):
    from studio.errors import MissingDependencyError
    from studio.face.tracking import TRACKERS

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = TRACKERS.entry("face-alignment")
    assert entry.available() is False
    with pytest.raises(MissingDependencyError, match="face-alignment|weights"):
        entry.factory()
