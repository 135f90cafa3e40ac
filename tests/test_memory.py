"""Memory regressions: face meshes (mediapipe graphs, each with its own threads and buffers) must be made once per
use and closed. A dub with lip-sync once grew to 12-15 GB because the speaking-face search made a new face mesh
for every frame of every line (``dict.setdefault`` evaluates its default each call) and never closed them."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from studio.dubbing import speakers
from studio.dubbing.subtitles import SubtitleLine


class _CountingTracks:
    made: list = []

    def __init__(self, tracker="mediapipe"):
        self.frames, self.closed = 0, 0
        _CountingTracks.made.append(self)

    def add(self, frame):
        self.frames += 1

    def close(self):
        self.closed += 1

    def scores(self, envelope):
        return []


def test_speaking_faces_makes_one_face_tracker_per_line_and_closes_it(tmp_path, monkeypatch):
    import studio.face.active_speaker as active_speaker
    import studio.video.io as video_io

    _CountingTracks.made = []
    monkeypatch.setattr(active_speaker, "FaceTracks", _CountingTracks)
    fps, n = 25.0, 200
    monkeypatch.setattr(video_io, "read_frames", lambda info, **kw: (np.zeros((8, 8, 3), np.uint8) for _ in range(n)))
    info = SimpleNamespace(fps=fps, width=8, height=8)
    lines = [SubtitleLine(1, 0.5, 2.0, "one"), SubtitleLine(2, 1.8, 4.0, "two"), SubtitleLine(3, 5.0, 7.5, "three")]
    sr = 16000
    audio = np.random.default_rng(0).standard_normal(int(n / fps * sr)).astype(np.float32) * 0.1
    progress = SimpleNamespace(update=lambda *a, **k: None)
    points = speakers.speaking_faces(info, lines, audio, sr, "hash", tmp_path, "mediapipe", progress)
    assert points == [None, None, None]
    made = _CountingTracks.made
    assert len(made) == len(lines), f"{len(made)} face trackers made for {len(lines)} lines"
    assert all(t.closed >= 1 for t in made), "a face tracker was left open"
    assert all(t.frames > 25 for t in made)  # each line's slot was tracked


def test_a_failing_face_mesh_is_closed_before_it_is_replaced(monkeypatch):
    from studio.face.tracking import MediapipeDetector

    det = MediapipeDetector(video=True)
    closed = []

    class Broken:
        def process(self, image):
            raise RuntimeError("graph failed")

        def close(self):
            closed.append(self)

    broken = Broken()
    det._mesh = broken
    try:
        assert det.detect_whole(np.zeros((64, 64, 3), np.uint8)) == []
        assert closed == [broken]
        assert det._mesh is not broken
        det._static = Broken()
        assert det.detect_near(np.zeros((64, 64, 3), np.uint8), np.array([[10, 10], [40, 40]], np.float32)) == []
        assert len(closed) == 2 and det._static is None
    finally:
        det.close()
    det.close()  # closing twice is harmless
