"""Where the studio keeps user data. ``STUDIO_HOME`` overrides the default ``~/.local/share/studio``."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_CHECKPOINTS = REPO_ROOT / "checkpoints"  # checkpoints that ship with the repository


def studio_home() -> Path:
    return Path(os.environ.get("STUDIO_HOME") or Path.home() / ".local" / "share" / "studio")


def voices_dir() -> Path:
    """One folder per voice profile."""
    return studio_home() / "voices"


def models_dir() -> Path:
    """Checkpoints that users train or download (one file or folder per model)."""
    return studio_home() / "models"


def cache_dir() -> Path:
    """Re-creatable data: preprocessed datasets, joined model files."""
    return Path(os.environ.get("STUDIO_CACHE") or Path.home() / ".cache" / "studio")
