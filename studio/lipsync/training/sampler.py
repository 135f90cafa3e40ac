"""Random training windows drawn from prepared clips, held as tensors on the training device.

Windows follow Wav2Lip: 5 consecutive frames (0.2 s at 25 fps); the mel window of 16 frames starting at the first
frame's time; per-frame mel windows for the generator; a reference window from elsewhere in the same clip (or, for
a chosen fraction, from another clip); for the sync expert, half the samples are in sync and half use audio from at
least 5 frames away.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...audio.mel import MEL_FPS, MEL_STEP

T = 5  # frames per window
MOUTH_MARGIN = 0.25  # the mouth box reaches this fraction of the mouth's width beyond the outer lip landmarks


def lower_halves(video):
    """(B, 3, T, S, S) frames -> (B, 3T, S/2, S): the lower face of each frame stacked on channels, as the
    expert sees a window."""
    b, c, t, s, _ = video.shape
    return video[:, :, :, s // 2:].permute(0, 2, 1, 3, 4).reshape(b, c * t, s // 2, s)


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


def mouth_boxes(lips: np.ndarray, size: int) -> np.ndarray:
    """(N, 4) int boxes x0, y0, x1, y1 (end exclusive) around each frame's lip landmarks (N, P, 2), widened by
    MOUTH_MARGIN x the mouth width on every side; frames without landmarks (all zero) get an empty box."""
    lo, hi = lips.min(axis=1).astype(np.float32), lips.max(axis=1).astype(np.float32)
    margin = MOUTH_MARGIN * (hi[:, :1] - lo[:, :1])
    boxes = np.concatenate([np.floor(lo - margin), np.ceil(hi + margin) + 1], axis=1)
    boxes = np.clip(boxes, 0, size).astype(np.int64)
    boxes[~np.any(lips != 0, axis=(1, 2))] = 0
    return boxes


def load_clip(folder: Path):
    meta = json.loads((folder / "meta.json").read_text())
    frames = _decode(folder / "crops.mp4")
    mel = np.load(folder / "mel.npy").astype(np.float32)
    return frames[: meta["frames"]], mel, np.load(folder / "lips.npy"), meta


class WindowSampler:
    def __init__(self, clips, device="cpu", seed: int = 0):
        import torch

        self.device = torch.device(device)
        frames, mels, boxes, self.index = [], [], [], []
        offset = 0
        for folder in clips:
            f, m, lips, meta = load_clip(Path(folder))
            usable = min(len(f), int((m.shape[1] - MEL_STEP) * meta["fps"] / MEL_FPS))  # whole mel windows only
            if usable < 3 * T:
                continue
            frames.append(f[:usable])
            boxes.append(mouth_boxes(lips[:usable], f.shape[1]))
            mels.append(m)
            self.index.append((offset, usable, meta["fps"], len(mels) - 1))
            offset += usable
        if not self.index:
            from ...errors import InputError

            raise InputError("no clip is long enough to train on (each needs at least 15 frames with audio)")
        self.torch = torch
        self.frames = torch.from_numpy(np.concatenate(frames)).to(self.device)  # (N, S, S, 3) uint8
        self.mouths = torch.from_numpy(np.concatenate(boxes)).to(self.device)  # (N, 4) mouth box per frame
        longest = max(m.shape[1] for m in mels)
        padded = np.stack([np.pad(m, ((0, 0), (0, longest - m.shape[1])), mode="edge") for m in mels])
        self.mel_all = torch.from_numpy(padded).to(self.device)  # (clips, 80, longest)
        self.offsets = np.array([o for o, _, _, _ in self.index])
        self.n_usable = np.array([n for _, n, _, _ in self.index])
        self.fps = np.array([f for _, _, f, _ in self.index], dtype=np.float64)
        self.mel_len = np.array([mels[c].shape[1] for _, _, _, c in self.index])
        self.size = self.frames.shape[1]
        self.rng = np.random.default_rng(seed)
        # colour, scale, pose and flip augmentation of each sample (the same for all its frames, its reference and
        # its mouth mask): a base model trained on few people then meets new faces, light and framing
        self.augment = False

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def _draw(self, batch: int):
        """Clip, window start and a distant window start (>= T frames away) for each sample, as numpy arrays."""
        idx = self.rng.integers(len(self.index), size=batch)
        n = self.n_usable[idx]
        t = (self.rng.random(batch) * (n - T + 1)).astype(int)
        return idx, t, self._far(n, t)

    def _far(self, n, t):
        """A window start at least T frames from each of t, in clips of n usable frames."""
        far = t.copy()
        todo = np.ones(len(t), bool)
        for _ in range(16):  # rejection sampling, vectorised; clips are >= 3T frames so this ends quickly
            cand = (self.rng.random(len(t)) * (n - T + 1)).astype(int)
            ok = todo & (np.abs(cand - t) >= T)
            far[ok] = cand[ok]
            todo &= ~ok
            if not todo.any():
                break
        return far

    def _windows(self, idx, starts):
        """(B, 3, T, S, S) float frames for window starts of the given clips, gathered in one indexing op."""
        rows = self.offsets[idx][:, None] + starts[:, None] + np.arange(T)[None]
        x = self.frames[self.torch.from_numpy(rows).to(self.device)].float().div(255)  # (B, T, S, S, 3)
        return x.permute(0, 4, 1, 2, 3)

    def _mouth_masks(self, idx, starts):
        """(B, 1, T, S, S) float: 1 inside each frame's mouth box, 0 elsewhere (no random numbers drawn)."""
        torch = self.torch
        rows = self.offsets[idx][:, None] + starts[:, None] + np.arange(T)[None]
        box = self.mouths[torch.from_numpy(rows).to(self.device)]  # (B, T, 4)
        grid = torch.arange(self.size, device=self.device)
        inside_x = (grid >= box[..., 0:1]) & (grid < box[..., 2:3])  # (B, T, S)
        inside_y = (grid >= box[..., 1:2]) & (grid < box[..., 3:4])
        return (inside_y[..., :, None] & inside_x[..., None, :]).float().unsqueeze(1)

    def _mels(self, idx, frame_starts):
        """(B, K, 80, 16) mel windows starting at each frame of frame_starts (B, K)."""
        torch = self.torch
        fps = self.fps[idx][:, None]
        starts = np.minimum((frame_starts * MEL_FPS / fps).astype(int), self.mel_len[idx][:, None] - MEL_STEP)
        cols = torch.from_numpy(starts[..., None] + np.arange(MEL_STEP)).to(self.device)  # (B, K, 16)
        clip = torch.from_numpy(idx).to(self.device)[:, None, None]
        m = self.mel_all[clip, :, cols]  # (B, K, 16, 80)
        return m.permute(0, 1, 3, 2)

    def sync_batch(self, batch: int):
        """(mel (B,1,80,16), faces (B,15,S/2,S), labels (B,1)): half in sync, half shifted."""
        torch = self.torch
        idx, t, far = self._draw(batch)
        synced = self.rng.integers(2, size=batch).astype(bool)
        audio_at = np.where(synced, t, far)
        faces = lower_halves(self._augmented(self._windows(idx, t))[0])
        mels = self._mels(idx, audio_at[:, None])  # (B, 1, 80, 16)
        labels = torch.from_numpy(synced.astype(np.float32)).to(self.device).unsqueeze(1)
        return mels, faces, labels

    def sync_contrast_batch(self, batch: int, negatives: int):
        """(mel (B, 1+K, 1, 80, 16), faces (B, 15, S/2, S)): each video window with its own audio window first,
        then K audio windows from at least T frames away in the same clip (the expert's hard negatives)."""
        idx, t, _ = self._draw(batch)
        n = self.n_usable[idx]
        starts = np.stack([t] + [self._far(n, t) for _ in range(negatives)], axis=1)  # (B, 1+K)
        faces = lower_halves(self._augmented(self._windows(idx, t))[0])
        return self._mels(idx, starts)[:, :, None], faces

    def _other_clips(self, idx):
        """A random window start in a different clip for each sample (the same clip when there is only one)."""
        k = len(self.index)
        if k < 2:
            return idx, self._far(self.n_usable[idx], np.zeros(len(idx), int))
        other = (idx + self.rng.integers(1, k, size=len(idx))) % k
        starts = (self.rng.random(len(idx)) * (self.n_usable[other] - T + 1)).astype(int)
        return other, starts

    def gen_batch(self, batch: int, cross_clip: float = 0.0):
        """(indiv_mels (B,T,1,80,16), inputs (B,6,T,S,S), target (B,3,T,S,S), mel (B,1,80,16), mouth (B,1,T,S,S):
        1 in the target's mouth box). A fraction
        ``cross_clip`` of the samples take their reference window from another clip (other light, pose and
        mouth), so the generator learns to take the face's look from the unmasked upper half."""
        torch = self.torch
        idx, t, far = self._draw(batch)
        ref_clip = idx
        if cross_clip > 0:
            cross = self.rng.random(batch) < cross_clip
            other, other_t = self._other_clips(idx)
            ref_clip, far = np.where(cross, other, idx), np.where(cross, other_t, far)
        gt, ref, mouth = self._augmented(self._windows(idx, t), self._windows(ref_clip, far), self._mouth_masks(idx, t))
        masked = gt.clone()
        masked[:, :, :, self.size // 2:] = 0
        inputs = torch.cat([masked, ref], dim=1)
        indiv = self._mels(idx, t[:, None] + np.arange(T)[None])[:, :, None]  # (B, T, 1, 80, 16)
        mel = self._mels(idx, t[:, None])  # (B, 1, 80, 16)
        return indiv, inputs, gt, mel, mouth

    def _augmented(self, *videos):
        """The videos (B, C, T, S, S) with one random transform per sample, shared by all of them: flip, scale
        0.9-1.1, rotation within 8 degrees, shift within 4 %, then (on 3-channel videos only, so masks stay masks)
        brightness, contrast, saturation and per-channel gain. Unchanged when ``augment`` is off."""
        if not self.augment:
            return videos
        torch = self.torch
        b = len(videos[0])
        r = self.rng
        flip = np.where(r.random(b) < 0.5, -1.0, 1.0)
        scale = r.uniform(0.9, 1.1, b)
        angle = np.deg2rad(r.uniform(-8, 8, b))
        shift = r.uniform(-0.04, 0.04, (b, 2)) * 2  # affine_grid coordinates span 2
        gain = r.uniform(0.85, 1.15, (b, 1)) * r.uniform(0.92, 1.08, (b, 3))
        contrast, saturation = r.uniform(0.8, 1.2, b), r.uniform(0.7, 1.3, b)
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        theta = np.stack([np.stack([cos * flip, -sin, shift[:, 0]], 1), np.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
        theta = torch.from_numpy(theta.astype(np.float32)).to(self.device)
        f = torch.nn.functional
        out = []
        for v in videos:
            _, c, t, s, _ = v.shape
            grid = f.affine_grid(theta, (b, c * t, s, s), align_corners=False)
            mode = "bilinear" if c == 3 else "nearest"
            w = f.grid_sample(v.reshape(b, c * t, s, s), grid, mode=mode, padding_mode="border",
                              align_corners=False).view(b, c, t, s, s)
            if c == 3:
                as_t = lambda a: torch.from_numpy(a.astype(np.float32)).to(self.device).view(b, -1, 1, 1, 1)  # noqa: E731
                grey = w.mean(dim=1, keepdim=True)
                w = grey + (w - grey) * as_t(saturation)
                mean = w.mean(dim=(1, 2, 3, 4), keepdim=True)
                w = (mean + (w - mean) * as_t(contrast)) * as_t(gain)
                w = w.clamp(0, 1)
            out.append(w)
        return tuple(out)
