"""Footage -> a compact, cached training set of face crops and mel spectrograms.

Each usable clip becomes a folder keyed by the clip's content hash and the crop settings: `crops.mp4` (the tracked
face crops at the model's size, H.264 at high quality, which is ~50x smaller than image files), `mel.npy` (Wav2Lip
mel features, float16) and `meta.json` (frames, fps, lip landmarks in crop coordinates). A rerun reuses every clip
already prepared. Clips without a face, without speech or with broken frames are skipped and counted.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import InputError
from ...log import get_logger
from ...paths import cache_dir
from ...progress import Progress

log = get_logger("training")

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m4v"}
DATASET_VERSION = 1
MAX_MISSING_FACES = 0.05  # a clip with more frames than this without a face is skipped


@dataclass(frozen=True)
class DatasetInfo:
    root: Path
    clips: tuple[Path, ...]  # prepared clip folders (train + val)
    val_clips: tuple[Path, ...]
    skipped: dict = field(default_factory=dict)  # reason -> list of source files
    frames: int = 0
    seconds: float = 0.0
    fingerprint: str = ""

    @property
    def train_clips(self) -> tuple[Path, ...]:
        return tuple(c for c in self.clips if c not in self.val_clips)

    def describe(self) -> str:
        skipped = ", ".join(f"{len(v)} {k}" for k, v in self.skipped.items() if v) or "none"
        return (f"{len(self.clips)} clips ({self.seconds / 60:.1f} min, {self.frames} frames; "
                f"{len(self.val_clips)} held out for validation); skipped: {skipped}")


def list_footage(footage) -> list[Path]:
    """Video files from folders and/or files, sorted; raises InputError when there are none."""
    items = [footage] if isinstance(footage, (str, Path)) else list(footage)
    files: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"footage {p} does not exist; give a folder of videos or video files")
    if not files:
        raise InputError(f"no video files found in {', '.join(map(str, items))}")
    return files


def _content_hash(path: Path, img_size: int) -> str:
    h = hashlib.sha256(f"v{DATASET_VERSION}-{img_size}".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:20]


def prepare_clip(path: Path, out_dir: Path, img_size: int) -> Optional[str]:
    """Write one clip's crops/mel/meta into out_dir; returns a skip reason or None on success."""
    from ...audio.io import load_audio
    from ...audio.mel import wav2lip_mel
    from ...face import track_with_frames
    from ...face.landmarks import lip_indices
    from ...video.io import VideoWriter, probe, read_frames
    from ..neural import face_crop

    try:
        info = probe(path)
        audio, _ = load_audio(path, 16000, what="clip audio")
    except InputError as e:
        return "no speech" if "silent" in str(e) or "sound" in str(e) else "broken"
    if not info.has_video or info.is_image:
        return "broken"
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir.parent))
    try:
        lips, n, missing = [], 0, 0
        lip_ids = lip_indices("mediapipe478")
        with VideoWriter(tmp / "crops.mp4", img_size, img_size, info.fps, crf=12) as writer:
            prev = None
            for frame, face in track_with_frames(read_frames(info), info.fps):
                n += 1
                if face is None:
                    missing += 1
                    face = prev
                    if face is None:
                        writer.write(np.zeros((img_size, img_size, 3), np.uint8))
                        lips.append(np.zeros((len(lip_ids), 2), np.float32))
                        continue
                prev = face
                x1, y1, x2, y2 = face.box
                writer.write(face_crop(frame, face.box, img_size))
                scale = np.array([img_size / max(1, x2 - x1), img_size / max(1, y2 - y1)], np.float32)
                lips.append((face.landmarks[lip_ids] - [x1, y1]) * scale)
        if n < 8:
            return "broken"
        if missing > MAX_MISSING_FACES * n:
            return "no face"
        mel = wav2lip_mel(audio)
        np.save(tmp / "mel.npy", mel.astype(np.float16))
        np.save(tmp / "lips.npy", np.stack(lips).astype(np.float16))
        meta = dict(source=str(path), frames=n, fps=info.fps, img_size=img_size, seconds=n / info.fps,
                    version=DATASET_VERSION)
        (tmp / "meta.json").write_text(json.dumps(meta))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
        return None
    except InputError:
        return "broken"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare_dataset(footage, *, img_size: int = 96, root: Optional[Path] = None, val_fraction: float = 0.1,
                    max_minutes: Optional[float] = None, progress=None) -> DatasetInfo:
    """Prepare (or reuse) every clip of the footage; hold out ``val_fraction`` of the clips for validation."""
    progress = Progress.of(progress)
    prepared = _prepared_folder(footage)
    if prepared is not None:  # an already prepared dataset (e.g. moved to another machine with the run)
        return _from_prepared(sorted(p.parent for p in prepared.glob("*/meta.json")), prepared, val_fraction,
                              {"no face": [], "no speech": [], "broken": []})
    files = list_footage(footage)
    root = Path(root or cache_dir() / "datasets")
    root.mkdir(parents=True, exist_ok=True)
    clips, skipped, frames, seconds = [], {"no face": [], "no speech": [], "broken": []}, 0, 0.0
    for i, path in enumerate(files):
        if max_minutes is not None and seconds >= max_minutes * 60:
            break
        progress.update("preparing footage", i, len(files))
        out = root / _content_hash(path, img_size)
        if out in clips:  # the same content twice (a copied file): train on it once
            skipped.setdefault("duplicate", []).append(str(path))
            continue
        if not (out / "meta.json").exists():
            reason = prepare_clip(path, out, img_size)
            if reason:
                skipped[reason].append(str(path))
                log.info("skipped %s: %s", path, reason)
                continue
        meta = json.loads((out / "meta.json").read_text())
        clips.append(out)
        frames += meta["frames"]
        seconds += meta["seconds"]
    progress.update("preparing footage", len(files), len(files))
    return _from_prepared(clips, root, val_fraction, skipped)


def _prepared_folder(footage) -> Optional[Path]:
    items = [footage] if isinstance(footage, (str, Path)) else list(footage)
    if len(items) == 1 and Path(items[0]).is_dir() and any(Path(items[0]).glob("*/meta.json")):
        return Path(items[0])
    return None


def _from_prepared(clips: list, root: Path, val_fraction: float, skipped: dict) -> DatasetInfo:
    frames = seconds = 0
    for c in clips:
        meta = json.loads((c / "meta.json").read_text())
        frames += meta["frames"]
        seconds += meta["seconds"]
    if len(clips) < 2:
        raise InputError(f"only {len(clips)} usable clip(s) in the footage (skipped: "
                         f"{', '.join(f'{len(v)} {k}' for k, v in skipped.items() if v) or 'none'}); "
                         "training needs at least two clips of one person talking with their voice on the track")
    # a fixed, name-based split: the same clip is always held out, whatever the order of the folder
    ranked = sorted(clips, key=lambda c: hashlib.sha256(c.name.encode()).hexdigest())
    n_val = max(1, int(round(val_fraction * len(clips))))
    val = tuple(ranked[:n_val])
    fingerprint = hashlib.sha256("".join(sorted(c.name for c in clips)).encode()).hexdigest()[:16]
    return DatasetInfo(root, tuple(clips), val, skipped, frames, seconds, fingerprint)
