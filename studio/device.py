"""Which torch device a job runs on."""
from __future__ import annotations


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda" when a CUDA GPU is usable, else "cpu"; anything else is passed to torch as is."""
    if device != "auto":
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                from .errors import InputError

                raise InputError(f"device {device!r} was asked for but no CUDA GPU is usable here; use --device cpu")
        return device
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"
