"""Lip-sync quality on talking clips of one speaker.

    python benchmarks/lipsync_quality.py DATA_DIR --engine visemes|wav2lip [--model NAME] [--expert PATH]
                                         [--start N] [--limit N] [--out JSON]

DATA_DIR is a folder of talking clips of one person (or holds them in clips/). Protocol, per evaluation clip B
(clips from --start, --limit of them): pick a driving clip A (see choose_drivers: a different clip per pair, spread
evenly over the clips outside the evaluation range); drive A's video with B's audio; track the face mesh on the
result and on B; compare the mouths (landmarks normalised for scale and pose):
  - open_corr: Pearson correlation of the mouth-opening curves (generated vs B's real mouth);
  - lmd: mean lip-landmark distance in inter-ocular units;
  - offset: the lag (frames) maximising that correlation (0 = in sync);
and the same numbers for the baseline "A unchanged" (no lip-sync). For a neural engine, a reconstruction run also
gives mouth PSNR/SSIM: B's own frames with the lower half masked, the reference frames taken from clip A, B's audio;
generated vs real lower half of the face crop; "A unchanged" there means pasting A's reference crop. A second
reconstruction takes the references from B itself, half a clip away (psnr_same_clip_ref), closer to real use.
With --expert (a SyncNet checkpoint) the sync confidence of the expert on generated crops is reported too.
With --tiles DIR, one PNG per pair: lower-face crops at 8 moments, rows generated / real B / A unchanged.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def clips_in(data: Path) -> list[Path]:
    folder = data / "clips" if (data / "clips").is_dir() else data
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpg"})


def choose_drivers(clips: list[Path], evaluation: list[Path], length, usable=lambda c: True) -> dict[Path, Path]:
    """Driving clip A for each evaluation clip B: deterministic, never B, a different A per pair, spread over the set.

    The pool is every clip outside the evaluation range (all clips but B when that leaves fewer than the pairs),
    sorted by name. Pair i starts at pool position floor((i + 0.5) * len(pool) / pairs), a stride through the whole
    sorted list, and takes the first clip from there on (wrapping) that is not B, not yet used, usable and at least
    as long as B (within one frame); when no unused usable clip is long enough it takes the first unused usable one
    (the pipeline ping-pongs a shorter video). `length(clip)` gives a clip's duration in seconds; `usable(clip)`
    says whether a clip can drive (here: a face tracked in every frame; GRID s1's bbizzn.mp4 starts with 12 grey
    frames, for instance).
    """
    inside = set(evaluation)
    outside = [c for c in clips if c not in inside]
    chosen: dict[Path, Path] = {}
    used: set[Path] = set()
    n = len(evaluation)
    for i, b in enumerate(evaluation):
        pool = outside if len(outside) >= n else [c for c in clips if c != b]
        start = int((i + 0.5) * len(pool) / n)
        order = [pool[(start + k) % len(pool)] for k in range(len(pool))]
        free = [c for c in order if c != b and c not in used] or [c for c in order if c != b]
        fits = (c for c in free if length(c) >= length(b) - 0.04 and usable(c))
        a = next(fits, None) or next((c for c in free if usable(c)), None)
        if a is None:
            raise SystemExit(f"no usable driving clip for {b.name}")
        chosen[b] = a
        used.add(a)
    return chosen


def track(path: Path, tiles: int = 0):
    """Per-frame normalised landmarks (frames, 478, 2) of a video, or None where no face was found; with tiles > 0
    also (landmarks, crops): 96 px lower-face crops at `tiles` evenly spaced frames."""
    from studio.face import track_with_frames
    from studio.face.landmarks import normalise_landmarks
    from studio.lipsync.neural import face_crop
    from studio.video.io import probe, read_frames

    info = probe(path)
    out, crops, prev = [], [], None
    total = max(1, int(round(info.duration * info.fps)))
    marks = {int((k + 0.5) * total / tiles) for k in range(tiles)} if tiles else set()
    for t, (frame, face) in enumerate(track_with_frames(read_frames(info), info.fps)):
        out.append(None if face is None else normalise_landmarks(face.landmarks))
        prev = face or prev
        if t in marks and prev is not None and len(crops) < tiles:
            crops.append(face_crop(frame, prev.box, 96)[48:])
    if not tiles:
        return out
    crops += [np.zeros((48, 96, 3), np.uint8)] * (tiles - len(crops))
    return out, crops


def mouth_curves(landmarks):
    from studio.face.landmarks import lip_indices

    lips = lip_indices("mediapipe478")
    opening = np.array([np.nan if lm is None else float(np.linalg.norm(lm[14] - lm[13])) for lm in landmarks])
    if np.isnan(opening).all():
        return opening, None
    fill = np.nanmean(opening)
    opening = np.where(np.isnan(opening), fill, opening)
    lip_pts = np.stack([lm[lips] if lm is not None else np.full((len(lips), 2), np.nan) for lm in landmarks])
    return opening, lip_pts


def compare(gen_lms, real_lms) -> dict:
    from studio.lipsync.metrics import best_lag, lip_distance, pearson

    g_open, g_lips = mouth_curves(gen_lms)
    r_open, r_lips = mouth_curves(real_lms)
    n = min(len(g_open), len(r_open))
    ok = ~(np.isnan(g_lips[:n]).any(axis=(1, 2)) | np.isnan(r_lips[:n]).any(axis=(1, 2)))
    return dict(open_corr=pearson(g_open[:n], r_open[:n]), offset=best_lag(g_open[:n], r_open[:n]),
                lmd=lip_distance(g_lips[:n][ok], r_lips[:n][ok]))


def reconstruction(engine, clip_b: Path, clip_a: Path, expert=None) -> dict:
    """Neural engines: B's masked frames + A's frames as references + B's audio -> B's lower face."""
    from studio.audio.io import load_audio
    from studio.face import track_with_frames
    from studio.lipsync.metrics import psnr, ssim
    from studio.lipsync.neural import face_crop, model_inputs
    from studio.types import Speech
    from studio.video.io import probe, read_frames

    def crops(path):
        info = probe(path)
        out, prev = [], None
        for frame, face in track_with_frames(read_frames(info), info.fps):
            face = face or prev
            prev = face
            out.append(face_crop(frame, face.box, engine.img_size))
        return np.stack(out), info.fps

    b, fps = crops(clip_b)
    a, _ = crops(clip_a)
    n = min(len(a), len(b))
    b, a = b[:n], a[:n]
    audio, sr = load_audio(clip_b, 16000)
    engine.prepare(Speech(audio, sr), fps, n)
    gen = engine._infer(model_inputs(b, a), engine.windows[:n][:, None])
    s = engine.img_size
    lower = slice(s // 2, s)
    res = dict(psnr=float(np.mean([psnr(g[lower], r[lower]) for g, r in zip(gen, b)])),
               ssim=float(np.mean([ssim(g[lower], r[lower]) for g, r in zip(gen, b)])),
               psnr_unchanged=float(np.mean([psnr(x[lower], r[lower]) for x, r in zip(a, b)])),
               ssim_unchanged=float(np.mean([ssim(x[lower], r[lower]) for x, r in zip(a, b)])))
    # secondary: references from B itself, half a clip away (same light and pose, another mouth), which is closer
    # to real use, where each frame is its own reference
    same = engine._infer(model_inputs(b, np.roll(b, n // 2, axis=0)), engine.windows[:n][:, None])
    res["psnr_same_clip_ref"] = float(np.mean([psnr(g[lower], r[lower]) for g, r in zip(same, b)]))
    if expert is not None:
        res["sync_conf"] = sync_confidence(expert, gen, engine.windows[:n], fps)
        res["sync_conf_real"] = sync_confidence(expert, b, engine.windows[:n], fps)
    return res


def sync_confidence(expert, crops, windows, fps) -> float:
    """Mean cosine similarity the expert gives 5-frame windows of crops and their audio (higher = more in sync)."""
    import torch

    s = crops.shape[1]
    scores = []
    with torch.no_grad():
        for t in range(0, len(crops) - 5, 5):
            faces = torch.from_numpy(crops[t:t + 5, s // 2:]).float().div(255)  # (5, S/2, S, 3)
            faces = faces.permute(0, 3, 1, 2).reshape(1, 15, s // 2, s)
            mel = torch.from_numpy(windows[t])[None, None]
            a, v = expert(mel, faces)
            scores.append(float(torch.nn.functional.cosine_similarity(a, v)))
    return float(np.mean(scores)) if scores else float("nan")


def save_tiles(path: Path, rows) -> None:
    """A PNG with one row of crops per entry of rows (generated, real B, A unchanged)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    grid = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--engine", default="visemes")
    ap.add_argument("--model")
    ap.add_argument("--expert", help="SyncNet checkpoint for sync confidence (e.g. the model's expert.pt)")
    ap.add_argument("--start", type=int, default=0, help="first evaluation clip (sorted by name)")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/results/lipsync_quality.json")
    ap.add_argument("--tiles", type=Path, help="folder for one PNG of mouth crops per pair")
    args = ap.parse_args()

    from studio import Studio
    from studio.video.io import probe

    clips = clips_in(args.data)
    evaluation = clips[args.start: args.start + args.limit]
    if len(evaluation) < 2:
        print("need at least two clips", file=sys.stderr)
        return 1
    lengths: dict[Path, float] = {}

    def length(c: Path) -> float:
        if c not in lengths:
            lengths[c] = probe(c).duration
        return lengths[c]

    tracked: dict[Path, list] = {}

    def usable(c: Path) -> bool:
        if c not in tracked:
            tracked[c] = track(c)
        return all(lm is not None for lm in tracked[c])

    drivers = choose_drivers(clips, evaluation, length, usable)
    skipped = sorted(c.name for c in tracked if not usable(c))
    if skipped:
        print(f"skipped as driving videos (face not tracked in every frame): {', '.join(skipped)}")
    distinct = len(set(drivers.values()))
    print(f"{len(evaluation)} pairs, {distinct} distinct driving videos (of {len(clips)} clips):", flush=True)
    for b in evaluation:
        print(f"  video {drivers[b].name} ({length(drivers[b]):.2f} s) <- audio {b.name} ({length(b):.2f} s)")
    studio = Studio(device="auto")
    engine = expert = None
    if args.engine == "wav2lip":
        from studio.lipsync.neural import Wav2LipEngine

        engine = Wav2LipEngine(args.model, device=studio.device)
    if args.expert:
        from studio.checkpoints import build_model, load_checkpoint

        loaded = load_checkpoint(args.expert)
        if loaded.kind != "syncnet":
            ap.error(f"--expert {args.expert} is a {loaded.kind} checkpoint; give a sync expert (a model's expert.pt)")
        expert = build_model(loaded)
    rows = []
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="studio-lsq-") as tmp:
        for i, b in enumerate(evaluation):
            a = drivers[b]
            out = Path(tmp) / f"{i}.mp4"
            studio.lipsync(a, b, out, engine=args.engine, model=args.model)
            if args.tiles:
                (real, real_t), (gen, gen_t), (unchanged, a_t) = track(b, 8), track(out, 8), track(a, 8)
                save_tiles(args.tiles / f"{i:02d}_{b.stem}_from_{a.stem}.png", [gen_t, real_t, a_t])
            else:
                real, gen, unchanged = track(b), track(out), tracked.get(a) or track(a)
            row = dict(a=a.name, b=b.name, **compare(gen, real))
            base = compare(unchanged, real)
            row.update({f"{k}_unchanged": v for k, v in base.items()})
            if engine is not None:
                row.update(reconstruction(engine, b, a, expert))
            rows.append(row)
            print(f"{i + 1}/{len(evaluation)} audio {b.name} -> video {a.name}: corr {row['open_corr']:.3f} "
                  f"lmd {row['lmd']:.4f} offset {row['offset']}", flush=True)
    keys = [k for k in rows[0] if k not in ("a", "b")]
    summary = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    summary["offset_zero_fraction"] = float(np.mean([r["offset"] == 0 for r in rows]))
    summary["offset_median"] = float(np.median([r["offset"] for r in rows]))
    report = dict(engine=args.engine, model=args.model, data=str(args.data), clips=len(rows), start=args.start,
                  seconds=round(time.time() - t0, 1),
                  driver_rule="stride through the clips outside the evaluation range, sorted by name: pair i starts "
                              "at floor((i + 0.5) * pool / pairs), first unused clip at least as long as B with a face "
                              "tracked in every frame; drivers maps "
                              "each audio clip B to its driving video A",
                  driving_videos=distinct, skipped_drivers=skipped, drivers={b.name: drivers[b].name for b in evaluation},  # audio B: video A
                  summary=summary, rows=rows)
    print(f"\nengine {args.engine}{' / ' + args.model if args.model else ''}, {len(rows)} pairs, "
          f"{distinct} distinct driving videos")
    print(f"{'measure':<22}{'lip-synced':>12}{'A unchanged':>14}")
    for k in ("open_corr", "lmd", "offset"):
        print(f"{k:<22}{summary[k]:>12.4f}{summary[k + '_unchanged']:>14.4f}")
    for k in ("psnr", "ssim"):
        if k in summary:
            print(f"mouth {k:<16}{summary[k]:>12.3f}{summary[k + '_unchanged']:>14.3f}")
    if "psnr_same_clip_ref" in summary:
        print(f"{'mouth psnr, own refs':<22}{summary['psnr_same_clip_ref']:>12.3f}   (references from B itself)")
    if "sync_conf" in summary:
        print(f"{'sync confidence':<22}{summary['sync_conf']:>12.3f}   (real B: {summary['sync_conf_real']:.3f})")
    print(f"offset 0 in {summary['offset_zero_fraction']:.0%} of pairs; median offset {summary['offset_median']:g}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
