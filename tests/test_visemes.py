"""The weights-free engine: speech -> mouth shapes -> a warped mouth that opens and closes."""
from __future__ import annotations

import numpy as np
import pytest

from studio.face import detect_faces
from studio.face.landmarks import mouth_opening
from studio.lipsync.phonemes import viseme_of, viseme_track
from studio.lipsync.visemes import VisemeEngine, render_mouth
from studio.lipsync.blend import blend
from studio.types import PhonemeTiming, Speech


def _speech(phonemes, seconds=1.0, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return Speech(audio=(0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), sample_rate=sr,
                  phonemes=tuple(PhonemeTiming(p, a, b) for p, a, b in phonemes))


def test_phoneme_table():
    assert viseme_of("a")[0] > 0.8 and viseme_of("m")[3] == 1 and viseme_of("u")[1] > 0.8
    assert viseme_of("i")[2] > 0.7 and viseme_of(".") == (0, 0, 0, 0, 0) and viseme_of("ˈ") is None


def test_track_follows_phonemes_and_rests_in_silence():
    track = viseme_track(_speech([(" ", 0, 0.3), ("a", 0.3, 0.7), (" ", 0.7, 1.0)]), fps=25, n_frames=25)
    assert track.source == "phonemes"
    assert track["open"][12] > 0.7  # frame 12 is at 0.5 s, inside the "a"
    assert track["open"][1] < 0.05 and track["open"][-1] < 0.1


def test_bilabial_closes_between_vowels():
    track = viseme_track(_speech([("a", 0, 0.4), ("m", 0.4, 0.5), ("a", 0.5, 1.0)]), fps=25, n_frames=25)
    closed = track["open"][int(0.45 * 25 - 1)]
    assert closed < 0.3 * track["open"][5]


def test_audio_only_track_follows_loudness():
    sr = 16000
    t = np.arange(2 * sr) / sr
    env = (np.sin(2 * np.pi * 2 * t) > 0).astype(np.float32)  # 250 ms on / 250 ms off
    speech = Speech(audio=(0.3 * env * np.sin(2 * np.pi * 180 * t)).astype(np.float32), sample_rate=sr)
    track = viseme_track(speech, fps=25, n_frames=50)
    assert track.source == "audio"
    frame_env = env[((np.arange(50) + 0.5) / 25 * sr).astype(int)]
    assert np.corrcoef(track["open"], frame_env)[0, 1] > 0.6


@pytest.mark.parametrize("params", [(0.95, 0, 0.15, 0, 0), (0.6, 0.75, 0, 0, 0)])
def test_rendered_mouth_opens_and_closes(astronaut, params):
    face = detect_faces(astronaut)[0]
    opened = blend(astronaut, render_mouth(astronaut, face, np.array(params, np.float32)), face)
    closed = blend(astronaut, render_mouth(astronaut, face, np.array([0, 0, 0, 1, 0], np.float32)), face)
    open_gap = mouth_opening(detect_faces(opened)[0].landmarks)
    closed_gap = mouth_opening(detect_faces(closed)[0].landmarks)
    assert open_gap > closed_gap + 0.05
    nose_y = int(face.landmarks[1, 1])
    assert np.array_equal(opened[: nose_y - 5], astronaut[: nose_y - 5])


def test_engine_protocol(astronaut):
    face = detect_faces(astronaut)[0]
    engine = VisemeEngine()
    engine.prepare(_speech([("a", 0, 1.0)]), fps=25, n_frames=5)
    patches = engine.render([astronaut, astronaut], [face, None], [2, 3])
    assert patches[1] is None and patches[0].image.shape[:2] == (patches[0].box[3] - patches[0].box[1],
                                                                 patches[0].box[2] - patches[0].box[0])
