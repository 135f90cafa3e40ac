"""Hardware video encode/decode (NVENC/NVDEC) when the render runs on a CUDA device and ffmpeg can use them.

``ffmpeg -encoders`` lists h264_nvenc in most builds (Debian's included) whether or not a GPU with an NVENC unit
and its driver are there, and some CUDA cards have no NVENC at all (H100/H200), so a listed codec is tried once
(one tiny frame) before it is used; otherwise libx264 and software decoding are used, as on a CPU.
"""
from __future__ import annotations

import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

from ..log import get_logger

log = get_logger("video")

SOFTWARE_ENCODER = "libx264"
NVENC = "h264_nvenc"


def parse_encoders(text: str) -> set[str]:
    """Encoder names from ``ffmpeg -encoders`` output (lines such as `` V....D libx264   libx264 H.264 ...``)."""
    names = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS" and set(parts[0][1:]) <= set(".FSXBD"):
            names.add(parts[1])
    names.discard("=")  # the legend line " ------" and its header are not encoders
    return names


def parse_hwaccels(text: str) -> set[str]:
    """Method names from ``ffmpeg -hwaccels`` output (a header line, then one name a line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return {line for line in lines if ":" not in line and " " not in line}


def _run(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


@lru_cache(maxsize=4)
def ffmpeg_features(exe: str) -> tuple[frozenset, frozenset]:
    """(encoders, hwaccels) of an ffmpeg executable."""
    try:
        enc = _run([exe, "-hide_banner", "-encoders"]).stdout
        hw = _run([exe, "-hide_banner", "-hwaccels"]).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset(), frozenset()
    return frozenset(parse_encoders(enc)), frozenset(parse_hwaccels(hw))


@lru_cache(maxsize=8)
def _encoder_works(exe: str, codec: str) -> bool:
    try:
        res = _run([exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=gray:s=256x256:d=0.08", "-frames:v", "2", "-c:v", codec, "-f", "null", "-"])
    except (OSError, subprocess.SubprocessError):
        return False
    if res.returncode != 0:
        log.info("%s is listed by ffmpeg but does not work here (%s): using %s", codec,
                 (res.stderr.strip().splitlines() or ["?"])[-1], SOFTWARE_ENCODER)
    return res.returncode == 0


@lru_cache(maxsize=8)
def _hwaccel_works(exe: str, method: str) -> bool:
    with tempfile.TemporaryDirectory(prefix="studio-hw-") as tmp:
        sample = Path(tmp) / "s.mp4"
        try:
            made = _run([exe, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=gray:s=256x256:d=0.08",
                         "-c:v", "libx264", str(sample)])
            if made.returncode != 0:
                return False
            res = _run([exe, "-nostdin", "-loglevel", "error", "-hwaccel", method, "-i", str(sample), "-f", "null", "-"])
        except (OSError, subprocess.SubprocessError):
            return False
    return res.returncode == 0


def choose_encoder(device: str, encoders: set[str] | frozenset, works: Callable[[str], bool]) -> str:
    """h264_nvenc when rendering on CUDA and ffmpeg has it and it works; libx264 otherwise."""
    if str(device).startswith("cuda") and NVENC in encoders and works(NVENC):
        return NVENC
    return SOFTWARE_ENCODER


def choose_hwaccel(device: str, hwaccels: set[str] | frozenset, works: Callable[[str], bool]) -> Optional[str]:
    """"cuda" (NVDEC) when rendering on CUDA and ffmpeg has it and it works; None (software decoding) otherwise."""
    if str(device).startswith("cuda") and "cuda" in hwaccels and works("cuda"):
        return "cuda"
    return None


def video_codecs(device: str) -> tuple[str, Optional[str]]:
    """(encoder, hwaccel) for a render on ``device`` with the installed ffmpeg."""
    if not str(device).startswith("cuda"):  # nothing to look up: no subprocess on the CPU path
        return SOFTWARE_ENCODER, None
    from .io import ffmpeg_exe

    exe = ffmpeg_exe()
    encoders, hwaccels = ffmpeg_features(exe)
    return (choose_encoder(device, encoders, lambda c: _encoder_works(exe, c)),
            choose_hwaccel(device, hwaccels, lambda m: _hwaccel_works(exe, m)))
