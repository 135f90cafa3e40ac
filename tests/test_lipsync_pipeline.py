"""The lip-sync job end to end (weights-free engine, and the neural engine with a random debug model)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from conftest import GRID, needs_grid, tone, write_video
from studio import Studio
from studio.cli import main
from studio.errors import InputError
from studio.video.io import probe, read_frames


def _frames(path):
    return list(read_frames(probe(path)))


def _only(folder, name):
    """The output folder holds the output and its signed provenance record, nothing else (no temp files left)."""
    return sorted(p.name for p in folder.iterdir()) == [name, name + ".provenance.json"]


def test_photo_speaks_with_visemes(tmp_path, face_png, speech_wav, astronaut):
    out = tmp_path / "out" / "result.mp4"
    result = Studio(device="cpu").lipsync(face_png, speech_wav, out, engine="visemes")
    assert result.engine == "visemes" and result.path == out
    info = probe(out)
    assert info.has_audio and (info.width, info.height) == (512, 512) and info.fps == pytest.approx(25)
    frames = _frames(out)
    assert len(frames) == result.frames == 30  # 1.2 s at 25 fps
    assert result.frames_with_face == 30
    assert result.sync is not None and result.sync.frames_measured > 20  # the output's mouth was re-tracked
    assert 0.0 <= result.sync.score <= 1.0
    from studio.face.landmarks import lip_indices
    from studio.face.tracking import detect_faces

    face = detect_faces(astronaut)[0]
    lips = face.landmarks[lip_indices(face.scheme)]
    (x0, y0), (x1, y1) = lips.min(axis=0).astype(int), lips.max(axis=0).astype(int)
    video = np.stack(frames).astype(int)
    diff = np.abs(video - astronaut.astype(int)).mean(axis=(0, 3))
    # the picture above the mouth (hair, eyes) stays as it was (up to H.264 noise); the mouth moves over time
    above = slice(0, max(y0 - 30, 1))
    assert diff[above].mean() < 3
    motion = video.mean(axis=3).std(axis=0)
    assert motion[y0:y1, x0:x1].mean() > 10 * motion[above].mean() + 3
    assert diff[y0:y1, x0:x1].max() > diff[above].mean() + 30
    assert _only(out.parent, "result.mp4")


def test_short_video_is_ping_ponged_at_its_own_frame_rate(tmp_path, astronaut):
    import cv2

    frames = [cv2.resize(astronaut, (256, 256))] * 10
    video = write_video(tmp_path / "talk.mp4", frames, fps=30)
    sf.write(tmp_path / "a.wav", tone(1.0), 16000)
    result = Studio(device="cpu").lipsync(video, tmp_path / "a.wav", tmp_path / "o.mp4", engine="visemes")
    assert result.fps == pytest.approx(30) and result.frames == 30
    assert len(_frames(tmp_path / "o.mp4")) == 30


def test_frames_without_a_face_pass_through(tmp_path, astronaut):
    import cv2

    face = cv2.resize(astronaut, (256, 256))
    blank = np.full_like(face, 90)
    video = write_video(tmp_path / "v.mp4", [face] * 5 + [blank] * 5 + [face] * 5, fps=25)
    sf.write(tmp_path / "a.wav", tone(0.6), 16000)
    result = Studio(device="cpu").lipsync(video, tmp_path / "a.wav", tmp_path / "o.mp4", engine="visemes")
    assert result.frames == 15 and 0 < result.frames_with_face <= 10
    out = _frames(tmp_path / "o.mp4")
    assert np.abs(out[7].astype(int) - 90).mean() < 4  # untouched, up to H.264 rounding


@pytest.mark.parametrize("case, message", [
    ("missing_face", "does not exist"),
    ("face_is_dir", "is a directory"),
    ("face_is_audio", "no picture"),
    ("no_face_in_image", "no face found"),
    ("silent_audio", "silent"),
    ("empty_audio", "is empty"),
    ("text_as_audio", "cannot be read"),
    ("out_is_dir", "is a directory"),
])
def test_bad_input_gives_clear_error_and_writes_nothing(tmp_path, face_png, speech_wav, case, message):
    import cv2

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    face, audio, out = face_png, speech_wav, out_dir / "o.mp4"
    if case == "missing_face":
        face = tmp_path / "nope.mp4"
    elif case == "face_is_dir":
        face = tmp_path
    elif case == "face_is_audio":
        face = speech_wav
    elif case == "no_face_in_image":
        face = tmp_path / "wall.png"
        cv2.imwrite(str(face), np.full((200, 200, 3), 128, np.uint8))
    elif case == "silent_audio":
        audio = tmp_path / "s.wav"
        sf.write(audio, np.zeros(16000, np.float32), 16000)
    elif case == "empty_audio":
        audio = tmp_path / "e.wav"
        audio.write_bytes(b"")
    elif case == "text_as_audio":
        audio = tmp_path / "t.mp3"
        audio.write_text("hello")
    elif case == "out_is_dir":
        out = out_dir
    with pytest.raises(InputError, match=message):
        Studio(device="cpu").lipsync(face, audio, out, engine="visemes")
    assert list(out_dir.iterdir()) == []


def test_concurrent_jobs_do_not_collide(tmp_path, face_png, speech_wav):
    errors = []

    def job(i):
        try:
            Studio(device="cpu").lipsync(face_png, speech_wav, tmp_path / f"o{i}.mp4", engine="visemes")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o0.mp4", "o0.mp4.provenance.json", "o1.mp4",
                                                          "o1.mp4.provenance.json"]


def test_cli_lipsync_and_error_exit(tmp_path, face_png, speech_wav, capsys):
    assert main(["lipsync", "--face", str(face_png), "--audio", str(speech_wav), "-o", str(tmp_path / "o.mp4")]) == 0
    printed = capsys.readouterr().out
    assert "engine: visemes" in printed and (tmp_path / "o.mp4").exists()
    assert "sync score" in printed
    assert main(["lipsync", "--face", str(tmp_path / "nope.png"), "--audio", str(speech_wav),
                 "-o", str(tmp_path / "p.mp4")]) == 2
    assert "does not exist" in capsys.readouterr().err


@needs_grid
def test_grid_clip_driven_by_another_clips_audio(tmp_path):
    clips = sorted((GRID / "clips").glob("*.mp4"))
    face, audio = clips[0], clips[1]
    result = Studio(device="cpu").lipsync(face, audio, tmp_path / "o.mp4", engine="visemes")
    info = probe(tmp_path / "o.mp4")
    assert (info.width, info.height) == (360, 288) and result.fps == pytest.approx(25)
    assert result.frames_with_face == result.frames > 50
    # the sync score of the output: measured on the re-rendered mouth, in the record too
    assert result.sync.frames_measured > 50 and result.sync.score is not None
    import json

    record = json.loads((tmp_path / "o.mp4.provenance.json").read_text())
    assert record["claim"]["settings"]["render"]["sync"]["score"] == result.sync.score


def test_neural_engine_end_to_end_with_a_debug_model(tmp_path, face_png, speech_wav):
    """The full path with a tiny random generator in our checkpoint format (no weights need downloading)."""
    import torch

    from studio.checkpoints import save_checkpoint
    from studio.lipsync.wav2lip.models import Wav2Lip

    torch.manual_seed(0)
    g = Wav2Lip(96, width=0.25)
    ckpt = save_checkpoint(tmp_path / "debug.pt", kind="wav2lip", arch=g.config, state_dict=g.state_dict(),
                           meta={"note": "random debug model"})
    result = Studio(device="cpu").lipsync(face_png, speech_wav, tmp_path / "o.mp4", engine="wav2lip",
                                          model=str(ckpt), batch_size=8)
    assert result.engine == "wav2lip" and result.frames == 30 == result.frames_with_face
    assert len(_frames(tmp_path / "o.mp4")) == 30


def test_auto_engine_prefers_an_installed_general_checkpoint(tmp_path, monkeypatch):
    from studio.lipsync.engines import choose_engine

    assert choose_engine("auto", None) == "visemes"
    assert choose_engine("auto", "some_model") == "wav2lip"
    monkeypatch.setattr("studio.checkpoints.is_available", lambda name: name == "wav2lip_gan")
    assert choose_engine("auto", None) == "wav2lip"
    with pytest.raises(InputError, match="unknown lip-sync engine"):
        choose_engine("nope", None)


def test_cancel_stops_the_job_and_writes_nothing(tmp_path, face_png, speech_wav):
    from studio.errors import CancelledError
    from studio.progress import Progress

    seen = []

    def callback(stage, done, total):
        seen.append((stage, done))
        if stage == "lip-sync" and done > 0:
            progress.cancel()  # what the app's Cancel button does, from another thread

    progress = Progress(callback=callback)
    with pytest.raises(CancelledError):
        Studio(device="cpu").lipsync(face_png, speech_wav, tmp_path / "o.mp4", engine="visemes", batch_size=4,
                                     progress=progress)
    assert list(tmp_path.iterdir()) == []
    assert ("lip-sync", 4) in seen


def test_cli_progress_bar_keeps_one_bar_while_the_label_changes(capsys):
    """Live validation numbers change the training stage's label; the bar (and its rate/ETA) must carry on."""
    from studio.cli import _ProgressBars

    progress = _ProgressBars()
    bars = progress.bars
    progress("training", 100, 400)  # a resumed run starting at step 100
    first = bars["training"]
    assert first.n == 100 and first.initial == 100
    progress("training · val: L1 0.0300", 150, 400)
    progress("training · val: L1 0.0200", 200, 400)
    assert list(bars) == ["training"] and bars["training"] is first
    assert first.n == 200 and first.desc == "training · val: L1 0.0200"
    progress("preparing footage", 1, 10)  # a new stage replaces the bar
    assert list(bars) == ["preparing footage"]
    progress.close()
    assert bars == {}
