"""studio: make a person in a video or photo say new words, offline.

``from studio import Studio`` is the public entry point (see ``studio.api``). Importing the package is cheap:
heavy dependencies load on first use.
"""
__version__ = "0.1.0"

__all__ = ["Studio", "LipSyncOptions", "LipSyncResult", "__version__"]


def __getattr__(name):
    if name in ("Studio", "LipSyncOptions", "LipSyncResult"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'studio' has no attribute {name!r}")
