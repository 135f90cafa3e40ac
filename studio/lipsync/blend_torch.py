"""The blend of ``studio.lipsync.blend`` with its per-pixel work in torch, for renders on a CUDA device.

The mask geometry (polygon, erode, blur) and the colour statistics (a thin ring of pixels) stay on the CPU,
exactly as in the numpy blend; the colour shift (RGB -> Lab -> RGB of the whole face region) and the mix run on
the device. OpenCV's 8-bit Lab conversions are fixed-point (a float formula differs from them by up to 2 levels,
4 after the round trip): here they are table lookups built with OpenCV itself, so they match bit for bit and a
pixel differs from the numpy blend by at most 1 grey level (float rounding; tested on the CPU, see
tests/test_pipeline_speedups.py).
"""
from __future__ import annotations

import numpy as np

from ..types import Face, Patch
from .blend import blend_region, colour_stats

_LUTS: dict = {}


def _lut(code: int, device):
    """OpenCV's 8-bit colour conversion ``code`` for every one of the 2^24 colours, as a (2^24, 3) uint8 table
    on ``device`` (48 MiB; built once per process and device): lookups give OpenCV's results bit for bit."""
    import cv2
    import torch

    key = (code, str(device))
    if key not in _LUTS:
        levels = np.arange(256, dtype=np.uint8)
        colours = np.empty((256, 256, 256, 3), np.uint8)
        colours[..., 0], colours[..., 1], colours[..., 2] = levels[:, None, None], levels[None, :, None], levels
        table = cv2.cvtColor(colours.reshape(4096, 4096, 3), code).reshape(-1, 3)
        _LUTS[key] = torch.from_numpy(table).to(device)
    return _LUTS[key]


def convert(pixels, code: int):
    """(..., 3) uint8 tensor through OpenCV's conversion ``code`` (e.g. cv2.COLOR_RGB2LAB), by table lookup."""
    import torch

    p = pixels.to(torch.int64)
    return _lut(code, pixels.device)[(p[..., 0] << 16) | (p[..., 1] << 8) | p[..., 2]]


def _to_device(array: np.ndarray, device):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":  # through pinned memory: the copy runs without the CPU staging it
        t = t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def blend_torch(frame: np.ndarray, patch: Patch, face: Face, device="cpu", *, feather: float = 0.12,
                color_match: bool = True, inplace: bool = False) -> np.ndarray:
    """Like ``blend.blend``; the colour shift and the mix run on ``device``."""
    import torch

    device = torch.device(device)
    out = frame if inplace else frame.copy()
    found = blend_region(frame, patch, face, feather)
    if found is None:
        return out
    (y0, y1, x0, x1), mask, image = found
    region = frame[y0:y1, x0:x1]
    stats = colour_stats(image, region, (mask > 0.05) & (mask < 0.6)) if color_match else None
    img = _to_device(image, device).float()
    reg = _to_device(region, device).float()
    m = _to_device(mask, device)[..., None]
    if stats is not None:
        import cv2

        pm, tm, ratio = (torch.tensor(np.asarray(v, np.float32), device=device) for v in stats)
        lab = convert(img.to(torch.uint8), cv2.COLOR_RGB2LAB).float()
        lab = ((lab - pm) * ratio + tm).clamp(0, 255).to(torch.uint8)  # truncates, as numpy's astype(uint8)
        img = convert(lab, cv2.COLOR_LAB2RGB).float()
    mixed = torch.round(reg * (1 - m) + img * m)
    result = torch.where(m > 0, mixed, reg).to(torch.uint8)
    out[y0:y1, x0:x1] = result.cpu().numpy()
    return out
