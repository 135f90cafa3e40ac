"""The lip-sync job: decode -> track -> engine -> blend + mark + encode -> sync meter, streamed frame by frame.

Before it: the audio mark (in a thread, while the engine loads) and, for engines that
learn the person from the footage (visemes v2), the study, whose tracking of this video the render reuses.

The stages run overlapped, each in its own thread, joined by bounded queues (``studio.lipsync.stages``), so a
render goes at the speed of its slowest stage; the output is bit-identical to running them one after another
(``run_lipsync(..., sequential=True)``). Memory stays flat with the input's length: at most a few batches of
frames are in flight (decode 4 frames ahead, tracking one batch, the engine one batch, blending one batch). The
only exception is a video shorter than the audio, which is ping-ponged (forward, backward, forward...): its frames
are cached in a raw file on disk (never in RAM) so they can be read backwards.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..audio.io import load_audio, save_audio
from ..errors import InputError
from ..log import get_logger
from ..progress import Progress
from ..types import Face, LipSyncResult, Speech
from ..video.hw import video_codecs
from ..video.io import MediaInfo, VideoWriter, check_output_path, probe, read_frames
from .blend import blend
from .stages import Stage, StageTimes, run_chain

log = get_logger("pipeline")

MIN_SPEECH_SECONDS = 0.1
# seconds_per_stage key: the wall time of the streamed part (all frames decoded to encoded); the other keys are each
# stage's busy time, which overlap when the stages run at once
STREAMED = "streamed (wall)"
# a visemes study of the video being rendered keeps its tracking for the render (False: the render tracks again;
# tests compare the two, which must be identical)
SHARE_STUDY_TRACKING = True


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


def video_frames(info: MediaInfo, n_out: int, workdir: Path, hwaccel: Optional[str] = None) -> Iterator[np.ndarray]:
    """Yield exactly n_out frames of the video, ping-ponging through a disk cache when it is too short."""
    needs_cache = info.frames is None or info.frames < n_out
    cache_path = workdir / "frames.raw"
    n_src = 0
    with open(cache_path, "wb") if needs_cache else _null() as cache:
        for frame in read_frames(info, hwaccel=hwaccel):
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


def run_lipsync(face_path, speech: Speech, out, options, device: str, progress: Progress,
                job_id: Optional[str] = None, *, sequential: bool = False):
    """Render ``out`` (MP4): the face in ``face_path`` speaking ``speech``. See ``Studio.lipsync``. ``job_id`` (made
    here when None) goes into the video mark of every changed frame and into the result.

    The stages (decode, track, engine, blend + encode) run overlapped in their own threads (see ``stages``);
    ``sequential=True`` runs them one after another in this thread, with the same output bit for bit."""
    from ..face import detect_faces
    from .engines import create_engine
    from .sync_score import SyncMeter

    from ..trust.audio_mark import mark_speech
    from ..trust.provenance import new_job_id
    from ..trust.video_mark import VideoMarker

    out = check_output_path(out)
    plan = _plan(face_path, speech, options.fps_for_image)
    times = StageTimes()
    progress.update("preparing", 0, None)
    # every rendered sound track carries the studio's audio mark (once: see mark_speech); it runs in a thread
    # while the engine loads, and the engine gets the marked speech as before. Not beside the study: Perth's torch
    # threads and the face mesh's on two cores took longer together (36 s for 60 s at 360p) than one after the
    # other (8.5 + 18 s)
    marking = _InThread(lambda: mark_speech(speech, check_first=True), times, "audio mark")
    followed = None
    workdir = None
    try:
        engine_name, engine = create_engine(options.engine, options.model, device, options.batch_size)
        vcodec, hwaccel = video_codecs(device)  # NVENC/NVDEC on a CUDA device when ffmpeg has them, else software
        study = getattr(engine, "study", None)  # engines that learn the person's mouth from footage (visemes v2)
        footage = options.footage or (None if plan.info.is_image else face_path)
        with times.timed("audio mark (waited)"):
            speech = marking.result()
        if study is not None and footage is not None:
            # studying the video about to be rendered: its tracking is kept for the render (each frame tracked once)
            share = (SHARE_STUDY_TRACKING and options.footage is None and hasattr(engine, "take_followed"))
            progress.update("learning the mouth from the footage", 0, None)
            with times.timed("study"):
                study(footage, tracker=options.tracker, face_index=options.face_index,
                      face_point=options.face_point, **(dict(keep_faces=plan.n_out, hwaccel=hwaccel) if share else {}))
            followed = engine.take_followed() if share else None
        job_id = job_id or new_job_id()
        marker = VideoMarker(job_id, label=getattr(options, "label", False))  # the video mark (trust/video_mark.py)
        with times.timed("engine"):
            engine.prepare(speech, plan.fps, plan.n_out)
        meter = SyncMeter(speech, plan.fps)  # the output's sync score (re-tracks each output mouth in its face box)

        workdir = Path(tempfile.mkdtemp(prefix="studio-lipsync-"))
        audio_path = save_audio(workdir / "speech.wav", speech.audio, speech.sample_rate)
        if plan.info.is_image:
            with times.timed("decode"):
                image = next(read_frames(plan.info, max_frames=1))
            with times.timed("track"):
                faces = detect_faces(image, tracker=options.tracker)
            if not faces:
                raise InputError(
                    f"no face found in {plan.info.path}; use a photo where the face is visible, frontal and at "
                    "least about 80 px wide"
                )
            face = _pick(faces, options)
            # a photo is tracked once: every output frame is the same picture with the same face
            sources = [Stage("decode", lambda: ((image, face) for _ in range(plan.n_out)), options.batch_size)]
        else:
            sources = _video_stages(plan, options, workdir, hwaccel, followed)
        render = _Render(plan, engine, options.batch_size, times, device, marker, meter)
        with VideoWriter(out, plan.info.width, plan.info.height, plan.fps, audio_path=audio_path,
                         vcodec=vcodec) as writer:
            render.writer = writer
            progress.update("lip-sync", 0, plan.n_out)
            stages = sources + [
                Stage("engine", render.engine_batches, maxsize=1),  # items are whole batches
                Stage("finish", render.finish_batches, maxsize=2, timed=False),
                # the output mouths' landmarks, in their own worker (off the blend + mark + encode path)
                Stage("sync score", render.measure_batches, maxsize=2),
            ]
            with times.timed(STREAMED):
                run_chain(stages, times, sequential=sequential, should_stop=lambda: progress.cancelled,
                          on_item=lambda done: progress.update("lip-sync", done, plan.n_out), idle=progress.check)
                with times.timed("encode"):
                    writer.close()
    finally:
        marking.join()  # an error before the mark was waited for: let its thread end before returning
        if followed is not None:
            followed.close()  # the track stage closes it too; close() is idempotent
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    with times.timed("sync score"):
        sync = meter.result()
    done, with_face = render.done, render.with_face
    if with_face == 0:
        log.warning("no face was found in any frame of %s: the video was re-encoded with the new audio only",
                    plan.info.path)
    log.info("wrote %s: %d frames at %.3f fps, engine %s, %d with a face", out, done, plan.fps, engine_name, with_face)
    return LipSyncResult(
        path=out, engine=engine_name, frames=done, fps=plan.fps, duration=speech.duration,
        frames_with_face=with_face, seconds_per_stage={k: round(v, 3) for k, v in times.seconds.items()},
        model=getattr(engine, "checkpoint", None), job_id=job_id, frames_marked=marker.marked,
        sync=sync,
    )


def _video_stages(plan: _Plan, options, workdir: Path, hwaccel: Optional[str] = None, followed=None) -> list[Stage]:
    """Decode, then follow the face: (frame, face) pairs. The tracker lives in (and is closed by) its stage's
    thread. ``followed`` (``study.FollowedFaces``): the faces of the first frames, already tracked while the
    engine studied this video, and the tracker to go on with after them."""
    from ..face import FaceTracker

    def track(frames):
        kept = followed.faces if followed is not None else []
        follow = followed.tracker if followed is not None else None
        try:
            for k, frame in enumerate(frames):
                if k < len(kept):
                    face, kept[k] = kept[k], None  # handed on once: the list does not hold faces already rendered
                    yield frame, face
                    continue
                if follow is None:
                    follow = FaceTracker(plan.fps, tracker=options.tracker, face_index=options.face_index,
                                         face_point=options.face_point)
                yield frame, follow.update(frame)
        finally:
            if follow is not None:
                follow.close()

    # decode may run a few frames ahead; tracking one batch ahead of the engine, so the engine never waits
    return [Stage("decode", lambda: video_frames(plan.info, plan.n_out, workdir, hwaccel), maxsize=4),
            Stage("track", track, maxsize=max(1, options.batch_size))]


class _Render:
    """The engine and the blend + encode stages; holds the counts the result reports."""

    def __init__(self, plan: _Plan, engine, batch_size: int, times: StageTimes, device: str = "cpu", marker=None,
                 meter=None):
        self.plan, self.engine, self.batch_size, self.times = plan, engine, max(1, int(batch_size)), times
        self.marker, self.meter = marker, meter
        # a decoded video frame belongs to this job alone and is blended in place; a photo is one shared picture
        self.inplace = not plan.info.is_image
        if str(device).startswith("cuda"):
            from functools import partial

            from .blend_torch import blend_torch

            self.blend = partial(blend_torch, device=device)
        else:
            self.blend = blend
        self.writer: Optional[VideoWriter] = None
        self.done = 0
        self.with_face = 0

    def engine_batches(self, pairs):
        """Batches of batch_size consecutive (frame, face) pairs, with the engine's patches."""
        batch: list = []
        start = 0

        def run():
            frames = [f for f, _ in batch]
            faces = [fc for _, fc in batch]
            indices = list(range(start, start + len(batch)))
            return indices, frames, faces, self.engine.render(frames, faces, indices)

        for pair in pairs:
            batch.append(pair)
            if len(batch) >= self.batch_size:
                yield run()
                start += len(batch)
                batch = []
        if batch:
            yield run()

    def finish_batches(self, batches):
        """Blend and encode every frame of each batch; yields (frames done, the output mouths to measure)."""
        for indices, frames, faces, patches in batches:
            crops = []
            for index, frame, face, patch in zip(indices, frames, faces, patches):
                frame = self._finish_frame(index, frame, face, patch, crops)
                with self.times.timed("encode"):
                    self.writer.write(frame)
            self.done += len(indices)
            yield self.done, crops

    def measure_batches(self, batches):
        """The sync meter's worker: landmarks of each output mouth, in frame order; yields frames done."""
        for done, crops in batches:
            if self.meter is not None:
                for index, crop in crops:
                    self.meter.measure(index, crop)
            yield done

    def _finish_frame(self, index: int, frame: np.ndarray, face: Optional[Face], patch, crops: list) -> np.ndarray:
        """One output frame, blended and ready to encode. Per-frame work on the finished picture goes here."""
        if face is not None:
            self.with_face += 1  # an engine may leave a face as it is (a closed mouth): it still counts and is scored
            if patch is not None:
                with self.times.timed("blend"):
                    frame = self.blend(frame, patch, face, inplace=self.inplace)
            if self.meter is not None:
                with self.times.timed("sync score"):  # a copy of the output face, measured in the next stage
                    crops.append((index, self.meter.cut(frame, face)))
        if self.marker is not None:
            # every frame with the face carries the video mark (a closed mouth left as it was is still part of a
            # made performance); frames without the face pass unmarked
            with self.times.timed("mark"):
                frame = self.marker.mark(frame, face)
        return frame


class _InThread:
    """``fn()`` run in a daemon thread; :meth:`result` waits for it and returns its value or raises its error.
    The time it ran is added to ``times`` under ``key`` (it overlaps other work)."""

    def __init__(self, fn, times: StageTimes, key: str):
        import threading

        self._value, self._error = None, None

        def run():
            try:
                with times.timed(key):
                    self._value = fn()
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread by result()
                self._error = e

        self._thread = threading.Thread(target=run, name=f"studio-{key}", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


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
