"""Data passed between the stages. Frozen dataclasses; arrays are numpy.

Conventions used everywhere:
- images are RGB ``uint8`` arrays of shape (H, W, 3);
- audio is mono ``float32`` in [-1, 1] with an explicit sample rate;
- boxes are ``(x1, y1, x2, y2)`` in pixels, x2/y2 exclusive;
- landmarks are the 478 mediapipe face-mesh points as a float32 array (478, 2) of pixel (x, y).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Face:
    """One tracked face in one frame."""

    box: Box  # smoothed, padded (chin) face box used for crops
    landmarks: np.ndarray  # (N, 2) float32 pixel coordinates, smoothed (N = 478 for mediapipe)
    score: float = 1.0
    scheme: str = "mediapipe478"  # landmark layout: "mediapipe478" or "ibug68" (face-alignment)


@dataclass(frozen=True)
class PhonemeTiming:
    """A phoneme (IPA symbol as espeak/Piper writes it) spoken from ``start`` to ``end`` seconds."""

    phoneme: str
    start: float
    end: float


@dataclass(frozen=True)
class Speech:
    """Synthesised or loaded speech, with phoneme timings when the source knows them (TTS does)."""

    audio: np.ndarray  # float32 mono
    sample_rate: int
    phonemes: Optional[tuple[PhonemeTiming, ...]] = None
    text: Optional[str] = None

    @property
    def duration(self) -> float:
        return len(self.audio) / float(self.sample_rate)


@dataclass(frozen=True)
class Patch:
    """An engine's output for one frame: a new image for the region ``box`` of that frame.

    ``mask`` (optional, float32 (h, w) in [0, 1]) tells which pixels the engine changed; the blender
    combines it with its own feathered lower-face mask.
    """

    box: Box
    image: np.ndarray  # uint8 (y2-y1, x2-x1, 3)
    mask: Optional[np.ndarray] = field(default=None)


@dataclass(frozen=True)
class LipSyncOptions:
    """How to lip-sync. Defaults are what a user wants without reading docs."""

    engine: str = "auto"  # "auto" = the neural engine when a checkpoint is available, else "visemes"
    model: Optional[str] = None  # checkpoint name or path for neural engines
    tracker: str = "mediapipe"
    face_index: Optional[int] = None  # which face (0 = largest) when several; None = largest
    face_point: Optional[tuple[float, float]] = None  # or the face under this (x, y) pixel
    batch_size: int = 32
    fps_for_image: float = 25.0  # a still image is rendered at this frame rate
    footage: Optional[str] = None  # a video of the person for the visemes engine to learn from (None: the face video)


@dataclass(frozen=True)
class LipSyncResult:
    path: Path
    engine: str
    frames: int
    fps: float
    duration: float
    frames_with_face: int
    seconds_per_stage: dict = field(default_factory=dict)
    audio_path: Optional[Path] = None
    model: Optional[str] = None  # the checkpoint file a network engine used (None: a weights-free engine)
