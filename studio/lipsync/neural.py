"""The Wav2Lip-compatible engine: official checkpoints or actor models trained with `studio train`.

Each face box is resized to the model's size, its lower half is blanked and the unmasked crop is given as the
reference (as published inference does); the generated crop is resized back to the box and handed to the
shared blender, which keeps only the feathered lower face (so the box edge of classic Wav2Lip never shows).
Batched; fp16 autocast on CUDA; on CUDA out-of-memory the batch is halved and retried.

An actor model saved unfinished (its metadata says ``ready: False``: a time budget ended training before its
generator had done enough steps, see ``studio.lipsync.training.train.readiness``) is refused with a message that
says how to resume it; checkpoints without the flag (official ones, older actor models such as the bundled s1)
count as ready.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Optional, Sequence

import numpy as np

from ..audio.io import resample
from ..audio.mel import SAMPLE_RATE, mel_windows, wav2lip_mel
from ..checkpoints import build_model, infer_arch, load_checkpoint
from ..errors import InputError
from ..hashing import file_sha256_memo
from ..log import get_logger
from ..types import Face, Patch, Speech

log = get_logger("wav2lip")


def face_crop(frame: np.ndarray, box, size: int) -> np.ndarray:
    """The box's pixels resized to size x size (RGB uint8); shared with training so crops match exactly."""
    import cv2

    x1, y1, x2, y2 = box
    crop = frame[y1:y2, x1:x2]
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)


def model_inputs(crops: np.ndarray, references: Optional[np.ndarray] = None) -> np.ndarray:
    """(B, 6, S, S) float32 in [0, 1]: the crop with its lower half blanked, then the reference crop."""
    refs = crops if references is None else references
    masked = crops.copy()
    masked[:, crops.shape[1] // 2:] = 0
    x = np.concatenate([masked, refs], axis=3).astype(np.float32) / 255.0
    return x.transpose(0, 3, 1, 2)


def check_ready(loaded, checkpoint) -> None:
    """Raise InputError when ``loaded`` (a LoadedCheckpoint) is an actor model saved unfinished."""
    meta = loaded.meta or {}
    if loaded.source_format != "studio" or meta.get("ready", True) is not False:
        return
    from pathlib import Path

    path = Path(loaded.path or str(checkpoint))
    name = meta.get("name") or (path.parent.name if path.name == "model.pt" else path.stem)
    planned = meta.get("generator_steps", (meta.get("train_config") or {}).get("generator_steps"))
    of = "" if planned is None else f" of {planned}"
    need = meta.get("min_generator_steps")
    usable = "" if need is None else f" (it is ready from generator step {need})"
    from .training.train import resume_command

    raise InputError(f"model {name} is unfinished (generator step {meta.get('step', 0)}{of}): resume it with "
                     f"{resume_command(name, planned, need)}{usable}")


_MODELS_LOCK = threading.Lock()
_MODELS: "OrderedDict[tuple, tuple]" = OrderedDict()  # (path, sha256, device) -> (loaded checkpoint, model)
MODEL_CACHE_SIZE = 2  # networks kept loaded per process (each s1-sized one: ~20 MB; a full Wav2Lip: ~150 MB)


def _file_sha256(path) -> str:
    return file_sha256_memo(path)


def loaded_model(checkpoint, device: str):
    """(LoadedCheckpoint, generator in eval mode on ``device``), loaded once per process and kept for the next
    job (the app, a batch of renders) under (file, sha256 of its bytes, device): a changed file is loaded again.
    The generator is only read (inference), so jobs running at once may share it."""
    import torch

    from ..checkpoints import resolve

    path = resolve(checkpoint) if not hasattr(checkpoint, "is_file") else checkpoint
    key = (str(path), _file_sha256(path), str(torch.device(device)))
    with _MODELS_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            log.debug("model %s on %s reused from the cache", path, device)
            return _MODELS[key]
        loaded = load_checkpoint(path, map_location="cpu")
        if loaded.kind != "wav2lip":
            raise InputError(f"checkpoint {checkpoint!r} is a {loaded.kind} model, not a Wav2Lip generator")
        model = build_model(loaded).to(torch.device(device)).eval()
        # the weights live in the model now: keep only the description (arch, meta, format), not a second copy
        loaded = replace(loaded, arch=loaded.arch or infer_arch(loaded.kind, loaded.state_dict), state_dict={},
                         scripted=None)
        _MODELS[key] = (loaded, model)
        while len(_MODELS) > MODEL_CACHE_SIZE:
            _MODELS.popitem(last=False)
        return loaded, model


def clear_model_cache() -> None:
    with _MODELS_LOCK:
        _MODELS.clear()


class Wav2LipEngine:
    name = "wav2lip"

    def __init__(self, checkpoint: str, device: str = "cpu", batch_size: int = 32, allow_unfinished: bool = False):
        """``allow_unfinished`` loads an unfinished actor model anyway (for inspecting a run; lip-sync never does)."""
        import torch

        loaded, model = loaded_model(checkpoint, device)
        if not allow_unfinished:
            check_ready(loaded, checkpoint)
        self.arch = loaded.arch or infer_arch(loaded.kind, loaded.state_dict)
        self.img_size = int(self.arch.get("img_size", 96))
        self.device = torch.device(device)
        self.model = model
        self.batch_size = max(1, int(batch_size))
        # the published models were trained on OpenCV's BGR frames; ours are trained on RGB
        self.bgr = loaded.source_format != "studio"
        self.checkpoint = str(loaded.path)
        self.meta = loaded.meta
        self.windows: Optional[np.ndarray] = None
        log.info("loaded %s (%s, %s)", self.checkpoint, loaded.source_format, self.arch)

    def prepare(self, speech: Speech, fps: float, n_frames: int) -> None:
        audio = resample(speech.audio, speech.sample_rate, SAMPLE_RATE)
        self.windows = mel_windows(wav2lip_mel(audio), fps, n_frames)

    def render(self, frames: Sequence[np.ndarray], faces: Sequence[Optional[Face]], indices: Sequence[int]):
        if self.windows is None:
            raise RuntimeError("prepare() must be called before render()")
        todo = [k for k, f in enumerate(faces) if f is not None]
        out: list[Optional[Patch]] = [None] * len(frames)
        if not todo:
            return out
        crops = np.stack([face_crop(frames[k], faces[k].box, self.img_size) for k in todo])
        if self.bgr:
            crops = crops[..., ::-1]
        mels = self.windows[np.minimum([indices[k] for k in todo], len(self.windows) - 1)]
        generated = self._infer(model_inputs(crops), mels[:, None])
        if self.bgr:
            generated = generated[..., ::-1]
        import cv2

        for k, gen in zip(todo, generated):
            x1, y1, x2, y2 = faces[k].box
            image = cv2.resize(np.ascontiguousarray(gen), (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)
            out[k] = Patch(box=faces[k].box, image=image)
        return out

    def _infer(self, faces: np.ndarray, mels: np.ndarray) -> np.ndarray:
        """Run the generator in batches; halve the batch on CUDA out-of-memory and go on."""
        import torch

        results, start, bs = [], 0, self.batch_size
        while start < len(faces):
            try:
                results.append(self._forward(faces[start:start + bs], mels[start:start + bs]))
                start += bs
            except torch.cuda.OutOfMemoryError:
                if bs == 1:
                    raise
                torch.cuda.empty_cache()
                bs = max(1, bs // 2)
                self.batch_size = bs
                log.warning("CUDA out of memory: batch size lowered to %d", bs)
        return np.concatenate(results)

    def _forward(self, faces: np.ndarray, mels: np.ndarray) -> np.ndarray:
        import torch

        x, m = torch.from_numpy(np.ascontiguousarray(faces)), torch.from_numpy(np.ascontiguousarray(mels))
        if self.device.type == "cuda":  # pinned host memory: the copies to the GPU run asynchronously
            x, m = x.pin_memory().to(self.device, non_blocking=True), m.pin_memory().to(self.device, non_blocking=True)
        else:
            x, m = x.to(self.device), m.to(self.device)
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=torch.float16,
                                             enabled=self.device.type == "cuda"):
            pred = self.model(m, x)
        pred = pred.float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1)
        return pred.cpu().numpy()
