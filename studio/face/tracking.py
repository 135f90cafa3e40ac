"""Face detection backends and the streaming tracker.

A backend finds every face in one frame (landmarks in pixels). The tracker follows one person through a video:
it picks the face (largest, by index or by point), keeps following the same person (nearest to the previous
box, not whichever is largest now), smooths the landmarks with a One-Euro filter (low lag when the head moves,
steady when it does not), derives the padded box from them, and yields None for frames without that face.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Optional, Protocol

import numpy as np

from ..errors import MissingDependencyError
from ..log import get_logger, quiet_native_stderr
from ..progress import Progress
from ..registry import Registry
from ..types import Face
from .landmarks import box_from_landmarks

log = get_logger("face")

# Wav2Lip pads the box 10 px below the chin; we pad by a fraction of the face height so it scales with size.
DEFAULT_PAD = (0.0, 0.08, 0.0, 0.0)  # top, bottom, left, right


class FaceDetector(Protocol):
    scheme: str

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """All faces in an RGB image as (N, 2) float32 pixel landmark arrays."""

    def close(self) -> None: ...


TRACKERS: Registry[FaceDetector] = Registry("face tracker")


class MediapipeDetector:
    """mediapipe's face mesh (478 points with refined lips and irises). Models ship inside mediapipe 0.10.21."""

    scheme = "mediapipe478"

    def __init__(self, video: bool = True, max_faces: int = 4):
        # mediapipe's C++ logging writes warnings to stderr unless told otherwise
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import mediapipe as mp
        except ImportError:
            raise MissingDependencyError(
                "mediapipe is not installed; run `make setup` (it installs mediapipe==0.10.21 without its "
                "numpy<2 pin)"
            ) from None
        self._mp, self._max_faces, self._video = mp, max_faces, video
        # static_image_mode=False lets mediapipe track between frames instead of detecting every frame
        self._mesh = self._new_mesh(static=not video)
        self._static = None  # a second, still-image mesh for the tiled search (created when first needed)

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        return self.detect_whole(image) or self._tiled(image)

    def detect_whole(self, image: np.ndarray) -> list[np.ndarray]:
        """The faces the (tracking) mesh finds in the whole frame, without the tiled search."""
        try:
            return self._run(self._mesh, image)
        except RuntimeError as e:  # mediapipe's graph fails on some degenerate detections: start it afresh
            log.debug("face mesh failed (%s); restarting it", e)
            _close_mesh(self._mesh)  # a graph left open keeps its memory for the life of the process
            self._mesh = self._new_mesh(static=not self._video)
            return []

    def detect_search(self, image: np.ndarray) -> list[np.ndarray]:
        """The tiled search alone (small faces in a large or wide frame)."""
        return self._tiled(image)

    def detect_near(self, image: np.ndarray, landmarks: np.ndarray) -> list[np.ndarray]:
        """Faces in one square crop around where ``landmarks`` were (twice their size): the cheap way to find
        a face the whole-frame mesh lost again, one mesh run instead of a tiled search."""
        h, w = image.shape[:2]
        (x1, y1), (x2, y2) = landmarks.min(axis=0), landmarks.max(axis=0)
        side = int(min(min(h, w), max(64.0, 2 * max(x2 - x1, y2 - y1))))
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        x0 = int(np.clip(round(cx - side / 2), 0, w - side))
        y0 = int(np.clip(round(cy - side / 2), 0, h - side))
        if self._static is None:
            self._static = self._new_mesh(static=True)
        try:
            found = self._run(self._static, image[y0:y0 + side, x0:x0 + side])
        except RuntimeError:
            _close_mesh(self._static)
            self._static = None
            return []
        return [lm + np.array([x0, y0], np.float32) for lm in found]

    def _new_mesh(self, static: bool):
        with quiet_native_stderr:
            mesh = self._mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static, max_num_faces=self._max_faces, refine_landmarks=True,
                min_detection_confidence=0.5, min_tracking_confidence=0.5)
            # the graph's calculators start on worker threads and log as they do: one blank frame waits for them
            # while stderr is still quiet (a blank frame has no face, so it leaves no tracking state)
            mesh.process(np.zeros((64, 64, 3), np.uint8))
        return mesh

    @staticmethod
    def _run(mesh, image: np.ndarray) -> list[np.ndarray]:
        h, w = image.shape[:2]
        with quiet_native_stderr:  # its C++ warnings would land inside the progress bars (shown with -v)
            result = mesh.process(np.ascontiguousarray(image))
        return [np.array([(p.x * w, p.y * h) for p in lm.landmark], dtype=np.float32)
                for lm in result.multi_face_landmarks or []]

    def _tiled(self, image: np.ndarray) -> list[np.ndarray]:
        """mediapipe's short-range detector misses faces that are small in a wide or large frame: look again in
        overlapping square tiles (only when the whole frame found nothing) and keep each face once."""
        h, w = image.shape[:2]
        side = min(h, w)
        sizes = [side] + ([side // 2] if side >= 480 else [])
        if max(h, w) < 1.3 * side and len(sizes) == 1:
            return []
        found: list[np.ndarray] = []
        for size in sizes:
            step = max(1, size // 2)
            for y in sorted(set(list(range(0, h - size + 1, step)) + [h - size])):
                for x in sorted(set(list(range(0, w - size + 1, step)) + [w - size])):
                    if self._static is None:
                        self._static = self._new_mesh(static=True)
                    try:
                        tile_faces = self._run(self._static, image[y:y + size, x:x + size])
                    except RuntimeError:
                        _close_mesh(self._static)
                        self._static = None  # broken graph: a fresh one for the next tile
                        continue
                    for lm in tile_faces:
                        lm = lm + np.array([x, y], np.float32)
                        size_lm = np.sqrt(_area(lm))
                        if all(np.linalg.norm(lm.mean(0) - f.mean(0)) > 0.5 * size_lm for f in found):
                            found.append(lm)
        return found

    def close(self) -> None:
        for mesh in (self._mesh, self._static):
            _close_mesh(mesh)
        self._mesh = self._static = None


def _close_mesh(mesh) -> None:
    if mesh is None:
        return
    try:
        with quiet_native_stderr:
            mesh.close()
    except (RuntimeError, ValueError):  # a graph that already failed (or closed) reports it again on close
        pass


FACE_ALIGNMENT_WEIGHTS = ("s3fd-619a316812.pth", "2DFAN4-cd938726ad.zip")


def _torch_hub_checkpoints() -> Path:
    hub = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return Path(hub) / "hub" / "checkpoints"


def face_alignment_available() -> bool:
    try:
        import face_alignment  # noqa: F401
    except ImportError:
        return False
    return all((_torch_hub_checkpoints() / name).exists() for name in FACE_ALIGNMENT_WEIGHTS)


class FaceAlignmentDetector:
    """face-alignment (S3FD detector + FAN, 68 points). Used only when its weights are already cached:
    they cannot be downloaded offline."""

    scheme = "ibug68"

    def __init__(self, device: str = "cpu"):
        try:
            import face_alignment
        except ImportError:
            raise MissingDependencyError(
                "the face-alignment tracker needs the face-alignment package: pip install face-alignment"
            ) from None
        missing = [n for n in FACE_ALIGNMENT_WEIGHTS if not (_torch_hub_checkpoints() / n).exists()]
        if missing:
            raise MissingDependencyError(
                f"the face-alignment tracker needs its weights {', '.join(missing)} in {_torch_hub_checkpoints()} "
                "(face-alignment downloads them on first use with internet access; copy them there from a machine "
                "that has them), or use --tracker mediapipe, which ships its models"
            )
        self._fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=device)

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        found = self._fa.get_landmarks_from_image(image) or []
        return [np.asarray(f, dtype=np.float32)[:, :2] for f in found]

    def close(self) -> None:
        pass


TRACKERS.register("mediapipe", "mediapipe face mesh, 478 landmarks (bundled models)")(MediapipeDetector)
TRACKERS.register("face-alignment", "S3FD + FAN, 68 landmarks (needs cached weights)",
                  available=face_alignment_available)(FaceAlignmentDetector)


class OneEuroFilter:
    """The One-Euro filter (Casiez et al. 2012): an adaptive low-pass whose cut-off rises with speed, so
    still faces are steady and moving faces are followed without lag. Works on arrays of any shape."""

    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.rate, self.min_cutoff, self.beta, self.d_cutoff = fps, min_cutoff, beta, d_cutoff
        self.x: Optional[np.ndarray] = None
        self.dx: Optional[np.ndarray] = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * self.rate)

    def reset(self) -> None:
        self.x = self.dx = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self.x) * self.rate
        a_d = self._alpha(self.d_cutoff)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = self._alpha(cutoff)
        self.x = a * x + (1 - a) * self.x
        return self.x.copy()


def _face_from_landmarks(lm: np.ndarray, shape, scheme: str, pad) -> Face:
    return Face(box=box_from_landmarks(lm, shape, pad), landmarks=lm.astype(np.float32), scheme=scheme)


def _area(lm: np.ndarray) -> float:
    (x1, y1), (x2, y2) = lm.min(axis=0), lm.max(axis=0)
    return float((x2 - x1) * (y2 - y1))


def _choose(faces: list[np.ndarray], face_index: Optional[int], face_point) -> Optional[np.ndarray]:
    """The face to follow in a first frame: by point, by index (0 = largest) or the largest."""
    if not faces:
        return None
    ordered = sorted(faces, key=_area, reverse=True)
    if face_point is not None:
        x, y = face_point

        def dist(lm):
            (x1, y1), (x2, y2) = lm.min(axis=0), lm.max(axis=0)
            inside = x1 <= x <= x2 and y1 <= y <= y2
            return (0 if inside else 1, (x - (x1 + x2) / 2) ** 2 + (y - (y1 + y2) / 2) ** 2)

        return min(ordered, key=dist)
    index = face_index or 0
    if index >= len(ordered):
        return None
    return ordered[index]


def _nearest(faces: list[np.ndarray], previous: np.ndarray) -> Optional[np.ndarray]:
    """The face closest to the previous one, if it is plausibly the same person (moved less than a face)."""
    if not faces:
        return None
    prev_c, prev_size = previous.mean(axis=0), np.sqrt(_area(previous))
    best = min(faces, key=lambda lm: float(np.linalg.norm(lm.mean(axis=0) - prev_c)))
    return best if np.linalg.norm(best.mean(axis=0) - prev_c) < prev_size else None


def detect_faces(image: np.ndarray, tracker: str = "mediapipe", pad=DEFAULT_PAD) -> list[Face]:
    """Every face in one RGB image, largest first."""
    detector = _create(tracker, video=False)
    try:
        found = detector.detect(image)
    finally:
        detector.close()
    found.sort(key=_area, reverse=True)
    return [_face_from_landmarks(lm, image.shape, detector.scheme, pad) for lm in found]


def _create(tracker: str, video: bool) -> FaceDetector:
    if tracker == "mediapipe":
        return TRACKERS.create(tracker, video=video)
    return TRACKERS.create(tracker)


SEARCH_EVERY = 12  # frames between two tiled searches while no face is found (about half a second)


class FaceSmoother:
    """One-Euro smoothing of a followed face's raw landmarks, frame by frame (None where the face is missing),
    started afresh after a gap of more than two frames. Two smoothers can follow the same raw landmarks (e.g.
    the visemes study's unsmoothed timing truth and the render's steady faces from one tracking pass)."""

    def __init__(self, fps: float, scheme: str, *, pad=DEFAULT_PAD, min_cutoff: float = 1.0, beta: float = 0.05):
        self.filter = OneEuroFilter(fps, min_cutoff=min_cutoff, beta=beta)
        self.scheme, self.pad = scheme, pad
        self.missing = 0

    def __call__(self, lm: Optional[np.ndarray], shape) -> Optional[Face]:
        if lm is None:
            self.missing += 1
            if self.missing > 2:  # after a real gap, start the filter afresh (no slide from the old position)
                self.filter.reset()
            return None
        self.missing = 0
        return _face_from_landmarks(self.filter(lm).astype(np.float32), shape, self.scheme, self.pad)


class FaceTracker:
    """Follows one face through frames given one at a time (:meth:`update`); see :func:`track_frames`."""

    def __init__(self, fps: float, *, tracker: str = "mediapipe", face_index: Optional[int] = None,
                 face_point: Optional[tuple[float, float]] = None, pad=DEFAULT_PAD, min_cutoff: float = 1.0,
                 beta: float = 0.05):
        self.fps, self.face_index, self.face_point, self.pad = fps, face_index, face_point, pad
        self.detector = _create(tracker, video=True)
        self.smoother = FaceSmoother(fps, self.detector.scheme, pad=pad, min_cutoff=min_cutoff, beta=beta)
        self.previous: Optional[np.ndarray] = None
        self.missing = 0
        self.index = -1  # frames seen
        self.last_search: Optional[int] = None  # the frame of the last tiled search

    def _detect(self, frame: np.ndarray) -> list[np.ndarray]:
        """Every face in the frame, searching only as hard as needed. The mesh in video mode already follows
        the face from the previous frame's landmarks (its detector runs only when it lost the face). When the
        whole frame gives nothing: look around where the followed face was (one mesh run), and run the tiled
        search (up to 21 mesh runs on a 1080p frame) at most every ``SEARCH_EVERY`` frames, so frames without
        a face (a cut-away) no longer cost a full search each."""
        detector = self.detector
        if not hasattr(detector, "detect_whole"):
            return detector.detect(frame)
        self.index += 1
        faces = detector.detect_whole(frame)
        if faces:
            return faces
        if self.previous is not None and self.missing <= int(self.fps):
            faces = detector.detect_near(frame, self.previous)
            if faces:
                return faces
        if self.last_search is None or self.index - self.last_search >= SEARCH_EVERY:
            self.last_search = self.index
            return detector.detect_search(frame)
        return []

    def update(self, frame: np.ndarray) -> Optional[Face]:
        """The followed face in the next frame, or None when it is not there."""
        return self.smoother(self.follow(frame), frame.shape)

    def follow(self, frame: np.ndarray) -> Optional[np.ndarray]:
        """The followed face's raw (unsmoothed) landmarks in the next frame, or None. :meth:`update` is this
        through ``self.smoother``; call one or the other for a given tracker, never both on the same frame."""
        faces = self._detect(frame)
        if self.previous is None:
            lm = _choose(faces, self.face_index, self.face_point)
        else:
            lm = _nearest(faces, self.previous)
            if lm is None and self.missing > int(self.fps):  # lost for over a second: pick again by the rule
                lm = _choose(faces, self.face_index, self.face_point)
        if lm is None:
            self.missing += 1
            return None
        self.missing = 0
        self.previous = lm
        return lm

    def close(self) -> None:
        """Idempotent: a tracker handed from one stage to another may be closed by both."""
        if self.detector is not None:
            detector, self.detector = self.detector, None
            detector.close()

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track_frames(
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    tracker: str = "mediapipe",
    face_index: Optional[int] = None,
    face_point: Optional[tuple[float, float]] = None,
    pad=DEFAULT_PAD,
    progress: Progress | None = None,
    min_cutoff: float = 1.0,
    beta: float = 0.05,
) -> Iterator[Optional[Face]]:
    """Follow one face through a stream of frames; yields one Face (or None) per frame, streaming."""
    progress = Progress.of(progress)
    with FaceTracker(fps, tracker=tracker, face_index=face_index, face_point=face_point, pad=pad,
                     min_cutoff=min_cutoff, beta=beta) as follow:
        for i, frame in enumerate(frames):
            yield follow.update(frame)
            if i % 25 == 0:
                progress.update("tracking", i + 1, None)


def track_with_frames(frames: Iterable[np.ndarray], fps: float, **kwargs) -> Iterator[tuple[np.ndarray, Optional[Face]]]:
    """Like :func:`track_frames` but yields (frame, face) pairs; the tracker is streaming, so a short queue of
    decoded frames is all that is held."""
    from collections import deque

    pending: deque = deque()

    def source():
        for frame in frames:
            pending.append(frame)
            yield frame

    for face in track_frames(source(), fps, **kwargs):
        yield pending.popleft(), face
