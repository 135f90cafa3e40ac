"""Random training windows drawn from prepared clips, held as tensors on the training device.

Windows follow Wav2Lip: 5 consecutive frames (0.2 s at 25 fps); the mel window of 16 frames starting at the first
frame's time; per-frame mel windows for the generator; a reference window from elsewhere in the same clip; for
the sync expert, half the samples are in sync and half use audio from at least 5 frames away.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...audio.mel import MEL_FPS, MEL_STEP

T = 5  # frames per window


def _decode(path: Path) -> np.ndarray:
    """All frames of a (small) crop video as RGB: ffmpeg when installed, else OpenCV's bundled decoder (so training
    runs on machines with only torch and opencv, such as a rented GPU box)."""
    import shutil

    import importlib.util

    if shutil.which("ffmpeg") and shutil.which("ffprobe") and importlib.util.find_spec("ffmpeg") is not None:
        from ...video.io import probe, read_frames

        return np.stack(list(read_frames(probe(path))))
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise ValueError(f"no frames could be decoded from {path}")
    return np.stack(frames)


def load_clip(folder: Path):
    meta = json.loads((folder / "meta.json").read_text())
    frames = _decode(folder / "crops.mp4")
    mel = np.load(folder / "mel.npy").astype(np.float32)
    return frames[: meta["frames"]], mel, meta


class WindowSampler:
    def __init__(self, clips, device="cpu", seed: int = 0):
        import torch

        self.device = torch.device(device)
        frames, mels, self.index = [], [], []
        offset = 0
        for folder in clips:
            f, m, meta = load_clip(Path(folder))
            usable = min(len(f), int((m.shape[1] - MEL_STEP) * meta["fps"] / MEL_FPS))  # whole mel windows only
            if usable < 3 * T:
                continue
            frames.append(f[:usable])
            mels.append(m)
            self.index.append((offset, usable, meta["fps"], len(mels) - 1))
            offset += usable
        if not self.index:
            from ...errors import InputError

            raise InputError("no clip is long enough to train on (each needs at least 15 frames with audio)")
        self.frames = torch.from_numpy(np.concatenate(frames)).to(self.device)  # (N, S, S, 3) uint8
        self.mels = [torch.from_numpy(m).to(self.device) for m in mels]
        self.size = self.frames.shape[1]
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def _mel(self, clip: int, frame: int, fps: float):
        m = self.mels[clip]
        start = min(int(frame * MEL_FPS / fps), m.shape[1] - MEL_STEP)
        return m[:, start:start + MEL_STEP]

    def _window(self, offset: int, start: int):
        import torch

        x = self.frames[offset + start: offset + start + T].float().div(255)  # (T, S, S, 3)
        return x.permute(3, 0, 1, 2)  # (3, T, S, S)

    def sync_batch(self, batch: int):
        """(mel (B,1,80,16), faces (B,15,S/2,S), labels (B,1)): half in sync, half shifted."""
        import torch

        mels, faces, labels = [], [], []
        for _ in range(batch):
            offset, n, fps, clip = self.index[self.rng.integers(len(self.index))]
            t = int(self.rng.integers(0, n - T + 1))
            synced = bool(self.rng.integers(2))
            if synced:
                a = t
            else:
                choices = [s for s in range(0, n - T + 1) if abs(s - t) >= T]
                a = int(self.rng.choice(choices))
            window = self._window(offset, t)[:, :, self.size // 2:]  # lower halves (3, T, S/2, S)
            faces.append(window.permute(1, 0, 2, 3).reshape(3 * T, self.size // 2, self.size))
            mels.append(self._mel(clip, a, fps)[None])
            labels.append(1.0 if synced else 0.0)
        return (torch.stack(mels), torch.stack(faces),
                torch.tensor(labels, device=self.device).unsqueeze(1))

    def gen_batch(self, batch: int):
        """(indiv_mels (B,T,1,80,16), inputs (B,6,T,S,S), target (B,3,T,S,S), mel (B,1,80,16))."""
        import torch

        ind, inputs, targets, mels = [], [], [], []
        for _ in range(batch):
            offset, n, fps, clip = self.index[self.rng.integers(len(self.index))]
            t = int(self.rng.integers(0, n - T + 1))
            choices = [s for s in range(0, n - T + 1) if abs(s - t) >= T] or [t]
            r = int(self.rng.choice(choices))
            gt, ref = self._window(offset, t), self._window(offset, r)
            masked = gt.clone()
            masked[:, :, self.size // 2:] = 0
            inputs.append(torch.cat([masked, ref], dim=0))
            targets.append(gt)
            ind.append(torch.stack([self._mel(clip, t + i, fps)[None] for i in range(T)]))
            mels.append(self._mel(clip, t, fps)[None])
        return torch.stack(ind), torch.stack(inputs), torch.stack(targets), torch.stack(mels)
