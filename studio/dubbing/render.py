"""The dubbed picture: lip-sync only where new speech plays, the rest passes through, then one MP4.

The video is cut at frame boundaries into spans with new speech (each line's speech plus ``pad``) and spans
without. Spans with speech go through the lip-sync pipeline with that
span's speech alone (its phoneme timings drive the visemes engine); the others are re-encoded unchanged (same
frames, same encoder settings, so the pieces join with a stream copy). Every line has a span of its own (lines
closer than twice the padding are cut apart half-way between them), and every piece is cached under a key of its
inputs, so editing one line re-renders only that line's span. The pieces are joined (ffmpeg concat, no
re-encode) and muxed with the mix (and optionally the original sound as a second track) into a temporary file
beside the target, renamed into place at the end.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..log import get_logger
from ..types import PhonemeTiming, Speech
from ..video.io import MediaInfo, VideoWriter, ffmpeg_exe
from .files import key, publish, temp_beside

log = get_logger("dubbing.render")


@dataclass(frozen=True)
class Span:
    first: int  # first frame
    stop: int  # one past the last frame
    synced: bool  # new speech plays here: lip-synced

    def seconds(self, fps: float) -> tuple[float, float]:
        return self.first / fps, self.stop / fps


def plan_spans(regions: Sequence[tuple[float, float]], fps: float, n_frames: int, pad: float = 0.2) -> list[Span]:
    """Spans covering frames 0..n_frames-1: one per speech region (padded by ``pad``; two regions closer than
    twice that are cut apart half-way between them, so each line keeps a span of its own) and what lies between."""
    regions = sorted((a, b) for a, b in regions if b > a)
    cuts: list[tuple[int, int]] = []
    for k, (a, b) in enumerate(regions):
        lo = a - pad if k == 0 else max(a - pad, (regions[k - 1][1] + a) / 2)
        hi = b + pad if k + 1 == len(regions) else min(b + pad, (b + regions[k + 1][0]) / 2)
        f0 = max(0, int(round(lo * fps)), cuts[-1][1] if cuts else 0)
        f1 = min(n_frames, int(round(hi * fps)))
        if f1 > f0:
            cuts.append((f0, f1))
    spans, t = [], 0
    for f0, f1 in cuts:
        if f0 > t:
            spans.append(Span(t, f0, False))
        spans.append(Span(f0, f1, True))
        t = f1
    if t < n_frames:
        spans.append(Span(t, n_frames, False))
    return spans


def span_speech(track: np.ndarray, sr: int, phonemes: Sequence[PhonemeTiming], span: Span, fps: float) -> Speech:
    """The new speech of a span (exactly the span's frames long) with its phoneme timings."""
    a, b = span.seconds(fps)
    i = int(round(a * sr))
    n = int((span.stop - span.first) * sr / fps)  # floor: never one frame more than the span
    audio = np.pad(track[i:i + n], (0, max(0, n - len(track[i:i + n]))))
    inside = tuple(PhonemeTiming(p.phoneme, p.start - a, p.end - a) for p in phonemes if p.end > a and p.start < b)
    return Speech(audio=audio.astype(np.float32), sample_rate=sr, phonemes=inside or None)


def _decode_span(info: MediaInfo, span: Span, fps: float):
    """Frames first..stop-1 of the video as RGB arrays (ffmpeg seeks, then decodes exactly)."""
    start = max(0.0, (span.first - 0.5) / fps)
    n = span.stop - span.first
    args = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-ss", f"{start:.6f}", "-i", str(info.path),
            "-frames:v", str(n), "-an", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]
    size = info.width * info.height * 3
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=size)
    last = None
    count = 0
    try:
        while count < n:
            buf = proc.stdout.read(size)
            if len(buf) < size:
                break
            last = np.frombuffer(buf, np.uint8).reshape(info.height, info.width, 3)
            count += 1
            yield last
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    while last is not None and count < n:  # the container said more frames than it holds: hold the last one
        count += 1
        yield last


def write_span(info: MediaInfo, span: Span, fps: float, out: Path) -> Path:
    """The span's frames, unchanged, re-encoded as a video-only MP4 (the lip-sync pipeline's encoder settings)."""
    with VideoWriter(out, info.width, info.height, fps) as writer:
        for frame in _decode_span(info, span, fps):
            writer.write(frame)
    return out


def render_span(info: MediaInfo, span: Span, fps: float, speech: Optional[Speech], out: Path, lipsync_options,
                device: str, progress, job_id: Optional[str] = None) -> dict:
    """One cached piece: ``out`` (video only). With ``speech`` the span is lip-synced to it."""
    if speech is None:
        write_span(info, span, fps, out)
        return {"engine": None, "frames_with_face": None}
    from ..lipsync.pipeline import run_lipsync

    work = Path(tempfile.mkdtemp(prefix="studio-dub-span-"))
    try:
        clip = write_span(info, span, fps, work / "clip.mp4")
        synced = work / "synced.mp4"
        result = run_lipsync(clip, speech, synced, lipsync_options, device, progress, job_id=job_id)
        tmp = temp_beside(out)
        try:
            _ffmpeg(["-i", str(synced), "-map", "0:v:0", "-c:v", "copy", "-an", "-f", "mp4", str(tmp)])
            publish(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        # the stretch's sync score (weak segments in seconds from the stretch's start) goes into report.json
        return {"engine": result.engine, "frames_with_face": result.frames_with_face,
                "frames_marked": result.frames_marked, "job_id": result.job_id,
                "sync": asdict(result.sync) if result.sync is not None else None}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def span_key(video_hash: str, span: Span, fps: float, lines: Optional[list], lipsync_options) -> str:
    """The key of a piece: the video, its frames and, when lip-synced, the keys and places of its lines."""
    return key("span", 1, video_hash, span.first, span.stop, round(fps, 6), lines,
               asdict(lipsync_options) if lines is not None else None)


def _ffmpeg(args: list[str]) -> None:
    res = subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", *args], capture_output=True)
    if res.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {res.stderr.decode(errors='replace').strip()[-500:]}")


def assemble(pieces: Sequence[Path], mix_wav: Path, out: Path, duration: float, *, original: Optional[Path] = None,
             language: Optional[str] = None, original_language: Optional[str] = None) -> Path:
    """Join the pieces (stream copy) with the mix as AAC into ``out``, via a temporary file renamed at the end."""
    work = Path(tempfile.mkdtemp(prefix="studio-dub-join-"))
    tmp = temp_beside(out)
    try:
        listing = work / "pieces.txt"
        quoted = (str(Path(p).resolve()).replace("'", "'\\''") for p in pieces)
        listing.write_text("".join(f"file '{q}'\n" for q in quoted))
        args = ["-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(mix_wav)]
        maps = ["-map", "0:v:0", "-map", "1:a:0"]
        if original is not None:
            args += ["-i", str(original)]
            maps += ["-map", "2:a:0?"]
        meta = []
        if language:
            meta += ["-metadata:s:a:0", f"language={_iso639_2(language)}", "-metadata:s:a:0", "title=dub"]
        if original is not None:
            meta += ["-metadata:s:a:1", f"language={_iso639_2(original_language or 'und')}",
                     "-metadata:s:a:1", "title=original", "-disposition:a:1", "0"]
        _ffmpeg([*args, *maps, "-c:v", "copy", "-c:a", "aac", "-b:a", "192k", "-t", f"{duration:.6f}", *meta,
                 "-movflags", "+faststart", "-f", "mp4", str(tmp)])
        return publish(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _iso639_2(code: str) -> str:
    return {"en": "eng", "es": "spa", "fr": "fra", "de": "deu", "it": "ita", "pt": "por"}.get(code, code)
