"""Shared fixtures. Real data lives in ../shared/data and is optional: tests that need it skip without it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
GRID = DATA / "grid-s1"
LIBRISPEECH = DATA / "librispeech"

needs_grid = pytest.mark.skipif(not (GRID / "clips").is_dir(), reason="../shared/data/grid-s1 is not present")
needs_librispeech = pytest.mark.skipif(not LIBRISPEECH.is_dir(), reason="../shared/data/librispeech is not present")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Voices, models and caches of a test never touch the user's real folders."""
    home = tmp_path_factory.mktemp("studio-home")
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.setenv("STUDIO_CACHE", str(home / "cache"))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def face_png(tmp_path_factory, astronaut) -> Path:
    import cv2

    path = tmp_path_factory.mktemp("media") / "face.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    return path


def tone(seconds: float, sr: int = 16000, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    """A speech-like test signal: a harmonic tone with a syllable-rate (4 Hz) loudness envelope."""
    t = np.arange(int(seconds * sr)) / sr
    voice = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4 * t))
    return (amp * voice / 2.3 * envelope).astype(np.float32)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    import soundfile as sf

    path = tmp_path_factory.mktemp("media") / "speech.wav"
    sf.write(path, tone(1.2, 22050), 22050)
    return path


def write_video(path: Path, frames: list[np.ndarray], fps: float, audio: np.ndarray | None = None, sr: int = 16000):
    """Write frames (and optional audio) with the studio's own writer."""
    import soundfile as sf

    from studio.video.io import VideoWriter

    audio_path = None
    if audio is not None:
        audio_path = path.with_suffix(".src.wav")
        sf.write(audio_path, audio, sr)
    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, fps, audio_path=audio_path) as writer:
        for f in frames:
            writer.write(f)
    return path
