"""Audio read/write and resampling.

soundfile reads WAV/FLAC/OGG directly; everything else (MP3, M4A, the sound track of a video) is decoded by
ffmpeg. Resampling uses soxr (a librosa dependency) because it is fast and needs no compile on first call.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..video.io import _umask

SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg"}
SILENCE_PEAK = 1e-3  # below this peak amplitude (-60 dBFS) there is nothing to lip-sync to


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return audio.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(audio.astype(np.float32, copy=False), sr_in, sr_out, quality="HQ").astype(np.float32)


def load_audio(path, sample_rate: int | None = None, *, what: str = "audio", allow_silent: bool = False):
    """Read any audio (or a video's sound) as float32 mono; resample to ``sample_rate`` when given.

    Returns ``(audio, sample_rate)``. Raises InputError on a missing/unreadable/empty/silent input.
    """
    from ..video.io import check_input_file, probe

    p = check_input_file(path, what)
    audio = sr = None
    if p.suffix.lower() in SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            audio, sr = sf.read(str(p), dtype="float32", always_2d=True)
            audio = audio.mean(axis=1)
        except Exception:
            audio = None  # fall back to ffmpeg, which reads more WAV variants
    if audio is None:
        info = probe(p, what)
        if not info.has_audio:
            raise InputError(f"{what} file {p} has no sound track; give a WAV/MP3/FLAC file or a video with sound")
        audio, sr = _decode_with_ffmpeg(p, sample_rate or 48000)
    if len(audio) == 0:
        raise InputError(f"{what} file {p} contains no audio samples")
    if sample_rate is not None and sr != sample_rate:
        audio, sr = resample(audio, sr, sample_rate), sample_rate
    if not allow_silent and float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise InputError(f"{what} file {p} is silent; give a recording with audible speech")
    return np.ascontiguousarray(audio, dtype=np.float32), int(sr)


def _decode_with_ffmpeg(path: Path, sample_rate: int) -> tuple[np.ndarray, int]:
    from ..video.io import ffmpeg_exe

    args = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-vn", "-ac", "1",
            "-ar", str(sample_rate), "-f", "f32le", "pipe:"]
    res = subprocess.run(args, capture_output=True)
    if res.returncode != 0:
        msg = res.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"cannot decode the audio of {path}: {msg[-1] if msg else 'unknown error'}")
    return np.frombuffer(res.stdout, np.float32).copy(), sample_rate


def save_audio(path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write float32 mono audio (WAV/FLAC/OGG by suffix) atomically: temp file in the same folder, then rename."""
    import soundfile as sf

    p = Path(path).expanduser()
    if p.suffix.lower() not in SOUNDFILE_SUFFIXES:
        raise InputError(f"audio output {p} must end in .wav, .flac or .ogg")
    if p.is_dir():
        raise InputError(f"audio output {p} is a directory; give a file name such as {p / 'line.wav'}")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix, dir=p.parent)
    os.close(fd)
    try:
        sf.write(tmp, np.clip(audio, -1.0, 1.0).astype(np.float32), int(sample_rate))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
