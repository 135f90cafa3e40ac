"""Content hashes, in one place: every cache key, checksum and provenance record hashes files the same way."""
from __future__ import annotations

import hashlib
import os

_CHUNK = 1 << 20


def file_sha256(path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks so big videos never sit in memory whole."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


_MEMO: dict = {}


def file_sha256_memo(path) -> str:
    """``file_sha256``, remembered for the process while the file's size and mtime stay the same."""
    st = os.stat(path)
    key = (os.fspath(path), st.st_size, st.st_mtime_ns)
    if key not in _MEMO:
        _MEMO[key] = file_sha256(path)
    return _MEMO[key]
