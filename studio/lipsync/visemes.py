"""The weights-free lip-sync engine.

Version 2 (the default), for a video: the person's own mouths from their footage (``study``; see
``mouth_library`` and ``speech_to_mouth``) are chosen per frame for the new speech and blended in. For a photo, or
footage without usable mouths, and in version 1: for every frame the face-mesh landmarks of the lips and jaw are
moved to where the viseme track wants them (jaw drop and lip gap, rounding, spreading, pressing), a smooth
displacement field is interpolated from those moves (everything above the nose is anchored), the frame is warped
backwards through it, and a mouth interior is painted between the inner lips where they part (v2: shaded in the
person's lip colour with teeth toned from the picture; v1: flat dark). The current mouth state is measured from
the landmarks, so a talking input mouth is closed or opened as the new speech demands.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional, Sequence

import numpy as np

from ..face.landmarks import indices, inter_ocular
from ..log import get_logger
from ..types import Face, Patch, Speech
from .phonemes import VisemeTrack, viseme_track

log = get_logger("visemes")

MAX_GAP = 0.40  # lip gap of a wide-open "a", as a fraction of the inter-ocular distance
LOWER_SHARE = 0.72  # how much of an opening the lower lip/jaw makes (the upper lip moves little)
JAW_SHARE = 0.45  # how far the chin follows the lower lip
ANCHORS = {"mediapipe478": [1, 2, 4, 5, 6, 98, 327, 168, 197, 195, 33, 133, 362, 263, 234, 454, 93, 323, 132, 361,
                            205, 425, 50, 280],
           "ibug68": [27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45, 0, 16, 1, 15]}


class VisemeEngine:
    """``version=2`` (the default): the person's own mouths from their footage when it has them (see
    ``study``), otherwise the warp with a shaded interior and teeth coloured from the image. ``version=1``
    reproduces the first engine (flat dark interior, its audio timing) for comparisons."""

    name = "visemes"

    def __init__(self, device: str = "cpu", version: int = 2):
        self.device = device  # everything runs on the CPU with OpenCV; accepted for a uniform interface
        self.version = version
        self.track: Optional[VisemeTrack] = None
        self.library = None  # MouthLibrary from study()
        self.regressor = None  # MouthRegressor from study()
        self.targets: Optional[np.ndarray] = None  # (n_frames, 2) wanted opening and width
        self._picker = None
        self._mask = None
        self.report: dict = {}

    def study(self, footage, *, tracker: str = "mediapipe", face_index=None, face_point=None,
              max_seconds: float = 90.0, keep_faces: int = 0, hwaccel=None) -> dict:
        """Learn this person's mouth from a video of them (usually the face video itself): the exemplar library,
        and, when the footage has speech, the map from their voice to their mouth. Returns what was learned.

        ``keep_faces`` > 0 when the footage is the video about to be rendered: the faces tracked for the study
        are kept for the render (:meth:`take_followed`), so the render does not track those frames again."""
        from .study import study_footage

        if self.version < 2:
            return {}
        self.library, self.regressor, self.report, self._followed = study_footage(
            footage, tracker=tracker, face_index=face_index, face_point=face_point, max_seconds=max_seconds,
            keep_faces=keep_faces, hwaccel=hwaccel)
        return self.report

    def take_followed(self):
        """The faces (and tracker) kept by the last ``study(..., keep_faces=n)``, handed over once (the caller
        closes them), or None."""
        followed, self._followed = getattr(self, "_followed", None), None
        return followed

    def prepare(self, speech: Speech, fps: float, n_frames: int) -> None:
        from .speech_to_mouth import load_general_map

        self.track = viseme_track(speech, fps, n_frames, legacy_timing=self.version < 2)
        general = load_general_map() if self.version >= 2 and not speech.phonemes else None
        self.targets = None
        lib = self.library
        if lib is None or not lib.usable:
            if general is not None:  # a photo: the general voice-to-mouth map drives the warp's opening
                values = self.track.values.copy()
                values[:, 0] = general.openness(speech, fps, n_frames)
                values[(np.arange(n_frames) + 0.5) / fps > speech.duration + 0.05, 0] = 0.0  # at rest after it
                self.track = replace(self.track, values=values, source="audio (general voice-to-mouth map)")
            log.info("viseme track from %s, %d frames", self.track.source, n_frames)
            return
        from .mouth_library import ExemplarPicker, mouth_mask

        if self.regressor is not None:
            self.targets = self.regressor.predict_speech(speech, fps, n_frames)
            source = "the person's own voice-to-mouth map" + (
                " averaged with the general one" if self.regressor.general is not None else "")
        elif general is not None:  # footage without speech: the general map onto this person's range
            self.targets = general.for_person(lib.shapes).predict_speech(speech, fps, n_frames)
            source = "the general voice-to-mouth map on the person's range"
        else:  # no general map either: the rule-based track, scaled to this mouth's range
            lo, hi = np.percentile(lib.shapes[:, 0], [5, 97])
            w_mid, w_sd = float(np.median(lib.shapes[:, 1])), float(lib.shapes[:, 1].std())
            t = self.track
            self.targets = np.stack([lo + (hi - lo) * t["open"],
                                     w_mid + w_sd * (1.5 * t["spread"] - 2.0 * t["round"])], 1).astype(np.float32)
            source = "the viseme track scaled to the person's mouth"
        self.targets = np.asarray(self.targets, np.float32)
        after = (np.arange(n_frames) + 0.5) / fps > speech.duration + 0.05
        self.targets[after, 0] = float(np.percentile(lib.shapes[:, 0], 5))  # after the speech: at rest
        self._picker, self._mask = ExemplarPicker(lib), mouth_mask(lib)
        log.info("visemes v2: %d exemplars of the person's mouth, targets from %s", len(lib), source)

    def render(self, frames: Sequence[np.ndarray], faces: Sequence[Optional[Face]], indices_: Sequence[int]):
        if self.track is None:
            raise RuntimeError("prepare() must be called before render()")
        if self.targets is not None:
            return self._exemplars(frames, faces, indices_)
        out = []
        for frame, face, i in zip(frames, faces, indices_):
            if face is None:
                out.append(None)
            else:
                params = self.track.values[min(i, len(self.track.values) - 1)]
                out.append(render_mouth(frame, face, params, shaded=self.version >= 2))
        return out

    def _exemplars(self, frames, faces, indices_) -> list[Optional[Patch]]:
        """The batch's exemplars, chosen together (see ExemplarPicker.plan) over each run of consecutive frames
        that need one; a frame whose mouth is closed and should stay closed keeps its own pixels."""
        from .mouth_library import mouth_shape, paste, yaw

        closed = self.library.closed_level
        out: list[Optional[Patch]] = [None] * len(frames)
        run: list[int] = []

        def flush():
            if run:
                ts = [min(indices_[k], len(self.targets) - 1) for k in run]
                yaws = [yaw(faces[k].landmarks, faces[k].scheme) for k in run]
                chosen = self._picker.plan(self.targets[ts], np.array(yaws, np.float32), indices_[run[0]])
                for k, e in zip(run, chosen):
                    out[k] = paste(frames[k], faces[k], self.library, e, self._mask)
                run.clear()

        for k, (face, i) in enumerate(zip(faces, indices_)):
            target = self.targets[min(i, len(self.targets) - 1)]
            keep = face is None or (target[0] < closed and mouth_shape(face.landmarks, face.scheme)[0] < closed)
            if keep or (run and i != indices_[run[-1]] + 1):
                flush()
            if not keep:
                run.append(k)
        flush()
        return out


def _mouth_frame(lm: np.ndarray, scheme: str):
    """Mouth centre, unit vector along the mouth (left to right corner), unit vector down the face, width."""
    left, right = lm[indices(scheme, "mouth_corners")]
    centre = (left + right) / 2
    along = right - left
    width = float(np.linalg.norm(along)) or 1.0
    u = along / width
    v = np.array([-u[1], u[0]], np.float32)  # u rotated by +90 degrees: "down" in image coordinates
    return centre, u, v, width


def target_displacements(face: Face, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Control points (K, 2) and their displacements (K, 2) for the given mouth parameters."""
    lm, scheme = face.landmarks.astype(np.float32), face.scheme
    open_, round_, spread, press, fv = (float(x) for x in params)
    s = inter_ocular(lm, scheme)
    centre, u, v, width = _mouth_frame(lm, scheme)
    up_mid, lo_mid = lm[indices(scheme, "upper_lip_mid")[0]], lm[indices(scheme, "lower_lip_mid")[0]]
    gap0 = max(0.0, float((lo_mid - up_mid) @ v))
    gap = MAX_GAP * s * open_ * (1.0 - press)
    if fv > 0.5:
        gap = min(gap, 0.04 * s)
    delta = gap - gap0
    dwidth = (0.10 * spread - 0.24 * round_) * width
    pout = 0.035 * s * round_  # rounded lips look thicker from the front

    upper = set(indices(scheme, "lips_outer_upper") + indices(scheme, "lips_inner_upper"))
    lower = set(indices(scheme, "lips_outer_lower") + indices(scheme, "lips_inner_lower"))
    outer = set(indices(scheme, "lips_outer_upper") + indices(scheme, "lips_outer_lower"))
    inner_all = indices(scheme, "lips_inner_upper")
    corners = set(indices(scheme, "mouth_corners") + [inner_all[0], inner_all[-1]])  # outer and inner corners
    points, moves = [], []
    for k in sorted(upper | lower):
        p = lm[k]
        a = float(np.clip(((p - centre) @ u) / (width / 2), -1, 1))
        bulge = np.sqrt(max(0.0, 1 - a * a))  # the middle of a lip moves most, the corners least
        if k in corners:
            dv = 0.5 * LOWER_SHARE * delta * 0.3
        elif k in lower:
            dv = LOWER_SHARE * delta * bulge + (pout * bulge if k in outer else 0.0)
        else:
            dv = -(1 - LOWER_SHARE) * delta * bulge - (pout * bulge if k in outer else 0.0)
        du = a * dwidth / 2
        points.append(p)
        moves.append(du * u + dv * v)
    jaw = indices(scheme, "jaw")
    chin = lm[indices(scheme, "chin")[0]]
    chin_depth = max(1.0, float((chin - centre) @ v))
    for k in jaw:
        p = lm[k]
        depth = float(np.clip(((p - centre) @ v) / chin_depth, 0, 1))
        points.append(p)
        moves.append(JAW_SHARE * LOWER_SHARE * delta * depth ** 1.5 * v)
    for k in ANCHORS[scheme]:
        if k < len(lm):
            points.append(lm[k])
            moves.append(np.zeros(2, np.float32))
    info = dict(scale=s, gap=gap, open=open_, centre=centre, v=v)
    return np.asarray(points, np.float32), np.asarray(moves, np.float32), info


def _region(face: Face, shape, s: float) -> tuple[int, int, int, int]:
    """The part of the frame the warp may touch: from the nose down to below the chin, with a margin."""
    lm = face.landmarks
    h, w = shape[:2]
    nose = lm[indices(face.scheme, "nose_tip")[0]]
    jaw = lm[indices(face.scheme, "jaw")]
    x1, x2 = jaw[:, 0].min() - 0.1 * s, jaw[:, 0].max() + 0.1 * s
    y1, y2 = nose[1] - 0.05 * s, jaw[:, 1].max() + 0.35 * s
    return (max(0, int(x1)), max(0, int(y1)), min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2))))


def _dense_field(points, moves, box, sigma: float, step: int = 2) -> np.ndarray:
    """Backward displacement over the box, interpolating the moves exactly at the moved control points.

    Gaussian RBF interpolation (solved, not just weighted) so each lip contour lands exactly where it should:
    a smooth but merely weighted field cannot close a mouth, because between the lips the opposite moves of the
    upper and lower lip average out. The field is evaluated on a coarse grid and upsampled (it is smooth).
    """
    import cv2

    targets = points + moves  # output pixel q shows the source pixel q - move
    d2 = ((targets[:, None, :] - targets[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-d2 / (2 * sigma * sigma)) + 0.05 * np.eye(len(targets))  # ridge: no overshoot
    weights = np.linalg.solve(kernel, moves.astype(np.float64))
    x1, y1, x2, y2 = box
    gx = np.arange(x1, x2 + step, step, dtype=np.float32)
    gy = np.arange(y1, y2 + step, step, dtype=np.float32)
    xx, yy = np.meshgrid(gx, gy)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
    g2 = ((grid[:, None, :] - targets[None, :, :]) ** 2).sum(-1)
    field = (np.exp(-g2 / (2 * sigma * sigma)) @ weights).astype(np.float32).reshape(len(gy), len(gx), 2)
    # never move a pixel further than the largest control move (RBF ringing would pull in far-away texture)
    limit = float(np.abs(moves).max()) + 0.5
    field = np.clip(field, -limit, limit)
    full = cv2.resize(field, (len(gx) * step, len(gy) * step), interpolation=cv2.INTER_LINEAR)
    return full[: y2 - y1, : x2 - x1]


def _paint_interior(image: np.ndarray, face: Face, moves_by_index: dict, offset, info) -> None:
    """(version 1) Flat dark interior (a band of upper teeth on wide openings) between the moved inner lips."""
    import cv2

    lm, scheme = face.landmarks, face.scheme
    if info["gap"] < 0.03 * info["scale"]:
        return
    up = [lm[k] + moves_by_index.get(k, 0) for k in indices(scheme, "lips_inner_upper")]
    lo = [lm[k] + moves_by_index.get(k, 0) for k in indices(scheme, "lips_inner_lower")]
    poly = (np.array(up + lo[::-1], np.float32) - np.array(offset, np.float32))
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    if not mask.any():
        return
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.8)[..., None]
    ys = np.arange(h, dtype=np.float32)[:, None]
    top = poly[:, 1].min()
    depth = np.clip((ys - top) / max(1.0, info["gap"]), 0, 1)
    interior = np.empty((h, w, 3), np.float32)
    shade = 1.0 - 0.45 * np.sin(np.pi * depth)  # darker in the middle, like a mouth cavity
    interior[...] = (np.array([112, 48, 46], np.float32) * shade[..., None])
    if info["open"] > 0.45:
        # upper teeth: a soft light band hanging from the upper inner lip, a fraction of the opening tall
        teeth_h = min(0.25 * info["gap"], 0.08 * info["scale"])
        up_y = np.interp(np.arange(w), poly[: len(up), 0], poly[: len(up), 1])
        rel = (ys - up_y[None, :]) / max(teeth_h, 1.0)
        band = np.clip(1.0 - np.abs(rel - 0.5) * 2.0, 0, 1) ** 0.5  # soft top and bottom edges
        teeth = np.array([186, 178, 170], np.float32)
        interior = interior * (1 - 0.85 * band[..., None]) + teeth * 0.85 * band[..., None]
    mixed = image.astype(np.float32) * (1 - 0.92 * soft) + interior * 0.92 * soft
    image[...] = np.clip(mixed, 0, 255).astype(np.uint8)


def _person_colours(image: np.ndarray, face: Face, offset) -> tuple[np.ndarray, np.ndarray]:
    """(lip colour, teeth colour) taken from the picture itself: the median of the lip band between the outer and
    inner contours, and off-white toned to the face's brightest pixels (a dim photo gets dim teeth)."""
    import cv2

    lm, scheme = face.landmarks - np.array(offset, np.float32), face.scheme
    h, w = image.shape[:2]
    outer = np.vstack([lm[indices(scheme, "lips_outer_upper")], lm[indices(scheme, "lips_outer_lower")][::-1]])
    inner = np.vstack([lm[indices(scheme, "lips_inner_upper")], lm[indices(scheme, "lips_inner_lower")][::-1]])
    band = np.zeros((h, w), np.uint8)
    cv2.fillPoly(band, [np.round(outer).astype(np.int32)], 255)
    cv2.fillPoly(band, [np.round(inner).astype(np.int32)], 0)
    pixels = image[band > 0].astype(np.float32)
    lip = np.median(pixels, axis=0) if len(pixels) >= 8 else np.array([150, 90, 90], np.float32)
    bright = np.percentile(image.reshape(-1, 3).astype(np.float32), 97, axis=0)
    teeth = np.clip(0.8 * np.array([236, 230, 218], np.float32) * (bright.mean() / 235.0) + 0.2 * bright, 60, 245)
    return lip, teeth


def _paint_shaded_interior(image: np.ndarray, face: Face, moves_by_index: dict, offset, info,
                           colours) -> None:
    """Mouth interior in the person's colours: a cavity shaded from the lips' own hue to near black, an upper-teeth
    band lit in the middle and shadowed at the corners, a hint of lower teeth and tongue on wide openings."""
    import cv2

    lm, scheme = face.landmarks, face.scheme
    if info["gap"] < 0.03 * info["scale"]:
        return
    lip, teeth = colours
    up = [lm[k] + moves_by_index.get(k, 0) for k in indices(scheme, "lips_inner_upper")]
    lo = [lm[k] + moves_by_index.get(k, 0) for k in indices(scheme, "lips_inner_lower")]
    poly = np.array(up + lo[::-1], np.float32) - np.array(offset, np.float32)
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    if not mask.any():
        return
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.7)[..., None]
    gap = max(1.0, info["gap"])
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    up_y = np.interp(np.arange(w), poly[: len(up), 0], poly[: len(up), 1])[None, :]
    lo_y = np.interp(np.arange(w), poly[len(up):, 0][::-1], poly[len(up):, 1][::-1])[None, :]
    depth = np.clip((ys - up_y) / np.maximum(lo_y - up_y, 1.0), 0, 1)  # 0 at the upper lip, 1 at the lower
    left, right = poly[:, 0].min(), poly[:, 0].max()
    across = np.clip(np.abs(xs - (left + right) / 2) / max(1.0, (right - left) / 2), 0, 1)  # 0 middle, 1 corners
    # the cavity: the lips' hue, darkest in the middle of the opening and towards the corners
    dark = lip * 0.45
    shade = (1.0 - 0.5 * np.sin(np.pi * depth)) * (1.0 - 0.4 * across ** 2)
    interior = dark[None, None, :] * shade[..., None]
    if info["open"] > 0.3:
        teeth_h = min(0.42 * gap, 0.13 * info["scale"])
        rel = (ys - up_y) / max(teeth_h, 1.0)
        band = np.clip((1.0 - rel) * 4.0, 0, 1) * (rel > -0.3)  # solid, with a short soft lower edge
        band = band * (1.0 - 0.75 * across ** 3)  # teeth recede into shadow towards the corners
        lit = teeth[None, None, :] * (0.78 + 0.22 * np.cos(np.pi * across))[..., None]
        lit = lit * (1.0 - 0.25 * np.clip(rel, 0, 1))[..., None]  # the lower edge of the teeth is shaded
        interior = interior * (1 - band[..., None]) + lit * band[..., None]
    if info["open"] > 0.6:
        tongue = np.clip((depth - 0.65) / 0.35, 0, 1) * (1.0 - across ** 2)
        interior = interior * (1 - 0.5 * tongue[..., None]) + (lip * 0.55)[None, None, :] * 0.5 * tongue[..., None]
    mixed = image.astype(np.float32) * (1 - soft) + interior * soft
    image[...] = np.clip(mixed, 0, 255).astype(np.uint8)


def render_mouth(frame: np.ndarray, face: Face, params: np.ndarray, shaded: bool = True) -> Patch:
    """Warp one frame's lower face to the mouth parameters; returns the changed region as a Patch.
    ``shaded`` paints the v2 interior in the person's colours; False the first engine's flat dark one."""
    import cv2

    points, moves, info = target_displacements(face, params)
    s = info["scale"]
    box = _region(face, frame.shape, s)
    x1, y1, x2, y2 = box
    field = _dense_field(points, moves, box, sigma=0.12 * s)
    xs, ys = np.meshgrid(np.arange(x1, x2, dtype=np.float32), np.arange(y1, y2, dtype=np.float32))
    # backward mapping: the output pixel at x shows the source pixel at x - move(x)
    warped = cv2.remap(frame, xs - field[..., 0], ys - field[..., 1], interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT)
    lip_ids = sorted(set(sum((indices(face.scheme, n) for n in
                              ("lips_outer_upper", "lips_outer_lower", "lips_inner_upper", "lips_inner_lower")), [])))
    moves_by_index = {k: moves[i] for i, k in enumerate(lip_ids)}
    if shaded:
        colours = _person_colours(frame[y1:y2, x1:x2], face, (x1, y1))
        _paint_shaded_interior(warped, face, moves_by_index, (x1, y1), info, colours)
    else:
        _paint_interior(warped, face, moves_by_index, (x1, y1), info)
    return Patch(box=box, image=warped)
