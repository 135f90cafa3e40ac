"""The overlapped render: same output as the sequential one, bounded, and every failure stops every stage."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import tone, write_video
from studio.lipsync.pipeline import run_lipsync
from studio.lipsync.stages import Stage, StageTimes, run_chain
from studio.progress import Progress
from studio.types import LipSyncOptions, Speech
from studio.video.io import probe, read_frames


def _studio_threads():
    return [t for t in threading.enumerate() if t.name.startswith("studio-")]


# ---- the stage runner alone (no media: fast) ------------------------------------------------------------------
def _chain(n, fail_at=None, where="square"):
    def source():
        for i in range(n):
            if where == "source" and i == fail_at:
                raise ValueError("source broke")
            yield i

    def square(items):
        for i in items:
            if where == "square" and i == fail_at:
                raise ValueError("square broke")
            time.sleep(0.001)
            yield i * i

    return [Stage("source", source, maxsize=2), Stage("square", square, maxsize=2)]


@pytest.mark.parametrize("sequential", [False, True])
def test_chain_keeps_order_and_counts_busy_time(sequential):
    got, times = [], StageTimes()
    run_chain(_chain(50), times, sequential=sequential, on_item=got.append)
    assert got == [i * i for i in range(50)]
    assert times.seconds["square"] >= 0.04 and "source" in times.seconds
    assert not _studio_threads()


@pytest.mark.parametrize("where", ["source", "square", "consumer", "interrupt"])
def test_chain_error_anywhere_stops_every_thread(where):
    closed = threading.Event()
    stages = _chain(10_000, fail_at=20, where=where)
    inner = stages[0].run

    def source():  # records that its generator was closed (its finally ran) whatever stopped the chain
        try:
            yield from inner()
        finally:
            closed.set()

    stages[0] = Stage("source", source, maxsize=2)
    seen = []

    def on_item(item):
        seen.append(item)
        if len(seen) == 20 and where == "consumer":
            raise RuntimeError("callback broke")
        if len(seen) == 20 and where == "interrupt":
            raise KeyboardInterrupt

    error = {"source": ValueError, "square": ValueError, "consumer": RuntimeError, "interrupt": KeyboardInterrupt}
    t0 = time.perf_counter()
    with pytest.raises(error[where]):
        run_chain(stages, StageTimes(), on_item=on_item)
    assert time.perf_counter() - t0 < 5
    assert closed.is_set() and not _studio_threads()
    assert len(seen) <= 20


def test_chain_holds_a_bounded_number_of_items():
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    def source():
        for i in range(200):
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            yield i

    def slow(items):
        for i in items:
            time.sleep(0.0005)
            yield i

    def consume(_):
        with lock:
            in_flight[0] -= 1

    run_chain([Stage("source", source, maxsize=3), Stage("slow", slow, maxsize=2)], StageTimes(), on_item=consume)
    # 3 + 2 queued, one in each stage's hands, one being consumed
    assert peak[0] <= 3 + 2 + 3


# ---- the real render ------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_audio_mark(monkeypatch):
    """The sound track's watermark is tested elsewhere; loading its network would double these tests' time."""
    monkeypatch.setattr("studio.trust.audio_mark.mark_speech", lambda speech, **kwargs: speech)


@pytest.fixture(scope="module")
def moving_face(tmp_path_factory, astronaut):
    """16 frames of a face that moves a little each frame (so frame order matters), and 0.64 s of speech."""
    import cv2

    folder = tmp_path_factory.mktemp("stages")
    base = cv2.resize(astronaut, (224, 224))
    frames = [np.roll(base, (i % 5) - 2, axis=1) for i in range(16)]
    video = write_video(folder / "face.mp4", frames, fps=25)
    sf.write(folder / "a.wav", tone(0.64), 16000)
    return video, Speech(audio=tone(0.64), sample_rate=16000)


def _decoded(path):
    return np.stack(list(read_frames(probe(path))))


def test_threaded_render_is_bit_identical_to_sequential(tmp_path, moving_face):
    video, speech = moving_face
    options = LipSyncOptions(engine="visemes", batch_size=4)
    # the same job id, so both carry the same video mark (a new render gets a new id, hence a different mark)
    seq = run_lipsync(video, speech, tmp_path / "seq.mp4", options, "cpu", Progress.none(), job_id="0123456789ab",
                      sequential=True)
    thr = run_lipsync(video, speech, tmp_path / "thr.mp4", options, "cpu", Progress.none(), job_id="0123456789ab")
    assert seq.frames == thr.frames == 16 and seq.frames_with_face == thr.frames_with_face == 16
    a, b = _decoded(tmp_path / "seq.mp4"), _decoded(tmp_path / "thr.mp4")
    assert a.shape == b.shape and np.array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # the frames differ, so a reordering would show
    assert set(thr.seconds_per_stage) >= {"decode", "track", "engine", "blend", "encode"}
    assert not _studio_threads()


@pytest.mark.parametrize("seconds", [0.64, 1.2])  # all frames tracked by the study; then ping-pong beyond them
def test_the_study_tracking_kept_for_the_render_changes_nothing(tmp_path, moving_face, monkeypatch, seconds):
    """visemes studies the video it renders: the render takes the study's faces (and its tracker, past the
    studied frames) instead of tracking again. The output must be what tracking again gives, bit for bit."""
    from studio.face.tracking import FaceTracker

    video, _ = moving_face
    speech = Speech(audio=tone(seconds), sample_rate=16000)
    options = LipSyncOptions(engine="visemes", batch_size=4)
    updates = [0]
    original = FaceTracker.update

    def counted(self, frame):
        updates[0] += 1
        return original(self, frame)

    monkeypatch.setattr(FaceTracker, "update", counted)
    shared = run_lipsync(video, speech, tmp_path / "shared.mp4", options, "cpu", Progress.none(),
                         job_id="0123456789ab")
    shared_updates = updates[0]
    monkeypatch.setattr("studio.lipsync.pipeline.SHARE_STUDY_TRACKING", False)
    updates[0] = 0
    again = run_lipsync(video, speech, tmp_path / "again.mp4", options, "cpu", Progress.none(),
                        job_id="0123456789ab")
    n = round(seconds * 25)
    assert shared.frames == again.frames == n and shared.frames_with_face == again.frames_with_face == n
    assert updates[0] == n and shared_updates == n - 16  # the render tracked only the frames past the study's
    a, b = _decoded(tmp_path / "shared.mp4"), _decoded(tmp_path / "again.mp4")
    assert a.shape == b.shape and np.array_equal(a, b)
    assert shared.sync == again.sync
    assert not _studio_threads()


@pytest.mark.parametrize("where", ["track", "engine", "encode", "progress"])
def test_a_failing_stage_stops_the_render_and_leaves_nothing(tmp_path, moving_face, monkeypatch, where):
    from studio.face.tracking import FaceTracker
    from studio.lipsync.visemes import VisemeEngine
    from studio.video import io as video_io

    video, speech = moving_face
    calls = [0]

    def broken(original):
        def wrapper(self, *args, **kwargs):
            calls[0] += 1
            if calls[0] == 6:
                raise RuntimeError(f"{where} broke")
            return original(self, *args, **kwargs)

        return wrapper

    if where == "track":
        # the study of this video tracks it (FaceTracker.follow) and hands its faces to the render: let the
        # render's own track stage (FaceTracker.update) do the tracking, so it is the stage that fails
        monkeypatch.setattr("studio.lipsync.pipeline.SHARE_STUDY_TRACKING", False)
        monkeypatch.setattr(FaceTracker, "update", broken(FaceTracker.update))
    elif where == "engine":
        monkeypatch.setattr(VisemeEngine, "render", broken(VisemeEngine.render))
    elif where == "encode":
        monkeypatch.setattr(video_io.VideoWriter, "write", broken(video_io.VideoWriter.write))

    def callback(stage, done, total):
        if where == "progress" and stage == "lip-sync" and done >= 4:
            raise RuntimeError("progress broke")

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RuntimeError, match=f"{where} broke"):
        run_lipsync(video, speech, out / "o.mp4", LipSyncOptions(engine="visemes", batch_size=2), "cpu",
                    Progress(callback=callback))
    assert list(out.iterdir()) == []  # no partial file
    assert not _studio_threads()
    with video_io._live_lock:
        assert all(p.poll() is not None for p in video_io._live_readers)  # the decoder was ended
        assert all(w._state != "open" for w in video_io._live_writers)
