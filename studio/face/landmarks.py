"""Named landmark index sets and measurements on them.

Two layouts exist: "mediapipe478" (the face mesh with refined lips and irises) and "ibug68" (face-alignment).
Everything that needs particular points (blend masks, the viseme engine, the lip-sync benchmark) asks here.
"""
from __future__ import annotations

import numpy as np

# mediapipe face mesh (canonical topology). Lip contours run from the left mouth corner (61) to the right (291).
MP = dict(
    lips_outer_upper=[61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291],
    lips_outer_lower=[61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291],
    lips_inner_upper=[78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308],
    lips_inner_lower=[78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308],
    # the lower half of the face oval, from the right cheek (ear level) under the chin to the left cheek
    jaw=[454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234],
    left_eye=[33, 133], right_eye=[362, 263],  # corners; the mean of each pair is the eye centre
    nose_tip=[1], nose_bottom=[2], upper_lip_mid=[13], lower_lip_mid=[14], chin=[152],
    mouth_corners=[61, 291],
)
IB = dict(
    lips_outer_upper=[48, 49, 50, 51, 52, 53, 54],
    lips_outer_lower=[48, 59, 58, 57, 56, 55, 54],
    lips_inner_upper=[60, 61, 62, 63, 64],
    lips_inner_lower=[60, 67, 66, 65, 64],
    jaw=list(range(16, -1, -1)),
    left_eye=[36, 39], right_eye=[42, 45],
    nose_tip=[30], nose_bottom=[33], upper_lip_mid=[62], lower_lip_mid=[66], chin=[8],
    mouth_corners=[48, 54],
)
SCHEMES = {"mediapipe478": MP, "ibug68": IB}


def indices(scheme: str, name: str) -> list[int]:
    try:
        return SCHEMES[scheme][name]
    except KeyError:
        raise ValueError(f"unknown landmark set {name!r} for scheme {scheme!r}") from None


def lip_indices(scheme: str) -> list[int]:
    """Every lip landmark once (outer and inner contours)."""
    s = SCHEMES[scheme]
    return sorted(set(s["lips_outer_upper"] + s["lips_outer_lower"] + s["lips_inner_upper"] + s["lips_inner_lower"]))


def _centre(lm: np.ndarray, scheme: str, name: str) -> np.ndarray:
    return lm[indices(scheme, name)].mean(axis=0)


def eye_centres(lm: np.ndarray, scheme: str = "mediapipe478") -> tuple[np.ndarray, np.ndarray]:
    return _centre(lm, scheme, "left_eye"), _centre(lm, scheme, "right_eye")


def inter_ocular(lm: np.ndarray, scheme: str = "mediapipe478") -> float:
    a, b = eye_centres(lm, scheme)
    return float(np.linalg.norm(b - a)) or 1.0


def mouth_opening(lm: np.ndarray, scheme: str = "mediapipe478") -> float:
    """Gap between the inner lips at the middle, divided by the inter-ocular distance (0 = closed)."""
    up = lm[indices(scheme, "upper_lip_mid")[0]]
    lo = lm[indices(scheme, "lower_lip_mid")[0]]
    return float(np.linalg.norm(lo - up)) / inter_ocular(lm, scheme)


def mouth_width(lm: np.ndarray, scheme: str = "mediapipe478") -> float:
    """Distance between the mouth corners, divided by the inter-ocular distance."""
    a, b = lm[indices(scheme, "mouth_corners")]
    return float(np.linalg.norm(b - a)) / inter_ocular(lm, scheme)


def normalise_landmarks(lm: np.ndarray, scheme: str = "mediapipe478") -> np.ndarray:
    """Remove translation, scale and in-plane rotation: eyes' midpoint at 0, eyes on the x axis, 1 apart."""
    a, b = eye_centres(lm, scheme)
    d = b - a
    scale = float(np.hypot(*d)) or 1.0
    c, s = d / scale
    rot = np.array([[c, s], [-s, c]], dtype=np.float64)
    return ((lm - (a + b) / 2) @ rot.T / scale).astype(np.float32)


def lower_face_polygon(lm: np.ndarray, scheme: str = "mediapipe478", expand: float = 1.0) -> np.ndarray:
    """A closed polygon (K, 2) around the lower face: along the jaw line and across just below the nose.

    This is the region lip-sync may change; everything above the nose stays as it was. ``expand`` > 1 pushes
    the jaw line outwards from the mouth (room for a dropped chin).
    """
    trim = 3 if scheme == "mediapipe478" else 2
    jaw = lm[indices(scheme, "jaw")[trim:-trim]]  # from the cheek beside the mouth, under the chin, to the other
    if expand != 1.0:  # only the part below the mouth moves out: the top edge must stay below the nose
        mouth = lm[indices(scheme, "mouth_corners")].mean(axis=0)
        jaw = np.where(jaw[:, 1:2] > mouth[1], mouth + (jaw - mouth) * expand, jaw)
    nose = lm[indices(scheme, "nose_bottom")[0]]
    left_end, right_end = jaw[-1], jaw[0]
    # the top edge runs from one cheek end to the other through a point between the nose and the upper lip
    upper_lip = lm[indices(scheme, "upper_lip_mid")[0]]
    top = nose + 0.35 * (upper_lip - nose)
    return np.vstack([jaw, (left_end + top) / 2, top, (right_end + top) / 2]).astype(np.float32)


def box_from_landmarks(lm: np.ndarray, shape: tuple[int, int], pad=(0.0, 0.1, 0.0, 0.0)) -> tuple[int, int, int, int]:
    """Bounding box of the landmarks, padded by fractions of its size (top, bottom, left, right), clipped."""
    h, w = shape[:2]
    x1, y1 = lm.min(axis=0)
    x2, y2 = lm.max(axis=0)
    bw, bh = x2 - x1, y2 - y1
    top, bottom, left, right = pad
    box = (x1 - left * bw, y1 - top * bh, x2 + right * bw, y2 + bottom * bh)
    return (max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1]))),
            min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3]))))
