"""The lip-sync engine Protocol and the registry of engines.

An engine turns speech plus tracked face frames into new mouth regions (``Patch``); blending them into the
frame is done by ``studio.lipsync.blend`` so every engine gets the same seam-free compositing.
"""
from __future__ import annotations

from typing import Optional, Protocol, Sequence

import numpy as np

from ..registry import Registry
from ..types import Face, Patch, Speech


class LipSyncEngine(Protocol):
    name: str

    def prepare(self, speech: Speech, fps: float, n_frames: int) -> None:
        """Precompute whatever the engine needs from the speech for output frames 0..n_frames-1 at fps."""

    def render(
        self, frames: Sequence[np.ndarray], faces: Sequence[Optional[Face]], indices: Sequence[int]
    ) -> list[Optional[Patch]]:
        """Return one Patch (or None to leave the frame as it is) per frame; ``indices`` are output frame numbers."""


# Factories take (device: str, model: str | None) and import their engine lazily (no import-time cost).
ENGINES: Registry[LipSyncEngine] = Registry("lip-sync engine")
