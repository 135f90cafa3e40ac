"""The person's own mouths, taken from their footage (in the spirit of Video Rewrite, Bregler et al. 1997).

Every tracked frame of the footage gives one exemplar: the lower face warped into a canonical frame by a
similarity transform fitted to landmarks that do not move with the mouth (eye corners, nose), plus the mouth's
opening and width (face-mesh, inter-ocular units) and the head's yaw. At render time the exemplar whose mouth
best matches the wanted opening and width (and the current head pose) is chosen, preferring to continue the
footage's own sequence (real motion between neighbouring frames), warped onto the current frame's face with the
inverse of that frame's transform, and blended like any engine's patch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..face.landmarks import indices, inter_ocular, mouth_opening, mouth_width, normalise_landmarks
from ..types import Face, Patch

# eye corners, nose bridge and nose: points the jaw and lips do not move
STABLE = {"mediapipe478": [33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 2, 98, 327],
          "ibug68": [36, 39, 42, 45, 27, 28, 29, 30, 31, 33, 35]}
# The canonical crop keeps about the footage's own resolution (inter-ocular distance in pixels, within these
# bounds): a crop much smaller than the face would blur the pasted mouth, a much larger one costs memory.
MIN_UNIT, MAX_UNIT = 40.0, 80.0
CROP_W, CROP_H = 2.43, 1.86  # crop size in inter-ocular units
MIN_EXEMPLARS = 25


def crop_size(unit: float) -> tuple[int, int]:
    return int(round(CROP_W * unit)), int(round(CROP_H * unit))


def _canonical(lm: np.ndarray, scheme: str, unit: float) -> np.ndarray:
    """Where a face's stable points sit in the crop: the eye line half an inter-ocular distance above the crop's
    top, centred horizontally, so the crop spans from about the nose tip to below a dropped chin."""
    norm = normalise_landmarks(lm, scheme)[STABLE[scheme]]
    return (norm * unit + np.array([CROP_W * unit / 2, -0.5 * unit], np.float32)).astype(np.float32)


def to_canonical(lm: np.ndarray, scheme: str, canon: np.ndarray) -> Optional[np.ndarray]:
    """2x3 similarity transform from frame pixels to the canonical crop, fitted on the stable points."""
    import cv2

    m, _ = cv2.estimateAffinePartial2D(lm[STABLE[scheme]].astype(np.float32), canon, method=cv2.LMEDS)
    return m


def yaw(lm: np.ndarray, scheme: str) -> float:
    """Head turn proxy: the nose tip's sideways offset from the eyes' midpoint, in inter-ocular units."""
    return float(normalise_landmarks(lm, scheme)[indices(scheme, "nose_tip")[0], 0])


def mouth_shape(lm: np.ndarray, scheme: str) -> np.ndarray:
    return np.array([mouth_opening(lm, scheme), mouth_width(lm, scheme)], np.float32)


class PngCrops:
    """Exemplar crops kept PNG-compressed: lossless (``crops[k]`` decodes exemplar k to exactly the array that was
    stored), about 0.4 of the raw size on faces, so the library's memory grows less than half as fast with the
    footage (60 s of GRID at 360p: 124 -> ~51 MB). Decoding one costs well under a millisecond."""

    def __init__(self, blobs: list, shape: tuple):
        self._blobs, self.shape = blobs, (len(blobs),) + tuple(shape)

    def __len__(self) -> int:
        return len(self._blobs)

    def __getitem__(self, k: int) -> np.ndarray:
        import cv2

        return cv2.imdecode(self._blobs[k], cv2.IMREAD_UNCHANGED)

    @property
    def nbytes(self) -> int:
        return int(sum(b.nbytes for b in self._blobs))


def _png(crop: np.ndarray) -> np.ndarray:
    import cv2

    ok, blob = cv2.imencode(".png", crop, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("could not compress an exemplar crop")
    return blob


@dataclass
class MouthLibrary:
    crops: "np.ndarray | PngCrops"  # (N, h, w, 3) uint8 canonical lower faces (see crop_size); crops[k] is one
    shapes: np.ndarray  # (N, 2) opening, width
    yaws: np.ndarray  # (N,)
    frames: np.ndarray  # (N,) frame number in the footage (continuity)
    canon: np.ndarray  # (S, 2) canonical stable points
    scheme: str
    unit: float  # canonical inter-ocular distance, pixels

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def usable(self) -> bool:
        """Enough exemplars, and the mouth both closes and opens in them."""
        if len(self) < MIN_EXEMPLARS:
            return False
        lo, hi = np.percentile(self.shapes[:, 0], [10, 95])
        return hi - lo > 0.06

    @property
    def closed_level(self) -> float:
        """Openings below this count as a closed mouth for this person."""
        return float(np.percentile(self.shapes[:, 0], 5)) + 0.03


MAX_LIBRARY_BYTES = 160 * 2**20  # the crops' memory bound (1800 crops at the largest unit fit in it)


class LibraryBuilder:
    """Collects exemplars frame by frame (streaming: no frame is kept beyond its crop). At most ``max_exemplars``
    crops and ``MAX_LIBRARY_BYTES`` of them (uncompressed). Each crop is PNG-compressed (``PngCrops``) in a worker
    thread, alongside the tracking that feeds the builder."""

    def __init__(self, max_exemplars: int = 1800):
        self.max = max_exemplars
        self._pool = None
        self.crops, self.shapes, self.yaws, self.frames = [], [], [], []
        self.canon: Optional[np.ndarray] = None
        self.scheme = "mediapipe478"
        self.unit = MIN_UNIT

    def add(self, frame: np.ndarray, face: Optional[Face], index: int) -> None:
        import cv2

        if face is None or len(self.crops) >= self.max:
            return
        lm = face.landmarks
        if self.canon is None:
            self.unit = float(np.clip(inter_ocular(lm, face.scheme), MIN_UNIT, MAX_UNIT))
            self.canon, self.scheme = _canonical(lm, face.scheme, self.unit), face.scheme
            w, h = crop_size(self.unit)
            self.max = max(1, min(self.max, MAX_LIBRARY_BYTES // (w * h * 3)))
        m = to_canonical(lm, face.scheme, self.canon)
        if m is None:
            return
        crop = cv2.warpAffine(frame, m, crop_size(self.unit), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-exemplars")
        self.crops.append(self._pool.submit(_png, crop))
        self.shapes.append(mouth_shape(lm, face.scheme))
        self.yaws.append(yaw(lm, face.scheme))
        self.frames.append(index)

    def close(self) -> None:
        """End the compression worker (build() does; call it when giving up before build)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def build(self) -> MouthLibrary:
        n = len(self.crops)
        w, h = crop_size(self.unit)
        try:
            blobs = [f.result() for f in self.crops]
        finally:
            self.close()
        return MouthLibrary(
            crops=PngCrops(blobs, (h, w, 3)),
            shapes=np.array(self.shapes, np.float32).reshape(n, 2), yaws=np.array(self.yaws, np.float32),
            frames=np.array(self.frames), canon=self.canon if self.canon is not None else np.zeros((0, 2)),
            scheme=self.scheme, unit=self.unit)


class ExemplarPicker:
    """Choice of exemplars for a run of frames by dynamic programming (Viterbi), as in Video Rewrite: each frame
    pays for the distance between its exemplar's mouth and the wanted shape (and for a head pose unlike the
    current one); consecutive frames pay for a visual jump between exemplars, nothing for continuing the
    footage's own sequence and little for holding a frame. So the mouth follows the wanted shapes with the real
    motion of the footage, without the flicker of a frame-by-frame best match or the lag of a greedy one that
    cannot see the next frames. Runs are planned a batch at a time, each continuing from the last choice."""

    def __init__(self, library: MouthLibrary, jump_cost: float = 0.2, pose_weight: float = 10.0,
                 candidates: int = 40, shape_jump_weight: float = 0.05):
        self.lib = library
        self.scale = np.maximum(library.shapes.std(0), 1e-3) * np.array([1.0, 1.6], np.float32)  # width counts less
        self.jump_cost, self.pose_weight = jump_cost, pose_weight
        self.candidates, self.shape_jump_weight = candidates, shape_jump_weight
        n = len(library)
        # the exemplar that follows k in the footage (-1: none), for the free "continue the sequence" move
        self.next = np.full(n, -1)
        if n > 1:
            cont = library.frames[1:] == library.frames[:-1] + 1
            self.next[:-1][cont] = np.arange(1, n)[cont]
        self.prev: Optional[int] = None
        self.prev_t: Optional[int] = None

    def unary(self, target: np.ndarray, face_yaw: float) -> np.ndarray:
        lib = self.lib
        return (((lib.shapes - target) / self.scale) ** 2).sum(1) + self.pose_weight * (lib.yaws - face_yaw) ** 2

    def transition(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(len(a), len(b)) cost of exemplar b right after exemplar a."""
        d = (((self.lib.shapes[a][:, None] - self.lib.shapes[b][None]) / self.scale) ** 2).sum(-1)
        cost = self.jump_cost + self.shape_jump_weight * d
        cost = np.where(a[:, None] == b[None], 0.5 * self.jump_cost, cost)
        return np.where(self.next[a][:, None] == b[None], 0.0, cost).astype(np.float32)

    def plan(self, targets: np.ndarray, yaws: np.ndarray, t0: int) -> list[int]:
        """Exemplars for frames t0, t0+1, ... (wanted shapes ``targets`` (T, 2), head yaws (T,)), continuing from
        the previous plan when it ended at frame t0 - 1."""
        if len(targets) == 0:
            return []
        keep = min(self.candidates, len(self.lib))
        cands, costs = [], []
        for target, face_yaw in zip(targets, yaws):
            u = self.unary(np.asarray(target, np.float32), float(face_yaw))
            c = np.argpartition(u, keep - 1)[:keep]
            cands.append(c)
            costs.append(u[c].astype(np.float32))
        total = costs[0].copy()
        if self.prev is not None and self.prev_t == t0 - 1:
            total += self.transition(np.array([self.prev]), cands[0])[0]
        back = []
        for t in range(1, len(targets)):
            step = total[:, None] + self.transition(cands[t - 1], cands[t])
            back.append(np.argmin(step, 0))
            total = step.min(0) + costs[t]
        k = int(np.argmin(total))
        path = [k]
        for b in reversed(back):
            k = int(b[k])
            path.append(k)
        chosen = [int(c[i]) for c, i in zip(cands, reversed(path))]
        self.prev, self.prev_t = chosen[-1], t0 + len(chosen) - 1
        return chosen

    def pick(self, target: np.ndarray, face_yaw: float, t: int) -> int:
        """One frame (a plan of length one)."""
        return self.plan(np.asarray(target, np.float32)[None], np.array([face_yaw]), t)[0]


def mouth_mask(library: MouthLibrary) -> np.ndarray:
    """Soft canonical mask over the lips, the chin below them and the cheeks beside them (float32)."""
    import cv2

    u = library.unit
    w, h = crop_size(u)
    mask = np.zeros((h, w), np.float32)
    centre = (w // 2, int(0.68 * u))  # the mouth sits about 1.05 inter-ocular distances below the eyes
    # narrower than the jaw: an exemplar's jaw or cheek edge from another head pose would show doubled
    cv2.ellipse(mask, centre, (int(0.66 * u), int(0.7 * u)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), 0.12 * u)


def paste(frame: np.ndarray, face: Face, library: MouthLibrary, k: int, mask: np.ndarray) -> Optional[Patch]:
    """Exemplar k warped onto this frame's face: a Patch over the lower face with the mouth mask."""
    import cv2

    m = to_canonical(face.landmarks, face.scheme, library.canon)
    if m is None:
        return None
    inv = cv2.invertAffineTransform(m)
    cw, ch = crop_size(library.unit)
    corners = np.array([[0, 0, 1], [cw, 0, 1], [0, ch, 1], [cw, ch, 1]], np.float32) @ inv.T
    h, w = frame.shape[:2]
    x1, y1 = np.floor(corners.min(0)).astype(int)
    x2, y2 = np.ceil(corners.max(0)).astype(int)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return None
    shift = inv.copy()
    shift[:, 2] -= (x1, y1)
    size = (x2 - x1, y2 - y1)
    image = cv2.warpAffine(library.crops[k], shift, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    soft = cv2.warpAffine(mask, shift, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return Patch(box=(int(x1), int(y1), int(x2), int(y2)), image=image, mask=soft.astype(np.float32))
