"""Lip-sync on people the studio never trained on: each clip split in time, engines learn from the first part only.

    python benchmarks/anyface.py [--faces DIR] [--grid N] [--seconds S] [--engines a,b,...]
                                 [--out benchmarks/results/anyface.json] [--tiles benchmarks/results/anyface_tiles]

Protocol, per person (each video in ../shared/data/faces-dev/videos, and GRID s1 as one person made of N held-out
clips joined end to end): the first --seconds of the video are cut at 70 %; an engine may learn only from the first
part (train); the last 30 % (test) is lip-synced to its own sound, so the real frames are the ground truth. Measured
on the face mesh (the studio's tracker, the same for real and generated frames):
  - open_corr: Pearson correlation of the mouth-opening curves at lag 0;
  - lag: the shift (frames, within +-10) maximising that correlation; positive = the engine's mouth is late;
  - lmd: mean lip-landmark distance (landmarks normalised for position, scale and roll; inter-ocular units);
  - psnr / ssim: of the mouth region (lower half of the 96 px face crop at the real frame's box).
Engines are a registry of callables name -> f(train_video, test_video, test_audio, out_path) -> rendered video, so
more rows can be added with @engine("name"). Network rows that are not in the default run (slow on a CPU):
`personal-5min` (--personalize on the train part within 5 minutes) and `base-zero-shot` (its start, not tuned);
both re-sync the test part with reference frames from the train part (the real mouth is never in their input);
`wav2lip-s1` renders as `studio lipsync` does (each frame its own reference). `--engines NEW --merge` then runs
only those and keeps the other rows (and their tile rows, read back from the PNGs). One PNG per person:
mouth crops at 8 moments of the test part (4 evenly spaced, 4 of the widest real openings), one row per engine
under the real one. Every engine sees the test part's real frames (that is the protocol); an engine that leaves a
frame untouched (visemes v2 keeps a closed mouth that should stay closed) shows the real mouth there.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
TRAIN_SHARE = 0.7
MAX_LAG = 10
TILE_FRAMES = 8

Renderer = Callable[[Path, Path, Path, Path], Path]
ENGINES: dict[str, Renderer] = {}


def engine(name: str):
    def register(fn: Renderer) -> Renderer:
        ENGINES[name] = fn
        return fn
    return register


def _studio():
    from studio import Studio

    return Studio(device="cpu")


@engine("visemes-v1")
def _visemes_v1(train: Path, test: Path, audio: Path, out: Path) -> Path:
    """The first weights-free engine: warped lips and a flat drawn interior; learns nothing from the train part."""
    return _studio().lipsync(test, audio, out, engine="visemes-v1").path


@engine("visemes-v2")
def _visemes_v2(train: Path, test: Path, audio: Path, out: Path) -> Path:
    """Exemplars of the person's own mouth and their voice-to-mouth map, both from the train part only."""
    return _studio().lipsync(test, audio, out, engine="visemes", footage=str(train)).path


@engine("wav2lip-s1")
def _wav2lip_s1(train: Path, test: Path, audio: Path, out: Path) -> Path:
    """The bundled s1 model (trained on GRID speaker s1), zero-shot."""
    return _studio().lipsync(test, audio, out, engine="wav2lip", model=str(REPO / "checkpoints" / "s1.pt")).path


CONSENT = ("benchmark on public sample footage (faces-dev, GRID s1); the models stay on this machine and no render "
           "is published")
PERSONAL_BUDGET_MINUTES = 5.0
NETWORK_REPORTS: dict = {}  # (person, engine) -> what the network row did (steps, budget, fallback), into the JSON


def _fair_resync(model: str, train: Path, test: Path, audio: Path, out: Path) -> Path:
    """The test part re-synced to its own sound by a generator whose reference frames come from the train part
    (personalize.resync_frames): with each frame as its own reference, the real mouth would be in the input."""
    from studio.audio.io import load_audio
    from studio.face import track_with_frames
    from studio.lipsync.personalize import resync_frames
    from studio.types import Speech
    from studio.video.io import VideoWriter, probe, read_frames

    info = probe(test)
    pairs = list(track_with_frames(read_frames(info), info.fps))
    samples, sr = load_audio(audio, 16000)
    frames = resync_frames(model, [f for f, _ in pairs], [fc for _, fc in pairs], Speech(samples, sr), info.fps,
                           "cpu", references=train)
    with VideoWriter(out, info.width, info.height, info.fps, audio_path=audio, crf=12) as writer:
        for frame in frames:
            writer.write(frame)
    return out


def _personalised(train: Path, test: Path, audio: Path, out: Path, budget: float, base=None) -> Path:
    """Personalise on the train part within ``budget`` minutes (the studio's own --personalize, which itself holds
    out the train part's last 30 % for its report), then the fair re-sync of the test part."""
    from dataclasses import asdict, replace

    import torch

    from studio.lipsync import personalize as P

    torch.set_num_threads(1)
    settings = replace(P.DEFAULT_SETTINGS, budget_minutes=budget, compare_base=False, base=base)
    report = P.personalize(train, CONSENT, settings, "cpu")
    NETWORK_REPORTS[(test.stem.rsplit("_test", 1)[0], f"personal-{budget:g}min")] = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(report).items()}
    if report.model is None:  # the studio falls back to the weights-free engine, and so does its row
        return _visemes_v2(train, test, audio, out)
    return _fair_resync(str(report.model), train, test, audio, out)


@engine("personal-5min")
def _personal_5(train: Path, test: Path, audio: Path, out: Path) -> Path:
    """The default base model personalised on the train part within 5 minutes (not in the default run: slow)."""
    return _personalised(train, test, audio, out, PERSONAL_BUDGET_MINUTES)


@engine("base-zero-shot")
def _base_zero_shot(train: Path, test: Path, audio: Path, out: Path) -> Path:
    """The start of personalisation (studio.lipsync.personalize.default_base), not fine-tuned; fair re-sync."""
    from studio.lipsync.personalize import default_base

    return _fair_resync(default_base(), train, test, audio, out)


DEFAULT_ENGINES = ("visemes-v1", "visemes-v2", "wav2lip-s1")  # the network rows above take minutes per person


def ffmpeg(*args: str) -> None:
    from studio.video.io import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", *args], check=True)


def cut(src: Path, start: float, length: float, out: Path) -> Path:
    """Frame-exact cut (re-encoded at high quality; the sound cut at the same times)."""
    ffmpeg("-i", str(src), "-ss", f"{start:.3f}", "-t", f"{length:.3f}", "-c:v", "libx264", "-crf", "12",
           "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "160k", str(out))
    return out


def join_grid(clips: list[Path], out: Path) -> Path:
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{c}'\n" for c in clips))
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c:v", "libx264", "-crf", "12", "-preset", "veryfast",
           "-pix_fmt", "yuv420p", "-r", "25", "-c:a", "aac", "-b:a", "160k", str(out))
    return out


def people(args, tmp: Path) -> list[tuple[str, Path]]:
    found = []
    videos = args.faces / "videos" if (args.faces / "videos").is_dir() else args.faces
    if videos.is_dir():
        found += [(p.stem, p) for p in sorted(videos.glob("*.mp4"))]
    grid = sorted((DATA / "grid-s1" / "clips").glob("*.mp4"))
    if args.grid and grid:
        found.append(("grid_s1", join_grid(grid[400:400 + args.grid], tmp / "grid_s1.mp4")))
    if args.only:
        found = [(n, p) for n, p in found if n in args.only.split(",")]
    return found


def track(path: Path, boxes=None):
    """Normalised landmarks per frame (None where no face), the boxes used, and 96 px lower-face crops at
    ``boxes`` (the real video's boxes, so real and generated crops cover the same pixels)."""
    from studio.face import track_with_frames
    from studio.face.landmarks import normalise_landmarks
    from studio.lipsync.neural import face_crop
    from studio.video.io import probe, read_frames

    info = probe(path)
    lms, own, crops, prev = [], [], [], None
    for t, (frame, face) in enumerate(track_with_frames(read_frames(info), info.fps)):
        lms.append(None if face is None else normalise_landmarks(face.landmarks))
        prev = face.box if face is not None else prev
        own.append(prev)
        box = boxes[min(t, len(boxes) - 1)] if boxes is not None else prev
        crops.append(face_crop(frame, box, 96)[48:] if box is not None else np.zeros((48, 96, 3), np.uint8))
    return lms, own, np.stack(crops), info.fps


def measure(gen, real) -> dict:
    from lipsync_quality import mouth_curves
    from studio.lipsync.metrics import best_lag, lip_distance, pearson, psnr, ssim

    (g_lms, _, g_crops, _), (r_lms, _, r_crops, _) = gen, real
    g_open, g_lips = mouth_curves(g_lms)
    r_open, r_lips = mouth_curves(r_lms)
    n = min(len(g_open), len(r_open))
    ok = ~(np.isnan(g_lips[:n]).any(axis=(1, 2)) | np.isnan(r_lips[:n]).any(axis=(1, 2)))
    return dict(open_corr=round(pearson(g_open[:n], r_open[:n]), 4),
                lag=best_lag(g_open[:n], r_open[:n], MAX_LAG),
                lmd=round(lip_distance(g_lips[:n][ok], r_lips[:n][ok]), 5),
                psnr=round(float(np.mean([psnr(a, b) for a, b in zip(g_crops[:n], r_crops[:n])])), 2),
                ssim=round(float(np.mean([ssim(a, b) for a, b in zip(g_crops[:n], r_crops[:n])])), 4))


def tile_frames(n: int, real_open: np.ndarray) -> list[int]:
    """TILE_FRAMES moments of the test part: half evenly spaced, half the widest real openings."""
    even = np.linspace(0, n - 1, TILE_FRAMES // 2 + 2)[1:-1].astype(int)
    wide = [int(i) for i in np.argsort(-real_open[:n]) if all(abs(int(i) - j) > 5 for j in even)]
    return sorted(set(even.tolist()) | set(wide[: TILE_FRAMES - len(even)]))


LABEL_W = 84


def read_tile(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """The crops of an existing tile, by row name (for --merge): rows of 48 px, crops of 96 px after the label."""
    import cv2

    grid = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    out = {}
    for k, name in enumerate(names):
        row = grid[48 * k: 48 * (k + 1), LABEL_W:]
        out[name] = np.stack([row[:, 96 * i: 96 * (i + 1)] for i in range(row.shape[1] // 96)])
    return out


def save_tile(path: Path, names: list[str], crops: list[np.ndarray]) -> None:
    """Rows: real, then each engine; crops: (TILE_FRAMES, 48, 96, 3) per row."""
    import cv2

    label_w = LABEL_W
    rows = []
    for name, c in zip(names, crops):
        row = np.concatenate(list(c), axis=1)
        label = np.full((row.shape[0], label_w, 3), 255, np.uint8)
        cv2.putText(label, name[:12], (2, row.shape[0] // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1,
                    cv2.LINE_AA)
        rows.append(np.concatenate([label, row], axis=1))
    grid = np.concatenate(rows, axis=0)  # kept at crop size: a PNG of a few hundred KB at most
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=DATA / "faces-dev")
    ap.add_argument("--grid", type=int, default=10, help="GRID s1 clips (from no. 400) joined into one person; 0: none")
    ap.add_argument("--seconds", type=float, default=0, help="use only the first S seconds of each video (0: all)")
    ap.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                    help=f"comma-separated, of: {', '.join(ENGINES)} (default: {', '.join(DEFAULT_ENGINES)})")
    ap.add_argument("--only", help="comma-separated person names (video stems, grid_s1)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "anyface.json")
    ap.add_argument("--tiles", type=Path, default=REPO / "benchmarks" / "results" / "anyface_tiles")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other engines' rows and tile crops from the existing JSON (add or rerun some rows)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from studio.video.io import probe

    names = [e for e in args.engines.split(",") if e]
    unknown = [e for e in names if e not in ENGINES]
    if unknown:
        ap.error(f"unknown engine(s) {', '.join(unknown)}; known: {', '.join(ENGINES)}")
    rows, t0, tiles = [], time.time(), {}
    old_tiles = json.loads(args.out.read_text()).get("tiles", {}) if args.merge and args.out.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="studio-anyface-") as tmp_name:
        tmp = Path(tmp_name)
        for person, video in people(args, tmp):
            total = probe(video).duration
            length = min(total, args.seconds) if args.seconds else total
            split = round(length * TRAIN_SHARE, 3)
            train = cut(video, 0.0, split, tmp / f"{person}_train.mp4")
            test = cut(video, split, length - split, tmp / f"{person}_test.mp4")
            audio = tmp / f"{person}_test.wav"
            ffmpeg("-i", str(test), "-vn", "-ac", "1", "-ar", "16000", str(audio))
            real = track(test)
            from lipsync_quality import mouth_curves

            picks = tile_frames(len(real[2]), mouth_curves(real[0])[0])
            tile = {"real": real[2][picks]}
            for name in names:
                out = tmp / f"{person}_{name}.mp4"
                t1 = time.time()
                ENGINES[name](train, test, audio, out)
                seconds = time.time() - t1
                gen = track(out, boxes=real[1])
                row = dict(person=person, engine=name, train_s=split, test_s=round(length - split, 3),
                           render_s=round(seconds, 1), **measure(gen, real))
                if (person, name) in NETWORK_REPORTS:
                    row["personalization"] = NETWORK_REPORTS[(person, name)]
                rows.append(row)
                tile[name] = gen[2][np.minimum(picks, len(gen[2]) - 1)]
                print(f"{person:<28}{name:<14}corr {row['open_corr']:6.3f}  lag {row['lag']:+3d}  "
                      f"lmd {row['lmd']:.4f}  psnr {row['psnr']:5.2f}  ssim {row['ssim']:.3f}  "
                      f"({seconds:.0f} s)", flush=True)
            png = args.tiles / f"{person}.png"
            if args.merge and png.is_file() and person in old_tiles:
                kept = read_tile(png, old_tiles[person])
                tile = {"real": tile["real"], **{k: v for k, v in kept.items() if k not in tile}, **tile}
            save_tile(png, list(tile), list(tile.values()))
            tiles[person] = list(tile)
    if args.merge and args.out.is_file():
        done = {(r["person"], r["engine"]) for r in rows}
        old = [r for r in json.loads(args.out.read_text())["rows"] if (r["person"], r["engine"]) not in done]
        rows = old + rows
        tiles = {**old_tiles, **tiles}
        names = list(dict.fromkeys([r["engine"] for r in rows]))
    summary = {}
    for name in names:
        mine = [r for r in rows if r["engine"] == name]
        if mine:
            summary[name] = dict(
                people=len(mine), **{k: round(float(np.mean([r[k] for r in mine])), 4)
                                     for k in ("open_corr", "lmd", "psnr", "ssim")},
                lag_median=float(np.median([r["lag"] for r in mine])),
                lag_zero_share=round(float(np.mean([abs(r["lag"]) <= 1 for r in mine])), 3))
    report = dict(protocol=f"first {TRAIN_SHARE:.0%} of each video to learn from, last {1 - TRAIN_SHARE:.0%} "
                           "re-synced to its own audio; real frames are the ground truth",
                  seconds_cap=args.seconds or None, grid_clips=args.grid, max_lag=MAX_LAG,
                  minutes=round((time.time() - t0) / 60, 1), summary=summary, rows=rows, tiles=tiles)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\n{'engine':<14}{'corr':>7}{'lag med':>9}{'|lag|<=1':>9}{'lmd':>8}{'psnr':>7}{'ssim':>7}")
    for name, s in summary.items():
        print(f"{name:<14}{s['open_corr']:7.3f}{s['lag_median']:9.1f}{s['lag_zero_share']:9.0%}{s['lmd']:8.4f}"
              f"{s['psnr']:7.2f}{s['ssim']:7.3f}")
    print(f"wrote {args.out} and tiles in {args.tiles}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
