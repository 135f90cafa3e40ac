"""The video mark (issue 17, item 4): payload, round trip through x264 CRF 28 + half scale + 10 % crop, unmarked
media, verify naming a record of another render, the visible label, and the mark in a real render.

CPU only, no ../shared/data needed: a synthetic clip of the astronaut photo, moving slightly.
"""
from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

JOB = "c0ffee123456"
SIZE = 480
FRAMES = 40


def test_payload_bits_round_trip_and_crc_catches_a_flipped_bit():
    from studio.trust.video_mark import BITS, parse_bits, payload_bits

    bits = payload_bits(JOB)
    assert bits.shape == (BITS,) and set(np.unique(bits)) <= {-1.0, 1.0}
    assert parse_bits(bits) == (True, True, "c0ffee")
    for i in (0, 12, BITS - 1):  # magic, job or CRC bit flipped: one of the checks fails
        flipped = bits.copy()
        flipped[i] = -flipped[i]
        magic_ok, crc_ok, _ = parse_bits(flipped)
        assert not (magic_ok and crc_ok)
    assert parse_bits(payload_bits("000001"))[2] == "000001" and not np.array_equal(payload_bits("000001"), bits)


def _shifts():
    return [(3 * np.sin(i / 5), 2 * np.cos(i / 7)) for i in range(FRAMES)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory, astronaut):
    """(marked, unmarked) synthetic clips at CRF 18 (the studio's encoder), 480x480, 40 frames."""
    import cv2

    from studio.face import detect_faces
    from studio.trust.video_mark import VideoMarker
    from studio.video.io import VideoWriter

    folder = tmp_path_factory.mktemp("video-mark")
    base = cv2.resize(astronaut[10:270, 80:340], (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)  # a 170 px face
    face = detect_faces(base)[0]
    marker = VideoMarker(JOB)
    marked_path, plain_path = folder / "marked.mp4", folder / "plain.mp4"
    psnrs = []
    with VideoWriter(marked_path, SIZE, SIZE, 25) as marked, VideoWriter(plain_path, SIZE, SIZE, 25) as plain:
        for dx, dy in _shifts():
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            frame = cv2.warpAffine(base, m, (SIZE, SIZE), borderMode=cv2.BORDER_REPLICATE)
            moved = replace(face, landmarks=face.landmarks + np.float32([dx, dy]))  # the face moves with the frame
            out = marker.mark(frame, moved)
            psnrs.append(10 * np.log10(255 ** 2 / np.mean((out.astype(np.float32) - frame) ** 2)))
            marked.write(out)
            plain.write(frame)
    assert marker.marked == FRAMES
    return marked_path, plain_path, float(np.mean(psnrs))


ATTACKS = {"x264 CRF 28": (None, 28), "half scale": ("scale=trunc(iw/4)*2:trunc(ih/4)*2", 18),
           "10 % crop": ("crop=trunc(iw*0.9/2)*2:trunc(ih*0.9/2)*2:trunc(iw*0.05/2)*2:trunc(ih*0.02/2)*2", 18),
           "trim (from 0.8 s)": (None, 23)}


def _attack(src, dst, vf, crf, start=None):
    args = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error"] + (["-ss", str(start)] if start else [])
    args += ["-i", str(src)] + (["-vf", vf] if vf else [])
    subprocess.run(args + ["-c:v", "libx264", "-crf", str(crf), "-preset", "veryfast", "-pix_fmt", "yuv420p",
                           str(dst)], check=True)
    return dst


def test_mark_survives_crf28_half_scale_crop_and_trim_and_plain_video_is_not_flagged(clips, tmp_path):
    from studio.trust.video_mark import FOUND_THRESHOLD, read_video_mark

    marked, plain, psnr = clips
    assert psnr > 40
    clean = read_video_mark(marked)
    assert clean.found and clean.job == JOB[:6] and clean.bit_accuracy(JOB) == 1.0 and clean.corrected == 0
    for i, (name, (vf, crf)) in enumerate(ATTACKS.items()):
        r = read_video_mark(_attack(marked, tmp_path / f"a{i}.mp4", vf, crf, 0.8 if "trim" in name else None))
        assert r.found and r.job == JOB[:6], (name, r.describe())
        assert r.bit_accuracy(JOB) >= 0.9 and r.frames_used >= (18 if "trim" in name else FRAMES - 2), name
    # unmarked: the same pictures, nothing found, confidence well under the threshold
    p = read_video_mark(plain)
    assert not p.found and p.job is None and p.confidence < FOUND_THRESHOLD / 1.5


def test_verify_names_a_record_of_another_render(clips, tmp_path):
    import shutil

    from studio.trust.provenance import seal
    from studio.trust.verify import TAMPERED, verify

    copy = tmp_path / "copy.mp4"
    shutil.copy(clips[0], copy)
    seal(copy, kind="lipsync", job_id="abcdef000000", marks={"video": True})  # a record made for another job
    v = verify(copy)
    assert v.video_marked and v.video_mark.job == JOB[:6]
    assert v.verdict == TAMPERED and any("video mark carries job c0ffee" in m for m in v.mismatches), v.summary()
    assert v.as_dict()["video_mark"]["job"] == JOB[:6]


def test_label_is_drawn_in_the_corner_only(astronaut):
    from studio.trust.video_mark import VideoMarker

    frame = astronaut.copy()
    out = VideoMarker(JOB, label=True).mark(frame, None)  # no face: no mark, only the label
    changed = np.any(out != frame, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 500 and ys.min() > frame.shape[0] * 0.8 and xs.min() > frame.shape[1] * 0.5
    assert np.array_equal(VideoMarker(JOB).mark(frame, None), frame)


def test_training_on_footage_with_the_video_mark_is_refused_unless_the_consent_covers_it(clips):
    from studio.errors import InputError
    from studio.lipsync.training.service import TrainOptions, train
    from studio.paths import models_dir
    from studio.trust.consent import check_footage_not_marked

    marked, plain, _ = clips
    with pytest.raises(InputError, match="carries the studio's video mark.*--consent-covers-marked"):
        train(TrainOptions(name="laundered", footage=(str(marked),), device="cpu", preset="debug",
                           consent="Anna Novak agreed on 2026-11-20"))
    assert not (models_dir() / "laundered").exists()  # refused before any work
    assert check_footage_not_marked([marked], covered=True) == [{"file": "marked.mp4", "job": JOB[:6]}]
    assert check_footage_not_marked([plain], covered=False) == []


def test_cli_verify_json_on_an_unmarked_video(clips, capsys):
    import json

    from studio.cli import main

    assert main(["verify", "--json", str(clips[1])]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "no studio marks found" and report["video_mark"]["found"] is False
    assert report["video_mark"]["frames_used"] >= FRAMES - 2 and report["audio_mark"]["confidence"] is None


def test_patterns_reach_the_detector_whole_and_do_not_cross_talk():
    """Format 2's patterns are orthonormal as detection sees them (high-passed, masked): the first version's random
    blocks lost 72 % of their energy to the high-pass and their cross-talk tripled the noise of every bit."""
    from studio.trust.video_mark import BITS, patterns

    p = patterns()
    gram = p.seen @ p.seen.T
    diag = np.diag(gram)
    off = np.abs(gram - np.diag(diag)) / np.sqrt(np.outer(diag, diag))
    assert off.max() < 0.15  # random blocks: up to ~0.5
    noise_gain = float(np.mean(np.diag(np.linalg.inv(gram)) * diag))
    assert noise_gain < 1.5  # random blocks: 3.2
    kept = float(diag.mean() / np.mean(np.sum(p.signal_basis.astype(np.float64) ** 2, axis=(1, 2))))
    assert kept > 0.4 and p.signal_basis.shape[0] == BITS  # random blocks: 0.28


FACES_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces-dev" / "videos"


@pytest.mark.skipif(not (FACES_DEV / "styletalk_KristiNoem.mp4").is_file(), reason="../shared/data/faces-dev absent")
def test_small_face_survives_crf28_half_scale_and_a_one_second_excerpt(tmp_path):
    """A real talking face of ~140 px in a 256 x 256 clip (faces-dev): an excerpt of 1 s (30 frames) must decode on
    its own, and after CRF 28 + half scale (a ~70 px face) the bits must come through. The first version of the
    mark missed both on 4 s of this clip (confidence 2.8 and 2.1 under the threshold 3.0, 37 of 40 bits right)."""
    from studio.face import track_frames
    from studio.trust.video_mark import VideoMarker, read_video_mark
    from studio.video.io import VideoWriter, probe, read_frames

    info = probe(FACES_DEV / "styletalk_KristiNoem.mp4")
    frames = list(read_frames(info, max_frames=60))
    marker = VideoMarker(JOB)
    path = tmp_path / "marked.mp4"
    with VideoWriter(path, info.width, info.height, info.fps) as w:
        for frame, face in zip(frames, track_frames(iter(frames), info.fps)):
            w.write(marker.mark(frame, face))
    assert marker.marked >= 58
    for name, vf, crf, start in (("CRF 28 + half scale", "scale=128:128", 28, None), ("1 s excerpt", None, 23, 0.5)):
        args = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error"] + (["-ss", str(start), "-t", "1.0"] if start else [])
        out = tmp_path / f"{name[:3]}.mp4"
        subprocess.run(args + ["-i", str(path)] + (["-vf", vf] if vf else []) + [
            "-c:v", "libx264", "-crf", str(crf), "-preset", "veryfast", "-pix_fmt", "yuv420p", str(out)], check=True)
        r = read_video_mark(out)
        if start:  # the excerpt is found on its own (confidence ~6 against the threshold 3.0)
            assert r.found and r.job == JOB[:6] and r.bit_accuracy(JOB) >= 0.95, (name, r.describe())
        else:  # 2 s of a 70 px face at CRF 28 give the bits (all 40 here); *found* needs ~4 s (benchmarks/trust.py)
            assert r.bit_accuracy(JOB) >= 0.9 and r.confidence > 1.5, (name, r.describe())
