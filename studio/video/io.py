"""Streaming video/image decode and H.264/AAC encode through ffmpeg (driven with ffmpeg-python).

Frames travel as RGB uint8 arrays through pipes, one at a time: nothing here holds a whole video in memory.
Outputs are written to a temporary file beside the target and renamed only when ffmpeg succeeded.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import weakref
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..errors import InputError, MissingDependencyError
from ..log import get_logger

log = get_logger("video")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}

# Every ffmpeg child and unfinished output of this process, so a shutdown (the app on SIGTERM) can end them all
# even when the thread that owns one is stuck elsewhere.
_live_lock = threading.Lock()
_live_readers: "weakref.WeakSet[subprocess.Popen]" = weakref.WeakSet()
_live_writers: "weakref.WeakSet[VideoWriter]" = weakref.WeakSet()


def abort_all() -> int:
    """End every running ffmpeg decoder and encoder of this process and remove the encoders' partial files.
    Returns how many were ended. Their owners then fail with an error, which their own cleanup handles."""
    with _live_lock:
        readers, writers = list(_live_readers), list(_live_writers)
    for proc in readers:
        if proc.poll() is None:
            proc.kill()
    for writer in writers:
        writer.abort()
    return len(readers) + len(writers)


def ffmpeg_exe() -> str:
    """Debian's ffmpeg when installed, else the one bundled in imageio-ffmpeg."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        raise MissingDependencyError(
            "ffmpeg is not installed; install it with `apt-get install ffmpeg` (or run `make setup`)"
        ) from None


def ffprobe_exe() -> str:
    exe = shutil.which("ffprobe")
    if not exe:
        raise MissingDependencyError(
            "ffprobe is not installed; install it with `apt-get install ffmpeg` (or run `make setup`)"
        )
    return exe


@dataclass(frozen=True)
class MediaInfo:
    """What ffprobe says about a file, after rotation metadata is applied."""

    path: Path
    is_image: bool
    width: int
    height: int
    fps: float
    frames: Optional[int]  # None when unknown (estimated from duration when possible)
    duration: float
    has_video: bool
    has_audio: bool


def check_input_file(path, what: str = "input") -> Path:
    """Existence, type and readability checks with messages that say how to fix the input."""
    if path is None or str(path).strip() == "":
        raise InputError(f"no {what} file was given")
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{what} file {p} does not exist; check the path")
    if p.is_dir():
        raise InputError(f"{what} {p} is a directory; give a file inside it")
    if not os.access(p, os.R_OK):
        raise InputError(f"{what} file {p} is not readable; check its permissions")
    if p.stat().st_size == 0:
        raise InputError(f"{what} file {p} is empty")
    return p


def probe(path, what: str = "input") -> MediaInfo:
    """Probe a video, image or audio file; raises InputError when ffmpeg cannot read it."""
    import ffmpeg

    p = check_input_file(path, what)
    try:
        info = ffmpeg.probe(str(p), cmd=ffprobe_exe())
    except ffmpeg.Error as e:
        detail = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        raise InputError(
            f"{what} file {p} cannot be read as audio, video or image ({detail[-1] if detail else 'unknown format'}); "
            "use a common format such as MP4, MOV, MKV, WebM, PNG, JPEG, WAV, MP3 or FLAC"
        ) from None
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover_art(s)), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    fmt = info.get("format", {})
    duration = _float(fmt.get("duration")) or _float((video or audio or {}).get("duration")) or 0.0
    if video is None:
        return MediaInfo(p, False, 0, 0, 0.0, None, duration, False, audio is not None)
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise InputError(
            f"{what} file {p} cannot be read as audio, video or image (its picture has no size: the file is "
            "damaged or not what its name says)")
    if abs(_rotation(video)) % 180 == 90:
        width, height = height, width
    is_image = p.suffix.lower() in IMAGE_SUFFIXES or fmt.get("format_name", "").endswith("_pipe")
    fps = _fps(video)
    frames = int(video["nb_frames"]) if str(video.get("nb_frames", "")).isdigit() else None
    if frames is None and fps > 0 and duration > 0 and not is_image:
        frames = int(round(duration * fps))
    if is_image:
        frames, fps = 1, 0.0
    return MediaInfo(p, is_image, width, height, fps, frames, duration, True, audio is not None)


def _is_cover_art(stream: dict) -> bool:
    return bool(stream.get("disposition", {}).get("attached_pic"))


def _float(value) -> Optional[float]:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


def _fps(stream: dict) -> float:
    for key in ("avg_frame_rate", "r_frame_rate"):
        try:
            f = Fraction(stream.get(key, "0/0"))
        except (ZeroDivisionError, ValueError):
            continue
        if 0 < f < 1000:
            return float(f)
    return 25.0


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return int(float(side["rotation"]))
    return int(float(stream.get("tags", {}).get("rotate", 0) or 0))


_spawn_lock = threading.Lock()


def _popen(args, **kwargs) -> subprocess.Popen:
    """Start ffmpeg; from a thread other than the main one, with fork instead of vfork.

    The render starts its decoder from a stage thread while the network runs in another. A vfork child shares the
    parent's memory until it execs; when another thread frees (unmaps) memory in that window, exec fails with EFAULT
    ("[Errno 14] Bad address: '/usr/bin/ffmpeg'"): seen in 3 of 7 wav2lip renders in benchmarks/pipeline_speed.py.
    fork copies the page tables (about 1 ms a GB of the process), so the main thread, where no stage runs at the
    same time, keeps vfork (the documented ``subprocess._USE_VFORK`` switch is flipped only around this call).
    """
    if threading.current_thread() is threading.main_thread() or not hasattr(subprocess, "_USE_VFORK"):
        return subprocess.Popen(args, **kwargs)
    with _spawn_lock:
        saved, subprocess._USE_VFORK = subprocess._USE_VFORK, False
        try:
            return subprocess.Popen(args, **kwargs)
        finally:
            subprocess._USE_VFORK = saved


def read_frames(info: MediaInfo, max_frames: Optional[int] = None, hwaccel: Optional[str] = None) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames of a video (or the single frame of an image), streaming from ffmpeg; ``hwaccel``
    ("cuda": NVDEC, see ``studio.video.hw``) decodes on the GPU, the frames still arrive as RGB arrays."""
    import ffmpeg

    if not info.has_video:
        raise InputError(f"{info.path} has no video stream; give a video or a photo of a face")
    frame_bytes = info.width * info.height * 3
    stream = ffmpeg.input(str(info.path), **({"hwaccel": hwaccel} if hwaccel else {})).output(
        "pipe:", format="rawvideo", pix_fmt="rgb24", **({"frames:v": max_frames} if max_frames else {})
    )
    args = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", *stream.get_args()]
    proc = _popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=frame_bytes)
    with _live_lock:
        _live_readers.add(proc)
    count = 0
    try:
        while True:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            count += 1
            yield np.frombuffer(buf, np.uint8).reshape(info.height, info.width, 3).copy()
    finally:
        proc.stdout.close()
        if proc.poll() is None:  # the consumer stopped early (or failed): do not leave ffmpeg running
            proc.kill()
        rc = proc.wait()
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
    if count == 0:
        raise InputError(
            f"no frame could be decoded from {info.path}" + (f": {err.strip().splitlines()[-1]}" if err.strip() else "")
            + "; the file may be damaged or use an unsupported codec"
        )
    if rc != 0 and max_frames is None:
        log.warning("ffmpeg reported an error after %d frames of %s: %s", count, info.path, err.strip()[-300:])


def read_image(path) -> np.ndarray:
    """Read one still image as RGB uint8 (through ffmpeg, so every format ffmpeg knows works)."""
    info = probe(path, "image")
    if not info.has_video:
        raise InputError(f"{path} is not an image; use a PNG or JPEG photo")
    return next(read_frames(info, max_frames=1))


class VideoWriter:
    """Write RGB frames to an H.264 (yuv420p) MP4, muxing an audio file as AAC when given.

    Use as a context manager: the output appears at ``path`` only if the block and ffmpeg both succeed; on any
    error the temporary file is removed and ``path`` is left as it was.
    """

    def __init__(self, path, width: int, height: int, fps: float, audio_path=None, crf: int = 18,
                 preset: str = "veryfast", vcodec: str = "libx264"):
        """``vcodec`` "h264_nvenc" encodes on an NVIDIA GPU (see ``studio.video.hw``) at the same quality target
        (constant quality ``crf``)."""
        import ffmpeg

        self.path = Path(path)
        self.width, self.height = width, height
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".partial.mp4", dir=self.path.parent)
        os.close(fd)
        self.tmp_path = Path(tmp)
        video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}",
                             framerate=_rate_str(fps))
        # yuv420p needs even sizes: pad by one pixel rather than rescale (keeps the original pixels).
        video = video.filter("pad", "ceil(iw/2)*2", "ceil(ih/2)*2")
        if vcodec == "h264_nvenc":
            codec = dict(vcodec=vcodec, rc="vbr", cq=crf, preset="p4", **{"b:v": 0})
        else:
            codec = dict(vcodec=vcodec, crf=crf, preset=preset)
        common = dict(pix_fmt="yuv420p", movflags="+faststart", format="mp4", **codec)
        if audio_path is not None:
            audio = ffmpeg.input(str(audio_path)).audio
            out = ffmpeg.output(video, audio, str(self.tmp_path), acodec="aac", audio_bitrate="192k",
                                shortest=None, **common)
        else:
            out = ffmpeg.output(video, str(self.tmp_path), **common)
        args = [ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", *out.get_args()]
        self._stderr = tempfile.TemporaryFile()
        self.frames = 0
        self._state = "open"  # -> "done" (renamed into place) or "aborted" (partial file removed)
        self._state_lock = threading.Lock()
        self.proc = _popen(args, stdin=subprocess.PIPE, stderr=self._stderr)
        with _live_lock:
            _live_writers.add(self)

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame of shape {frame.shape} {frame.dtype}; expected ({self.height}, {self.width}, 3) uint8")
        if self._state != "open":
            raise RuntimeError(f"encoding {self.path} was stopped")
        try:
            self.proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except (BrokenPipeError, ValueError, OSError):
            if self._state == "aborted":
                raise RuntimeError(f"encoding {self.path} was stopped") from None
            raise RuntimeError(f"ffmpeg stopped while encoding {self.path}: {self._error_text()}") from None
        self.frames += 1

    def _error_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-500:]

    def close(self) -> Path:
        """Finish encoding and move the file into place; returns the final path. Idempotent."""
        if self._state == "done":
            return self.path
        if self._state == "aborted":
            raise RuntimeError(f"encoding {self.path} was stopped")
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = self.proc.wait()
        if rc != 0 or self.frames == 0:
            err = self._error_text()
            self.abort()
            raise RuntimeError(f"ffmpeg failed to encode {self.path} (exit {rc}): {err or 'no frames written'}")
        with self._state_lock:
            if self._state == "aborted":  # a shutdown stopped it while ffmpeg was finishing
                raise RuntimeError(f"encoding {self.path} was stopped")
            self._stderr.close()
            os.chmod(self.tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get normal permissions
            os.replace(self.tmp_path, self.path)
            self._state = "done"
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and remove the partial file (idempotent; safe from another thread)."""
        with self._state_lock:
            if self._state != "open":
                return
            self._state = "aborted"
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        self._stderr.close()
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _rate_str(fps: float) -> str:
    f = Fraction(fps).limit_denominator(1001)
    return f"{f.numerator}/{f.denominator}"


def same_file(a, b) -> bool:
    """Whether two paths name one file, through symlinks, hard links, `./` and `..` spellings."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return os.path.realpath(pa) == os.path.realpath(pb)


def check_output_path(out, suffixes=(".mp4",), inputs=()) -> Path:
    """Validate an output path; create its folder. Raises InputError on a directory, a wrong suffix, or a path
    that is one of ``inputs`` (writing there would destroy a source)."""
    if out is None or str(out).strip() == "":
        raise InputError("no output path was given; pass one such as out.mp4")
    p = Path(out).expanduser()
    if p.is_dir():
        raise InputError(f"output {p} is a directory; give a file name such as {p / 'out.mp4'}")
    for source in inputs:
        if isinstance(source, (str, os.PathLike)) and str(source).strip() and same_file(p, source):
            raise InputError(f"output {p} is the same file as the input {source}; write to another file name "
                             "(the input would be overwritten)")
    if p.suffix.lower() not in suffixes:
        raise InputError(f"output {p} must end in {' or '.join(suffixes)}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the output folder {p.parent}: {e.strerror}") from None
    if not os.access(p.parent, os.W_OK):
        raise InputError(f"output folder {p.parent} is not writable")
    return p
