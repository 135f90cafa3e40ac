"""Small file helpers of the dubbing jobs: content hashes and atomic writes (temp file beside, then rename)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from ..video.io import _umask


def key(*parts) -> str:
    """A short content key of JSON-able parts (the same parts always give the same key)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def temp_beside(path: Path, suffix: str | None = None) -> Path:
    """A fresh, empty temporary file name in ``path``'s folder (hidden, removed by the caller on failure)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{suffix or path.suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, path: Path) -> Path:
    """Give ``tmp`` normal permissions and rename it to ``path`` (atomic on one file system)."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
    return Path(path)


def write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    tmp = temp_beside(path)
    try:
        tmp.write_bytes(data)
        return publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, value) -> Path:
    return write_text(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def read_json(path):
    """The JSON in ``path``, or None when it is missing or unreadable (a cache miss, never an error)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
