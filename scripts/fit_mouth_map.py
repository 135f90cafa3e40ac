"""Fit the general voice-to-mouth map (checkpoints/mouth_map.npz) used by the weights-free engine where the person's
own speech is missing: a photo, footage without speech, and as an input of the personal map.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/fit_mouth_map.py [--grid-clips 0:400:2] [--out checkpoints/mouth_map.npz]

Data: GRID s1 clips (by default every 2nd of the first 400 by name; clips 400-409 are the anyface benchmark's
held-out person, never used) and the first 70 % of each faces-dev video (its last 30 % is the benchmark's test
part, never used). Targets: the face mesh's inner-lip opening and mouth width per frame (raw landmarks, no tracker
smoothing), z-scored per recording. Features: studio.lipsync.speech_to_mouth.frame_features (log-mel, +-0.2 s).
The ridge is chosen on held-out recordings (every 5th); the file holds weights, the output's quantiles on the
training frames and its provenance (json), no pickle.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
TRAIN_SHARE = 0.7  # of each faces-dev video (the anyface benchmark's split)


def recording(path: Path, seconds: float | None = None):
    """(Speech, fps, targets (n, 2), usable (n,)) of one video (its first ``seconds``)."""
    from studio.audio.io import load_audio
    from studio.face import track_with_frames
    from studio.lipsync.mouth_library import mouth_shape
    from studio.types import Speech
    from studio.video.io import probe, read_frames

    info = probe(path)
    limit = int(seconds * info.fps) if seconds else None
    frames = (f for k, f in enumerate(read_frames(info)) if limit is None or k < limit)
    shapes, found = [], []
    for _, face in track_with_frames(frames, info.fps, min_cutoff=1e6):
        found.append(face is not None)
        shapes.append(mouth_shape(face.landmarks, face.scheme) if face is not None else np.zeros(2, np.float32))
    audio, sr = load_audio(path, 16000)
    if seconds:
        audio = audio[: int(seconds * sr)]
    speech = Speech(audio=audio, sample_rate=sr)
    usable = np.array(found) & ((np.arange(len(found)) + 0.5) / info.fps < speech.duration)
    return speech, info.fps, np.stack(shapes), usable


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid-clips", default="0:400:2", help="start:stop:step over GRID s1's clips sorted by name")
    ap.add_argument("--faces", type=Path, default=DATA / "faces-dev" / "videos")
    ap.add_argument("--out", type=Path, default=REPO / "checkpoints" / "mouth_map.npz")
    args = ap.parse_args()
    from studio.video.io import probe

    t0 = time.time()
    start, stop, step = (int(v) for v in args.grid_clips.split(":"))
    grid = sorted((DATA / "grid-s1" / "clips").glob("*.mp4"))[start:min(stop, 400):step]
    faces = sorted(args.faces.glob("*.mp4")) if args.faces.is_dir() else []
    recs, names = [], []
    for path in grid:
        recs.append(recording(path))
        names.append(f"grid_s1/{path.stem}")
    for path in faces:
        seconds = probe(path).duration * TRAIN_SHARE
        recs.append(recording(path, seconds))
        names.append(f"faces-dev/{path.stem}@0-{seconds:.1f}s")
    print(f"{len(recs)} recordings, {sum(int(r[3].sum()) for r in recs)} frames ({time.time() - t0:.0f} s)", flush=True)
    fit_and_save(recs, names, args.out, f"GRID s1 clips {args.grid_clips} by name")
    print(f"in {time.time() - t0:.0f} s")
    return 0


def fit_and_save(recs, names, out: Path, grid_note: str) -> dict:
    """Choose the ridge on every 5th recording (held out), refit on all, write the .npz; returns its meta."""
    from studio.lipsync.metrics import pearson
    from studio.lipsync.speech_to_mouth import RIDGES, fit_general, frame_features

    def z(r):
        y = r[2][r[3]].astype(np.float64)
        return (y - y.mean(0)) / (y.std(0) + 1e-6)

    held = set(range(0, len(recs), 5))
    scores = {}
    for ridge in RIDGES:
        w = fit_general([r for i, r in enumerate(recs) if i not in held], ridge)
        scores[ridge] = float(np.mean([pearson((frame_features(*recs[i][:2], len(recs[i][2]))[recs[i][3]] @ w)[:, 0],
                                               z(recs[i])[:, 0]) for i in held]))
    ridge = max(scores, key=scores.get)
    w = fit_general(recs, ridge)
    fitted = np.vstack([frame_features(*r[:2], len(r[2]))[r[3]] @ w for r in recs])
    out_q = np.percentile(fitted, np.linspace(0, 100, 51), axis=0)
    meta = dict(what="ridge regression: studio.lipsync.speech_to_mouth.frame_features (log-mel, +-0.2 s) -> "
                     "z-scored inner-lip opening and mouth width per video frame",
                ridge=ridge, heldout_corr=round(scores[ridge], 4), ridge_scores={str(k): round(v, 4) for k, v in scores.items()}, frames=int(len(fitted)),
                trained_on=names,
                data=f"GRID s1 (Cooke, Barker, Cunningham & Shao 2006, CC BY 4.0), {grid_note}; faces-dev (see ../shared/data/faces-dev/README.md), first 70 % of each video",
                made_by="scripts/fit_mouth_map.py", date=str(date.today()))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".partial.npz")
    np.savez(tmp, weights=w.astype(np.float32), out_q=out_q.astype(np.float32), meta=json.dumps(meta))
    tmp.replace(out)
    print(json.dumps({k: v for k, v in meta.items() if k != "trained_on"}, indent=1))
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")
    return meta


if __name__ == "__main__":
    raise SystemExit(main())
