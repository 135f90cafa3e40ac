"""The video mark: an invisible signature in the face region the studio changed, in every rendered frame.

What it carries (40 bits): an 8-bit magic that says "made with studio" (mark format version 1), the first 24 bits
of the render's job id (the 6 first hex digits of the provenance record's ``job_id``) and a CRC-8 over both.

How (measured first in ``benchmarks/video_mark.py``): the region a lip-sync changes is known in face-aligned
coordinates, and the face is found again after scaling or cropping, so the mark lives in a 128 x 128 canonical crop
of the face. Each frame's face is aligned to the crop by a similarity transform fitted to landmarks that a lip-sync
does not move (eye corners, nose bridge and tip, the face's sides at eye level); 40 fixed patterns (a fixed seed:
the same for every installation) inside a feathered lower-face ellipse carry the bits; their signed sum is warped
back to the frame and added to its luma (the same amount on R, G and B). The patterns are random +-1 blocks,
high-passed and masked the way detection sees them, then made orthonormal, so that all of the mark's energy reaches
the detector and no bit's estimate is disturbed by the others'. The sign of the whole mark flips every ``PERIOD``
frames, so that the face's own texture, which does not flip, cancels out in detection.

Detection re-tracks the face with the studio's tracker, aligns each frame the same way, high-passes the crop's
luma and projects it on the patterns by weighted least squares: in stretches of ``WINDOW`` frames, pixels where the
face itself changes from frame to frame (lips, jaw) weigh less than still ones (cheeks, chin). Every frame carries
the whole payload, so any trimmed part decodes; frames are accumulated in windows of ``WINDOW`` frames (each window
finds its own flip phase, so trimmed, cut or concatenated pieces decode), windows are summed, and the bits are the
signs. When the magic or the CRC fails, up to ``CHASE_FLIPS`` of the ``CHASE_WEAKEST`` least reliable bits are
flipped (Chase decoding, the least costly valid word wins). A mark is *found* when the magic and the CRC match and
the confidence (mean |z| of the bits) reaches ``FOUND_THRESHOLD``, set above everything unmarked real media scored
(``benchmarks/trust.py``).

Why a 1 s excerpt of a small face was missed by the first version (random blocks, unweighted detection): its 30
frames gave the right bits (0.93-0.95) but a confidence of 2.2-2.8, under the threshold: each frame's estimate was
too noisy (per-frame signal-to-noise 0.35-0.5), because 72 % of the mark's energy was shading that detection
removes, the random patterns' cross-talk tripled the noise, and the moving mouth counted as much as the still
cheeks. With the orthonormal patterns and the weighting, the same excerpts score 5.8-9.6 at ~1 dB less energy.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from ..log import get_logger

log = get_logger("trust.video")

SIZE = 128  # canonical crop side
BLOCKS = 20  # pattern blocks per side (6.4 px blocks in the crop: finer ones lose less to the face's own motion)
MAGIC = 0xB5  # "made with studio", mark format 1
MAGIC_BITS, JOB_BITS, CRC_BITS = 8, 24, 8
BITS = MAGIC_BITS + JOB_BITS + CRC_BITS
ENERGY_PER_BIT = 1750.0  # each pattern's energy (squared grey levels summed over the crop): face box PSNR ~40.5 dB
PATTERN_BLUR = 1.2  # the blocks' smoothing (canonical pixels)
MASK_CENTRE, MASK_AXES = (60, 93), (44, 33)  # the feathered lower-face ellipse the mark lives in (canonical pixels)
PERIOD = 4  # the mark's sign flips every PERIOD frames
WINDOW = 50  # frames per detection window (each window finds its own flip phase)
SEED = 17
HP_SIGMA = 4.0  # detection's high-pass (canonical pixels): removes the face's smooth shading
NOISE_SMOOTH = 4.0  # detection: the map of where the face itself changes is smoothed this much (canonical pixels)
FOUND_THRESHOLD = 3.0  # mean |z| of the bits; unmarked real media: see benchmarks/results/trust.json
MAX_FRAMES = 300  # frames read by read_video_mark unless told otherwise (12 s at 25 fps)

# landmarks a lip-sync does not move, and where they go in the canonical crop (the mean GRID / faces-dev face,
# made symmetric; eyes level at y = 44)
STABLE = {
    "mediapipe478": [33, 133, 362, 263, 168, 6, 1, 234, 454],  # eye corners, bridge, nose, face sides
    "ibug68": [36, 39, 42, 45, 27, 28, 30, 0, 16],
}
TEMPLATE = np.float32([[31, 44], [49, 44.5], [71, 44.5], [89, 44], [60, 41.3], [60, 47.2], [60, 74],
                       [14, 57.5], [106, 57.5]])


# ---- the fixed patterns -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Patterns:
    signal_basis: np.ndarray  # (BITS, SIZE, SIZE) the patterns as embedded (grey levels for a +1 bit)
    seen: np.ndarray  # (BITS, h*w) what detection sees of them (high-passed, masked) inside ``support``
    mask: np.ndarray  # (SIZE, SIZE) feathered lower-face ellipse
    support: tuple  # (x1, y1, x2, y2) of the mask in the crop
    decoder: np.ndarray  # (BITS, h*w) least-squares projection with every pixel weighted alike


_lock = threading.Lock()
_cached: Optional[_Patterns] = None


def _highpass(img: np.ndarray) -> np.ndarray:
    import cv2

    return img - cv2.GaussianBlur(img, (0, 0), HP_SIGMA)


def patterns() -> _Patterns:
    """The 40 fixed patterns. Random +-1 blocks (smoothed) are high-passed and masked the way detection will see
    them, then made orthonormal (QR): no energy goes into shading that detection removes (the first version spent
    72 % of the mark's energy there), and no bit's estimate is widened by the others' cross-talk (3.2x the noise
    variance with plain random blocks), so the same detection margin costs a quarter of the energy."""
    global _cached
    with _lock:
        if _cached is not None:
            return _cached
        import cv2

        rng = np.random.default_rng(SEED)
        yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
        (cx, cy), (ax, ay) = MASK_CENTRE, MASK_AXES
        mask = (((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1).astype(np.float32)
        mask = cv2.GaussianBlur(mask, (0, 0), 5)
        ys, xs = np.nonzero(mask > 0.01)
        support = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        kept = []
        for _ in range(BITS):
            blocks = rng.choice([-1.0, 1.0], size=(BLOCKS, BLOCKS)).astype(np.float32)
            p = cv2.resize(blocks, (SIZE, SIZE), interpolation=cv2.INTER_NEAREST)
            p = cv2.GaussianBlur(p, (0, 0), PATTERN_BLUR)
            kept.append((_highpass(p) * mask).reshape(-1))
        q, _ = np.linalg.qr(np.stack(kept).astype(np.float64).T)  # (SIZE*SIZE, BITS), orthonormal columns
        basis = (q.T * np.sqrt(ENERGY_PER_BIT)).reshape(BITS, SIZE, SIZE).astype(np.float32)
        x1, y1, x2, y2 = support
        seen = np.stack([(_highpass(p) * mask)[y1:y2, x1:x2] for p in basis]).reshape(BITS, -1).astype(np.float64)
        decoder = np.linalg.solve(seen @ seen.T, seen)
        _cached = _Patterns(basis, seen, mask, support, decoder.astype(np.float32))
        return _cached


# ---- payload ------------------------------------------------------------------------------------------------
def crc8(value: int, nbits: int) -> int:
    """CRC-8 (polynomial 0x07) over the ``nbits`` low bits of ``value``, most significant first."""
    crc = 0
    for i in reversed(range(nbits)):
        bit = (value >> i) & 1
        top = (crc >> 7) & 1
        crc = (crc << 1) & 0xFF
        if top ^ bit:
            crc ^= 0x07
    return crc


def job_number(job_id: str) -> int:
    """The 24 bits of ``job_id`` the mark carries: its first 6 hex digits."""
    return int(str(job_id)[:6], 16)


def payload_bits(job_id: str) -> np.ndarray:
    """The 40 bits (+-1) for ``job_id``: magic, 24 job bits, CRC-8."""
    data = (MAGIC << JOB_BITS) | job_number(job_id)
    word = (data << CRC_BITS) | crc8(data, MAGIC_BITS + JOB_BITS)
    return np.array([1.0 if (word >> (BITS - 1 - i)) & 1 else -1.0 for i in range(BITS)], np.float32)


def parse_bits(bits: np.ndarray) -> tuple[bool, bool, Optional[str]]:
    """(magic matches, CRC matches, job hex prefix) of 40 decoded +-1 bits."""
    word = 0
    for b in bits:
        word = (word << 1) | (1 if b > 0 else 0)
    data, crc = word >> CRC_BITS, word & 0xFF
    magic_ok = (data >> JOB_BITS) == MAGIC
    crc_ok = crc8(data, MAGIC_BITS + JOB_BITS) == crc
    return magic_ok, crc_ok, f"{data & ((1 << JOB_BITS) - 1):06x}"


# ---- alignment ----------------------------------------------------------------------------------------------
def alignment(face) -> Optional[np.ndarray]:
    """2x3 similarity transform taking frame pixels to the canonical crop (least squares on the stable points)."""
    idx = STABLE.get(getattr(face, "scheme", "mediapipe478"))
    lm = np.asarray(face.landmarks, np.float64)
    if idx is None or len(lm) <= max(idx):
        return None
    src, dst = lm[idx], TEMPLATE.astype(np.float64)
    sm, dm = src.mean(0), dst.mean(0)
    s, d = src - sm, dst - dm
    # closed-form similarity (Umeyama without reflection): [a -b; b a]
    denom = float((s ** 2).sum())
    if denom < 1e-6:
        return None
    a = float((s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum()) / denom
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / denom
    m = np.array([[a, -b, 0.0], [b, a, 0.0]])
    m[:, 2] = dm - m[:, :2] @ sm
    return m


def temporal_sign(index: int) -> float:
    return 1.0 if (index // PERIOD) % 2 == 0 else -1.0


# ---- embedding ----------------------------------------------------------------------------------------------
class VideoMarker:
    """Marks the frames of one render, in order: ``frame = marker.mark(frame, face)`` for every frame (``face``
    None: the frame is left unmarked, only labelled). ``label=True`` draws a visible "AI-generated" label in the
    bottom-right corner of every frame."""

    def __init__(self, job_id: str, *, label: bool = False, enabled: bool = True):
        self.job_id = str(job_id)
        self.bits = payload_bits(self.job_id)
        self.label = label
        self.enabled = enabled
        self.index = 0
        self.marked = 0
        self._signal = None

    def signal(self) -> np.ndarray:
        if self._signal is None:
            p = patterns()
            self._signal = np.tensordot(self.bits, p.signal_basis, axes=1).astype(np.float32)
        return self._signal

    def mark(self, frame: np.ndarray, face=None) -> np.ndarray:
        index, self.index = self.index, self.index + 1
        if self.enabled and face is not None:
            m = alignment(face)
            if m is not None:
                frame = embed(frame, m, self.signal() * temporal_sign(index))
                self.marked += 1
        if self.label:
            frame = draw_label(frame)
        return frame


def embed(frame: np.ndarray, m: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """``frame`` plus the canonical-space ``signal`` (grey levels) on its luma, warped through the inverse of ``m``;
    only the region under the mask is touched (a copy of the frame is returned)."""
    import cv2

    h, w = frame.shape[:2]
    x1, y1, x2, y2 = patterns().support
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]], np.float64)
    pts = corners @ inv[:, :2].T + inv[:, 2]
    fx1, fy1 = np.floor(pts.min(0)).astype(int) - 1
    fx2, fy2 = np.ceil(pts.max(0)).astype(int) + 2
    fx1, fy1, fx2, fy2 = max(0, fx1), max(0, fy1), min(w, fx2), min(h, fy2)
    out = frame.copy()
    if fx2 <= fx1 or fy2 <= fy1:
        return out
    shifted = m.copy()
    shifted[:, 2] += m[:, :2] @ np.array([fx1, fy1], np.float64)  # ROI pixel -> canonical
    delta = cv2.warpAffine(signal, shifted, (fx2 - fx1, fy2 - fy1), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    roi = out[fy1:fy2, fx1:fx2].astype(np.int16)
    roi += np.rint(delta).astype(np.int16)[..., None]
    out[fy1:fy2, fx1:fx2] = np.clip(roi, 0, 255).astype(np.uint8)
    return out


LABEL_TEXT = "AI-generated"


def draw_label(frame: np.ndarray, text: str = LABEL_TEXT) -> np.ndarray:
    """A visible label in the bottom-right corner: white text on a half-transparent dark box, sized to the frame."""
    import cv2

    h, w = frame.shape[:2]
    scale = max(0.35, min(h, w) / 720.0)
    thick = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(3, int(round(6 * scale)))
    x2, y2 = w - pad, h - pad
    x1, y1 = max(0, x2 - tw - 2 * pad), max(0, y2 - th - base - 2 * pad)
    out = frame.copy()
    box = out[y1:y2, x1:x2]
    out[y1:y2, x1:x2] = (box.astype(np.uint16) * 2 // 5).astype(np.uint8)
    cv2.putText(out, text, (x1 + pad, y2 - pad - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                thick, cv2.LINE_AA)
    return out


# ---- detection ----------------------------------------------------------------------------------------------
def frame_view(frame: np.ndarray, face) -> Optional[np.ndarray]:
    """What detection looks at in one frame: the aligned crop's luma, high-passed and masked, inside the mask's
    support, divided by its own spread (so frames of different contrast count alike); flat (h*w,), or None."""
    import cv2

    m = alignment(face)
    if m is None:
        return None
    p = patterns()
    crop = cv2.warpAffine(frame, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    y = (crop[..., 0] * 0.299 + crop[..., 1] * 0.587 + crop[..., 2] * 0.114).astype(np.float32)
    x1, y1, x2, y2 = p.support
    hp = (_highpass(y) * p.mask)[y1:y2, x1:x2]
    spread = float(np.sqrt(np.sum(hp ** 2) / max(1.0, float(np.sum(p.mask ** 2)))))
    return (hp / (spread + 1e-3)).reshape(-1)


def frame_scores(frame: np.ndarray, face) -> Optional[np.ndarray]:
    """The 40 per-bit estimates of one frame with every pixel weighted alike, or None."""
    view = frame_view(frame, face)
    return None if view is None else patterns().decoder @ view


def _flip_phases(index: np.ndarray):
    """For each phase the mark's sign flips could have in these frames: (signs, centred signs, their sum of
    squares); phases under which the signs do not vary (too few frames) are left out."""
    for offset in range(PERIOD):
        s = np.array([temporal_sign(int(i) + offset) for i in index], np.float64)
        sc = s - s.mean()
        ss = float((sc ** 2).sum())
        if ss >= 1e-9:
            yield s, sc, ss


def _noise_weights(views: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per-pixel weights (h*w,) for a stretch of frames: where the face itself changes from frame to frame (the
    lips, a moving jaw) the mark is drowned, where it stays still (cheeks, chin) it is clear; weighting each pixel
    by 1/sqrt of its own variance (the mark's flipping part removed first, at its best phase) trusts the clear
    ones more."""
    import cv2

    p = patterns()
    x1, y1, x2, y2 = p.support
    x = views - views.mean(0)
    best = None
    for _, sc, ss in _flip_phases(index):
        b = (sc @ x) / ss
        energy = float(np.sum((p.decoder @ b) ** 2))
        if best is None or energy > best[0]:
            best = (energy, b, sc)
    var = (x ** 2).mean(0) if best is None else ((x - best[2][:, None] * best[1][None]) ** 2).mean(0)
    var = cv2.GaussianBlur(var.reshape(y2 - y1, x2 - x1).astype(np.float32), (0, 0), NOISE_SMOOTH).reshape(-1)
    w = 1.0 / np.sqrt(var + 0.05 * float(var.mean()) + 1e-9)
    return w / w.max()


def _weighted_scores(views: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per-frame bit estimates (n, BITS) of a stretch of frames, by least squares weighted with _noise_weights."""
    p = patterns()
    if len(views) < 2 * PERIOD:
        return views @ p.decoder.T.astype(np.float64)
    w = _noise_weights(views, index)
    sw = p.seen * w
    decoder = np.linalg.solve(sw @ p.seen.T, sw)
    return views @ decoder.T


@dataclass(frozen=True)
class VideoMarkResult:
    found: bool  # magic and CRC match and confidence >= FOUND_THRESHOLD
    job: Optional[str]  # the 6 hex digits of the job id the mark carries (when the magic and CRC match)
    confidence: float  # mean |z| of the bits (unmarked media: about 1)
    magic_ok: bool
    crc_ok: bool
    frames_used: int  # frames with a tracked face
    frames_read: int
    bit_agreement: float  # share of per-frame bit decisions that agree with the decoded bits
    bits: tuple = ()  # the decoded +-1 bits, before correction (bit_accuracy measures these)
    seconds: float = 0.0
    corrected: int = 0  # weak bits flipped so that the magic and CRC match (at most CHASE_FLIPS)

    def bit_accuracy(self, job_id: str) -> float:
        """Share of decoded bits equal to those ``job_id``'s mark would carry (for measurements)."""
        if not self.bits:
            return 0.0
        return float(np.mean(np.array(self.bits) == payload_bits(job_id)))

    def describe(self) -> str:
        if self.frames_used == 0:
            return "no face found to check"
        if self.found:
            fixed = f", {self.corrected} weak bit(s) corrected" if self.corrected else ""
            return (f"found, job {self.job} (confidence {self.confidence:.1f}, {self.frames_used} frames, "
                    f"per-frame bit agreement {self.bit_agreement:.2f}{fixed})")
        return f"not found (confidence {self.confidence:.1f}, {self.frames_used} frames with a face)"


def _inflation(resid: np.ndarray, signs: np.ndarray) -> float:
    """How much the frames' noise, correlated from frame to frame (the face changes slowly), widens the estimate
    beyond the independent-frames formula: sum over lags of the residuals' autocorrelation times the signs'."""
    n = len(resid)
    r = resid - resid.mean(0)
    denom = float((r ** 2).sum())
    if n < 4 or denom <= 0:
        return 1.0
    factor = 1.0
    s = signs - signs.mean()
    ss = float((s ** 2).sum())
    for lag in range(1, min(2 * PERIOD, n - 1)):
        rho = float((r[lag:] * r[:-lag]).sum()) / denom
        sig = float((s[lag:] * s[:-lag]).sum()) / ss
        factor += 2 * rho * sig
    return max(1.0, factor)


def _window_estimate(scores: np.ndarray, index: np.ndarray):
    """Best flip phase of one window: (estimate per bit, its variance per bit, signs used)."""
    best = None
    for s, sc, ss in _flip_phases(index):
        b = (sc[:, None] * scores).sum(0) / ss  # regression with intercept: the face's static texture drops out
        resid = scores - scores.mean(0) - sc[:, None] * b
        dof = max(1, len(scores) - 2)
        var = (resid ** 2).sum(0) / dof / ss * _inflation(resid, sc)
        strength = float(np.sum(b ** 2 / np.maximum(var, 1e-12)))
        if best is None or strength > best[0]:
            best = (strength, b, var, s)
    if best is None:
        return None
    return best[1], best[2], best[3]


CHASE_WEAKEST, CHASE_FLIPS = 8, 3


def _chase(bits: np.ndarray, reliability: np.ndarray) -> tuple[np.ndarray, int]:
    """Chase decoding: the bits, or, when the magic or the CRC fails, the valid word reached by flipping at most
    CHASE_FLIPS of the CHASE_WEAKEST least reliable bits (the flips with the least total reliability)."""
    from itertools import combinations

    if all(parse_bits(bits)[:2]):
        return bits, 0
    weakest = np.argsort(reliability)[:CHASE_WEAKEST]
    best = None
    for k in range(1, CHASE_FLIPS + 1):
        for combo in combinations(weakest, k):
            trial = bits.copy()
            trial[list(combo)] *= -1
            if all(parse_bits(trial)[:2]):
                cost = float(reliability[list(combo)].sum())
                if best is None or cost < best[0]:
                    best = (cost, trial, k)
    return (bits, 0) if best is None else (best[1], best[2])


def decode_scores(scores: np.ndarray, index: np.ndarray, frames_read: int = 0, seconds: float = 0.0
                  ) -> VideoMarkResult:
    """Decide from per-frame estimates ``scores`` (n, BITS) at frame numbers ``index`` (n,)."""
    n = len(scores)
    if n < 2 * PERIOD:
        return VideoMarkResult(False, None, 0.0, False, False, n, frames_read, 0.0, (), seconds)
    windows = []
    start = 0
    while start < n:
        stop = min(n, start + WINDOW)
        if n - stop < WINDOW // 2:  # a short tail joins the last window
            stop = n
        est = _window_estimate(scores[start:stop], index[start:stop])
        if est is not None:
            windows.append((est, slice(start, stop)))
        start = stop
    if not windows:
        return VideoMarkResult(False, None, 0.0, False, False, n, frames_read, 0.0, (), seconds)
    # each window's phase is known up to a whole flip: align them all to the strongest, then add them up
    z_of = [b / np.sqrt(np.maximum(v, 1e-12)) for (b, v, _), _ in windows]
    ref = z_of[int(np.argmax([np.sum(z ** 2) for z in z_of]))]
    total_b, total_v, signs = np.zeros(BITS), np.zeros(BITS), []
    for ((b, v, s), sl), z in zip(windows, z_of):
        sign = 1.0 if float(np.dot(z, ref)) >= 0 else -1.0
        w = 1.0 / np.maximum(v, 1e-12)  # inverse-variance weights
        total_b += w * sign * b
        total_v += w
        signs.append((sl, sign * s))
    est = total_b / total_v
    z = est * np.sqrt(total_v)
    if len(windows) >= 3:  # windows that disagree more than their own noise says: widen by the excess
        chi = [((sgn * b - est) ** 2 / np.maximum(v, 1e-12)) for ((b, v, _), _), sgn in
               zip(windows, [1.0 if float(np.dot(zw, ref)) >= 0 else -1.0 for zw in z_of])]
        z = z / np.sqrt(max(1.0, float(np.mean(np.sum(chi, axis=0) / (len(windows) - 1)))))
    bits = np.where(est >= 0, 1.0, -1.0)
    magic = payload_bits("000000")[:MAGIC_BITS]
    if float(np.dot(z[:MAGIC_BITS], magic)) < 0:  # the magic fixes the overall sign
        bits, est = -bits, -est
        signs = [(sl, -s) for sl, s in signs]
    raw = bits.copy()
    bits, corrected = _chase(bits, np.abs(z))
    magic_ok, crc_ok, job = parse_bits(bits)
    confidence = float(np.mean(np.abs(z)))
    agree = []
    for sl, s in signs:
        x = scores[sl] - scores[sl].mean(0)
        agree.append(np.sign(x * s[:, None]) == bits[None])
    agreement = float(np.mean(np.concatenate(agree))) if agree else 0.0
    found = magic_ok and crc_ok and confidence >= FOUND_THRESHOLD
    return VideoMarkResult(found, job if magic_ok and crc_ok else None, round(confidence, 3), magic_ok, crc_ok, n,
                           frames_read, round(agreement, 3), tuple(float(b) for b in raw), round(seconds, 3),
                           corrected)


def collect_scores(frames: Iterable[np.ndarray], fps: float, *, tracker: str = "mediapipe",
                   max_frames: Optional[int] = MAX_FRAMES, faces: Optional[Iterable] = None
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """Track the face through ``frames`` (or take ``faces``, one per frame, when already known) and return
    (scores (n, BITS), frame numbers (n,), frames read). Frames are weighted in stretches of WINDOW frames, so
    only one stretch of crops is held at a time."""
    from ..face import track_with_frames

    def limited():
        for i, f in enumerate(frames):
            if max_frames is not None and i >= max_frames:
                return
            yield f

    pairs = track_with_frames(limited(), fps or 25.0, tracker=tracker) if faces is None else zip(limited(), faces)
    scores, index, views, view_index, read = [], [], [], [], 0

    def flush():
        if views:
            scores.extend(_weighted_scores(np.array(views, np.float64), np.array(view_index)))
            index.extend(view_index)
            views.clear()
            view_index.clear()

    for i, (frame, face) in enumerate(pairs):
        read = i + 1
        if face is None:
            continue
        v = frame_view(frame, face)
        if v is not None:
            views.append(v)
            view_index.append(i)
            if len(views) == 2 * WINDOW:  # keep the last WINDOW: a short tail is weighted with its neighbours
                keep_v, keep_i = views[WINDOW:], view_index[WINDOW:]
                del views[WINDOW:], view_index[WINDOW:]
                flush()
                views.extend(keep_v)
                view_index.extend(keep_i)
    flush()
    return (np.array(scores, np.float64).reshape(-1, BITS), np.array(index, np.int64), read)


def read_video_mark(path, *, max_frames: Optional[int] = MAX_FRAMES, tracker: str = "mediapipe") -> VideoMarkResult:
    """Look for the studio's video mark in the video ``path`` (its first ``max_frames`` frames; None = all)."""
    from ..video.io import probe, read_frames

    t0 = time.perf_counter()
    info = probe(path, "video")
    if not info.has_video or info.is_image:
        return VideoMarkResult(False, None, 0.0, False, False, 0, 0, 0.0, (), 0.0)
    frames = read_frames(info, max_frames=max_frames)
    scores, index, read = collect_scores(frames, info.fps or 25.0, tracker=tracker, max_frames=max_frames)
    result = decode_scores(scores, index, read, time.perf_counter() - t0)
    log.info("video mark in %s: %s in %.2f s", Path(path).name, result.describe(), result.seconds)
    return result
