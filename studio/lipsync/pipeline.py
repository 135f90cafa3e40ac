"""The lip-sync job: decode -> track -> engine -> blend -> encode, streamed frame by frame.

Memory stays flat with the input's length: frames flow through in batches. The only exception is a video
shorter than the audio, which is ping-ponged (forward, backward, forward...): its frames are cached in a raw
file on disk (never in RAM) so they can be read backwards.
"""
from __future__ import annotations

import math
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from ..audio.io import load_audio, save_audio
from ..errors import InputError
from ..log import get_logger
from ..progress import Progress
from ..types import Face, LipSyncResult, Speech
from ..video.io import MediaInfo, VideoWriter, check_output_path, probe, read_frames

log = get_logger("pipeline")

MIN_SPEECH_SECONDS = 0.1


def load_speech_file(path) -> Speech:
    """Read the speech to lip-sync to from an audio file or a video's sound track."""
    audio, sr = load_audio(path, what="audio")
    if sr < 16000:  # the networks work at 16 kHz; keep better rates for the output track
        from ..audio.io import resample

        audio, sr = resample(audio, sr, 16000), 16000
    speech = Speech(audio=audio, sample_rate=sr)
    if speech.duration < MIN_SPEECH_SECONDS:
        raise InputError(f"audio file {path} is only {speech.duration:.2f} s long; give at least {MIN_SPEECH_SECONDS} s")
    return speech


def save_speech(speech: Speech, path) -> Path:
    return save_audio(path, speech.audio, speech.sample_rate)


def ping_pong_index(k: int, n: int) -> int:
    """Source frame for output frame k of a video with n frames played forward, backward, forward..."""
    if n <= 1:
        return 0
    period = 2 * n - 2
    m = k % period
    return m if m < n else period - m


class _Timer:
    """Accumulates seconds per stage."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0

    def timed_iter(self, stage: str, it: Iterable) -> Iterator:
        it = iter(it)
        while True:
            with self(stage):
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item


def video_frames(info: MediaInfo, n_out: int, workdir: Path) -> Iterator[np.ndarray]:
    """Yield exactly n_out frames of the video, ping-ponging through a disk cache when it is too short."""
    needs_cache = info.frames is None or info.frames < n_out
    cache_path = workdir / "frames.raw"
    n_src = 0
    with open(cache_path, "wb") if needs_cache else _null() as cache:
        for frame in read_frames(info):
            if n_src >= n_out:
                return
            if cache is not None:
                cache.write(frame.tobytes())
            n_src += 1
            yield frame
    if n_src >= n_out:
        return
    log.info("video has %d frames for %d needed: ping-ponging", n_src, n_out)
    frames = np.memmap(cache_path, dtype=np.uint8, mode="r", shape=(n_src, info.height, info.width, 3))
    for k in range(n_src, n_out):
        yield np.array(frames[ping_pong_index(k, n_src)])


@contextmanager
def _null():
    yield None


@dataclass(frozen=True)
class _Plan:
    info: MediaInfo
    fps: float
    n_out: int


def check_face_source(face_path) -> MediaInfo:
    """Probe the face file; it must have a picture (a video or a photo)."""
    info = probe(face_path, "face")
    if not info.has_video:
        raise InputError(f"face file {info.path} has no picture (it looks like audio); give a video or a photo of a face")
    return info


def _plan(face_path, speech: Speech, fps_for_image: float) -> _Plan:
    info = check_face_source(face_path)
    if speech.duration < MIN_SPEECH_SECONDS:
        raise InputError(f"the speech is only {speech.duration:.2f} s long; give at least {MIN_SPEECH_SECONDS} s")
    fps = fps_for_image if info.is_image else info.fps
    if not fps or fps <= 0:
        raise InputError(f"cannot tell the frame rate of {info.path}; re-encode it with a constant frame rate")
    return _Plan(info, fps, max(1, math.ceil(speech.duration * fps - 1e-6)))


def run_lipsync(face_path, speech: Speech, out, options, device: str, progress: Progress):
    """Render ``out`` (MP4): the face in ``face_path`` speaking ``speech``. See ``Studio.lipsync``."""
    from ..face import detect_faces, track_with_frames
    from .blend import blend
    from .engines import create_engine
    from .sync_score import SyncMeter

    from ..trust.audio_mark import mark_speech

    out = check_output_path(out)
    plan = _plan(face_path, speech, options.fps_for_image)
    timer = _Timer()
    progress.update("preparing", 0, None)
    with timer("audio mark"):  # every rendered sound track carries the studio's audio mark (once: see mark_speech)
        speech = mark_speech(speech, check_first=True)
    engine_name, engine = create_engine(options.engine, options.model, device, options.batch_size)
    with timer("engine"):
        engine.prepare(speech, plan.fps, plan.n_out)
    meter = SyncMeter(speech, plan.fps)  # the output's sync score (re-tracks each output mouth: ~20 ms a frame here)

    workdir = Path(tempfile.mkdtemp(prefix="studio-lipsync-"))
    try:
        audio_path = save_audio(workdir / "speech.wav", speech.audio, speech.sample_rate)
        if plan.info.is_image:
            with timer("decode"):
                image = next(read_frames(plan.info, max_frames=1))
            with timer("track"):
                faces = detect_faces(image, tracker=options.tracker)
            if not faces:
                raise InputError(
                    f"no face found in {plan.info.path}; use a photo where the face is visible, frontal and at "
                    "least about 80 px wide"
                )
            face = _pick(faces, options)
            frames_faces: Iterable[tuple[np.ndarray, Optional[Face]]] = ((image, face) for _ in range(plan.n_out))
        else:
            frames_faces = _tracked(plan, options, workdir, timer, track_with_frames)

        with_face = 0
        batch: list[tuple[np.ndarray, Optional[Face]]] = []
        done = 0
        with VideoWriter(out, plan.info.width, plan.info.height, plan.fps, audio_path=audio_path) as writer:

            def flush():
                nonlocal with_face, done
                frames = [f for f, _ in batch]
                faces_ = [fc for _, fc in batch]
                indices = list(range(done, done + len(batch)))
                with timer("engine"):
                    patches = engine.render(frames, faces_, indices)
                for index, frame, face_, patch in zip(indices, frames, faces_, patches):
                    if patch is not None and face_ is not None:
                        with timer("blend"):
                            frame = blend(frame, patch, face_)
                        with timer("sync score"):
                            meter.add_frame(index, frame, face_)
                        with_face += 1
                    with timer("encode"):
                        writer.write(frame)
                done += len(batch)
                batch.clear()
                progress.update("lip-sync", done, plan.n_out)

            progress.update("lip-sync", 0, plan.n_out)
            for item in frames_faces:
                batch.append(item)
                if len(batch) >= options.batch_size:
                    flush()
            if batch:
                flush()
            with timer("encode"):
                writer.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    with timer("sync score"):
        sync = meter.result()
    if with_face == 0:
        log.warning("no face was found in any frame of %s: the video was re-encoded with the new audio only",
                    plan.info.path)
    log.info("wrote %s: %d frames at %.3f fps, engine %s, %d with a face", out, done, plan.fps, engine_name, with_face)
    return LipSyncResult(
        path=out, engine=engine_name, frames=done, fps=plan.fps, duration=speech.duration,
        frames_with_face=with_face, seconds_per_stage={k: round(v, 3) for k, v in timer.seconds.items()},
        model=getattr(engine, "checkpoint", None), sync=sync,
    )


def _pick(faces: list[Face], options) -> Face:
    if options.face_point is not None:
        x, y = options.face_point
        inside = [f for f in faces if f.box[0] <= x < f.box[2] and f.box[1] <= y < f.box[3]]
        if inside:
            return inside[0]
        return min(faces, key=lambda f: (f.box[0] + f.box[2] - 2 * x) ** 2 + (f.box[1] + f.box[3] - 2 * y) ** 2)
    index = options.face_index or 0
    if not 0 <= index < len(faces):
        raise InputError(f"face index {index} asked for but only {len(faces)} face(s) were found (0 = largest)")
    return faces[index]


def _tracked(plan: _Plan, options, workdir: Path, timer: _Timer, track_with_frames):
    """(frame, face) pairs from the streaming tracker, with decode and tracking timed separately."""
    frames = timer.timed_iter("decode", video_frames(plan.info, plan.n_out, workdir))
    pairs = track_with_frames(frames, plan.fps, tracker=options.tracker, face_index=options.face_index,
                              face_point=options.face_point)
    yield from timer.timed_iter("track", pairs)
    # decode time was counted inside the tracker's time too: keep the stages disjoint
    timer.seconds["track"] = max(0.0, timer.seconds.get("track", 0.0) - timer.seconds.get("decode", 0.0))
