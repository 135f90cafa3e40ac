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


def test_tracker_follows_a_small_face_without_tiled_searches(astronaut, monkeypatch):
    """A small face in a wide frame (found only by the tiled search): after the first frame it is followed with
    one crop around its last place, and frames without it run a tiled search at most every SEARCH_EVERY frames."""
    import cv2

    from studio.face.tracking import SEARCH_EVERY, FaceTracker, MediapipeDetector

    small = cv2.resize(astronaut, (320, 320))
    frames = []
    for i in range(6):
        canvas = np.full((360, 1280, 3), 200, np.uint8)
        canvas[20:340, 900 + 2 * i:1220 + 2 * i] = small
        frames.append(canvas)
    frames += [np.full((360, 1280, 3), 200, np.uint8)] * (SEARCH_EVERY + 2)
    runs = []
    original = MediapipeDetector._run
    monkeypatch.setattr(MediapipeDetector, "_run", staticmethod(lambda mesh, image: runs.append(image.shape) or
                                                                original(mesh, image)))
    with FaceTracker(25) as tracker:
        faces, per_frame = [], []
        for frame in frames:
            before = len(runs)
            faces.append(tracker.update(frame))
            per_frame.append(len(runs) - before)
    assert all(f is not None for f in faces[:6]) and all(f is None for f in faces[6:])
    assert all(950 < f.landmarks[:, 0].mean() < 1200 for f in faces[:6])
    tiled = per_frame[0]
    assert tiled > 3  # the first frame needed the tiled search
    assert all(n <= 2 for n in per_frame[1:6])  # whole frame + one crop
    searches = [k for k, n in enumerate(per_frame) if n > 2]
    assert searches[0] == 0 and len(searches) <= 3 and all(b - a >= SEARCH_EVERY for a, b in zip(searches, searches[1:]))


FAKE_ENCODERS = """Encoders:
 V..... = Video
 A..... = Audio
 .F.... = Frame-level multithreading
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)
 A....D aac                  AAC (Advanced Audio Coding)
"""


def test_nvenc_is_used_only_on_cuda_when_listed_and_working():
    from studio.video.hw import choose_encoder, choose_hwaccel, parse_encoders, parse_hwaccels, video_codecs

    encoders = parse_encoders(FAKE_ENCODERS)
    assert encoders == {"libx264", "h264_nvenc", "aac"}
    assert parse_hwaccels("Hardware acceleration methods:\nvdpau\ncuda\n\n") == {"vdpau", "cuda"}
    tried = []

    def works(codec):
        tried.append(codec)
        return True

    assert choose_encoder("cuda", encoders, works) == "h264_nvenc" and tried == ["h264_nvenc"]
    assert choose_encoder("cuda:1", encoders, lambda c: False) == "libx264"  # listed but no NVENC unit (H100/H200)
    assert choose_encoder("cuda", encoders - {"h264_nvenc"}, works) == "libx264"
    assert choose_encoder("cpu", encoders, works) == "libx264" and len(tried) == 1  # never tried on the CPU
    assert choose_hwaccel("cuda", {"cuda"}, lambda m: True) == "cuda"
    assert choose_hwaccel("cuda", {"vaapi"}, lambda m: True) is None
    assert choose_hwaccel("cpu", {"cuda"}, lambda m: True) is None
    assert video_codecs("cpu") == ("libx264", None)


def test_engine_cache_reuses_the_loaded_network(tmp_path):
    import torch

    from studio.checkpoints import save_checkpoint
    from studio.lipsync.engines import create_engine
    from studio.lipsync.neural import clear_model_cache
    from studio.lipsync.wav2lip.models import Wav2Lip

    clear_model_cache()
    torch.manual_seed(0)
    g = Wav2Lip(96, width=0.25)
    path = save_checkpoint(tmp_path / "debug.pt", kind="wav2lip", arch=g.config, state_dict=g.state_dict())
    _, first = create_engine("wav2lip", str(path), "cpu")
    _, second = create_engine("wav2lip", str(path), "cpu")
    assert first is not second and first.model is second.model  # per-job engine state, one network
    torch.manual_seed(1)
    g2 = Wav2Lip(96, width=0.25)
    save_checkpoint(path, kind="wav2lip", arch=g2.config, state_dict=g2.state_dict())  # other bytes, same name
    _, third = create_engine("wav2lip", str(path), "cpu")
    assert third.model is not first.model
    clear_model_cache()
