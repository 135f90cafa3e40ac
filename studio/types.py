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
    label: bool = False  # draw a visible "AI-generated" label in a corner of every frame
    footage: Optional[str] = None  # a video of the person for the visemes engine to learn from (None: the face video)
    # personalisation (studio.lipsync.personalize): fine-tune a model on the face video's own footage first (cached
    # by content), then render with it; falls back to the weights-free engine when the footage or budget is too small
    personalize: bool = False
    budget_minutes: float = 5.0  # time for the fine-tune (footage preparation included)
    consent: Optional[str] = None  # who agreed to have a model trained on their face, and when (personalize)
    personalize_from: Optional[str] = None  # base generator (name or path); None = the bundled "base" model


@dataclass(frozen=True)
class SyncScore:
    """How well the mouth follows the speech (``studio.lipsync.sync_score``).

    ``score``: 0..1, the correlation of the observed mouth opening with the opening predicted from the speech
    (syllable-rate movement only), clipped at 0; held-out real clips score 0.75 (GRID s1, median) and 0.38
    (faces-dev), the same faces with another clip's speech 0.40 and 0.21 (None when fewer than a dozen frames had
    a face); ``correlation``: the same, unclipped; ``lag_frames``/``lag_seconds``: the shift that fits
    best (positive = the mouth is late); ``weak_segments``: (start, end) seconds where there is speech but the
    mouth does not follow it (low correlation or a frozen mouth).
    """

    score: Optional[float]
    correlation: Optional[float]
    lag_frames: int
    lag_seconds: float
    weak_segments: tuple = ()
    frames_measured: int = 0

    def summary(self) -> str:
        if self.score is None:
            return "sync score: not measured (too few frames with a face)"
        weak = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in self.weak_segments) or "none"
        return (f"sync score {self.score:.2f} (real talking clips: 0.4-0.75), lag {self.lag_frames:+d} frames; "
                f"weak segments: {weak}")


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
    job_id: Optional[str] = None  # the render's job id: in its video mark (first 6 hex digits) and its provenance
    frames_marked: int = 0  # frames that carry the video mark (those whose face was changed)
    sync: Optional[SyncScore] = None  # how well the output's mouth follows the speech, with weak segments
    personalization: Optional["PersonalizationReport"] = None  # with options.personalize: what it did and scored


@dataclass(frozen=True)
class PersonalizationReport:
    """What personalising a model on a video's own footage did: the model (None: fell back, ``fallback_reason``
    says why), whether it came from the cache, the footage used and the held-out scores (the last ``holdout``
    fraction of the footage re-synced to its own sound: ``heldout`` for the personalised model, ``heldout_base``
    for the base model it started from, each with mouth_open_corr, best_lag (frames, + = late), mouth_psnr)."""

    model: Optional[Path]
    key: str
    cached: bool = False
    fallback_reason: Optional[str] = None
    base: Optional[str] = None
    usable_seconds: float = 0.0  # face + speech footage the fine-tune used
    heldout_seconds: float = 0.0
    steps: int = 0
    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0  # CPU time the fine-tune got (all threads; on a busy machine << train_seconds)
    prepare_seconds: float = 0.0
    heldout: dict = field(default_factory=dict)
    heldout_base: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)  # reason -> number of footage pieces left out

    def describe(self) -> str:
        if self.model is None:
            return f"personalisation fell back to the weights-free engine: {self.fallback_reason}"
        fmt = lambda d: ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in d.items())  # noqa: E731
        text = (f"personalised model {self.model} ({'from the cache' if self.cached else 'trained now'}: "
                f"{self.steps} steps in {self.train_seconds / 60:.1f} min on {self.usable_seconds:.1f} s of face + "
                f"speech, from {self.base})")
        if self.heldout:
            text += f"\nheld-out {self.heldout_seconds:.1f} s of the footage: {fmt(self.heldout)}"
        if self.heldout_base:
            text += f"\nbase model on the same: {fmt(self.heldout_base)}"
        return text
