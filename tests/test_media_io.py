"""Media I/O through ffmpeg: streaming decode/encode, probing, audio loading and the bad inputs."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

from conftest import tone, write_video
from studio.audio.io import load_audio, save_audio
from studio.errors import InputError
from studio.lipsync.pipeline import ping_pong_index, video_frames
from studio.video.io import VideoWriter, check_output_path, probe, read_frames, read_image


def colour_frames(n, h=64, w=96):
    """Frames that are easy to tell apart after lossy coding: a flat grey level per frame."""
    return [np.full((h, w, 3), 20 + (20 * i) % 220, np.uint8) for i in range(n)]


def test_round_trip_keeps_fps_size_and_pixels(tmp_path):
    frames = colour_frames(10)
    path = write_video(tmp_path / "v.mp4", frames, fps=30000 / 1001, audio=tone(0.5), sr=16000)
    info = probe(path)
    assert (info.width, info.height) == (96, 64)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert info.has_audio and not info.is_image
    decoded = list(read_frames(info))
    assert len(decoded) == 10
    for a, b in zip(frames, decoded):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3
    codecs = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
                             str(path)], capture_output=True, text=True).stdout.split()
    assert codecs == ["h264", "aac"]


def test_decode_is_streaming_and_can_stop_early(tmp_path):
    path = write_video(tmp_path / "v.mp4", colour_frames(20), fps=25)
    gen = read_frames(probe(path))
    first = next(gen)
    gen.close()  # must not hang or leave ffmpeg running
    assert first.shape == (64, 96, 3)


def test_writer_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 96, 64, 25) as writer:
            writer.write(colour_frames(1)[0])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_wrong_frame_shape(tmp_path):
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "o.mp4", 96, 64, 25) as writer:
            writer.write(np.zeros((10, 10, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_ping_pong_index():
    assert [ping_pong_index(k, 4) for k in range(10)] == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert [ping_pong_index(k, 1) for k in range(3)] == [0, 0, 0]


def test_short_video_is_ping_ponged(tmp_path):
    path = write_video(tmp_path / "v.mp4", colour_frames(5), fps=25)
    levels = [int(round((f.mean() - 20) / 20)) for f in video_frames(probe(path), 12, tmp_path)]
    assert levels == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3]


def test_long_video_is_cut_to_the_audio(tmp_path):
    path = write_video(tmp_path / "v.mp4", colour_frames(8), fps=25)
    assert len(list(video_frames(probe(path), 3, tmp_path))) == 3


def test_image_probe_and_read(face_png):
    info = probe(face_png)
    assert info.is_image and (info.width, info.height) == (512, 512)
    assert read_image(face_png).shape == (512, 512, 3)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("maker, message", [
    (lambda p: p / "missing.mp4", "does not exist"),
    (lambda p: p, "is a directory"),
    (lambda p: _write(p / "empty.mp4", b""), "is empty"),
    (lambda p: _write(p / "notes.mp4", b"not a video at all"), "cannot be read"),
])
def test_bad_input_files(tmp_path, maker, message):
    with pytest.raises(InputError, match=message):
        probe(maker(tmp_path))


def test_load_audio_resamples_and_mixes_down(tmp_path):
    stereo = np.stack([tone(1.0, 22050), tone(1.0, 22050)], axis=1)
    sf.write(tmp_path / "a.wav", stereo, 22050)
    audio, sr = load_audio(tmp_path / "a.wav", 16000)
    assert sr == 16000 and audio.ndim == 1 and abs(len(audio) - 16000) <= 2


def test_load_audio_through_ffmpeg(tmp_path):
    sf.write(tmp_path / "a.wav", tone(1.0), 16000)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(tmp_path / "a.wav"), str(tmp_path / "a.mp3")],
                   check=True)
    audio, sr = load_audio(tmp_path / "a.mp3")
    assert sr == 48000 and 0.95 < len(audio) / sr < 1.1


def test_load_audio_from_video_sound_track(tmp_path):
    path = write_video(tmp_path / "v.mp4", colour_frames(25), fps=25, audio=tone(1.0))
    audio, sr = load_audio(path, 16000)
    assert 0.9 < len(audio) / sr < 1.1 and np.abs(audio).max() > 0.05


def test_silent_and_soundless_audio_are_rejected(tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(InputError, match="silent"):
        load_audio(tmp_path / "silence.wav")
    path = write_video(tmp_path / "mute.mp4", colour_frames(5), fps=25)
    with pytest.raises(InputError, match="no sound track"):
        load_audio(path)


def test_save_audio_is_atomic_and_checks_suffix(tmp_path):
    with pytest.raises(InputError):
        save_audio(tmp_path / "x.mp3", tone(0.1), 16000)
    path = save_audio(tmp_path / "sub" / "x.wav", tone(0.1), 16000)
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["x.wav"]


def test_output_path_checks(tmp_path):
    with pytest.raises(InputError, match="directory"):
        check_output_path(tmp_path)
    with pytest.raises(InputError, match="must end in"):
        check_output_path(tmp_path / "x.avi")
    assert check_output_path(tmp_path / "new" / "x.mp4").parent.is_dir()


def test_text_file_named_like_an_image_is_rejected(tmp_path):
    bad = _write(tmp_path / "notes.png", b"not an image")
    with pytest.raises(InputError, match="cannot be read"):
        probe(bad)


def test_ffmpeg_is_started_without_vfork_from_a_stage_thread(tmp_path, monkeypatch):
    """The render starts ffmpeg from a stage thread while torch frees memory in another: a vfork child then fails to
    exec with EFAULT ("Bad address"), so ffmpeg started from a thread other than the main one uses fork."""
    import threading

    if not hasattr(subprocess, "_USE_VFORK"):
        pytest.skip("this Python has no vfork switch")
    path = write_video(tmp_path / "v.mp4", [np.zeros((32, 32, 3), np.uint8)] * 2, fps=25)
    seen, real_popen = [], subprocess.Popen

    def spy(*args, **kwargs):
        seen.append((threading.current_thread() is threading.main_thread(), subprocess._USE_VFORK))
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    assert len(list(read_frames(probe(path)))) == 2
    counts = []
    worker = threading.Thread(target=lambda: counts.append(len(list(read_frames(probe(path))))))
    worker.start()
    worker.join()
    assert counts == [2]
    assert (False, False) in seen  # from the worker thread: fork
    assert subprocess._USE_VFORK is True  # restored afterwards: the main thread keeps the cheaper vfork
