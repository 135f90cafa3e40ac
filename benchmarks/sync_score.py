"""Fit and calibrate the audio-visual sync score (studio.lipsync.sync_score) on real talking clips.

    python benchmarks/sync_score.py [--data ../shared/data] [--cache DIR] [--fit] [--grid-step 4]

Clips: every --grid-step'th GRID s1 clip (sorted by name) and the faces-dev videos cut into 5 s pieces. Split:
alternate clips/pieces go to the calibration half (fits the regressor with --fit, which writes
checkpoints/sync_regressor.npz) and the test half (scored here). Each test piece is scored with its own speech
(real) and with the speech of another test piece of the same set (mismatched: the face, the other audio).
A leave-one-person-out row refits on everything but one faces-dev person and scores that person's test pieces,
to see whether the regressor carries to people it never saw. Prints a table, writes
benchmarks/results/sync_score.json.
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

PIECE_SECONDS = 5.0
LAMBDAS = (3.0, 10.0, 30.0, 100.0)


def track_clip(path: Path, cache: Path) -> dict:
    """Normalised landmarks (frames, 478, 2) and 16 kHz audio of a clip, cached by name."""
    from studio.audio.io import load_audio
    from studio.face import track_with_frames
    from studio.face.landmarks import normalise_landmarks
    from studio.video.io import probe, read_frames

    dst = cache / f"{path.stem}.npz"
    if not dst.exists():
        info = probe(path)
        lms = [np.full((478, 2), np.nan, np.float32) if f is None else normalise_landmarks(f.landmarks)
               for _, f in track_with_frames(read_frames(info), info.fps)]
        audio, _ = load_audio(path, 16000)
        np.savez(dst, lm=np.stack(lms).astype(np.float16), audio=audio.astype(np.float32), fps=info.fps)
    with np.load(dst) as z:
        return dict(lm=z["lm"].astype(np.float32), audio=z["audio"], fps=float(z["fps"]))


def pieces(data: Path, cache: Path, grid_step: int) -> list[dict]:
    """[{name, person, set, half, opening, audio, fps}] for every GRID clip and faces-dev piece."""
    from studio.lipsync.sync_score import observed_opening

    out = []
    grid = sorted((data / "grid-s1" / "clips").glob("*.mp4"))[::grid_step]
    for i, clip in enumerate(grid):
        d = track_clip(clip, cache)
        opening = np.array([np.nan if np.isnan(lm).any() else observed_opening(lm) for lm in d["lm"]])
        out.append(dict(name=clip.stem, person="s1", set="grid", half="fit" if i % 2 == 0 else "test",
                        opening=opening, audio=d["audio"], fps=d["fps"]))
    k = 0
    for clip in sorted((data / "faces-dev" / "videos").glob("*.mp4")):
        d = track_clip(clip, cache)
        opening = np.array([np.nan if np.isnan(lm).any() else observed_opening(lm) for lm in d["lm"]])
        fps, n = d["fps"], int(round(PIECE_SECONDS * d["fps"]))
        for j in range(len(opening) // n):
            a = j * n
            out.append(dict(name=f"{clip.stem}@{j * PIECE_SECONDS:g}s", person=clip.stem, set="faces-dev",
                            half="fit" if k % 2 == 0 else "test", opening=opening[a:a + n],
                            audio=d["audio"][int(a / fps * 16000):int((a + n) / fps * 16000)], fps=fps))
            k += 1
    return out


def design(piece: dict, audio=None) -> tuple[np.ndarray, np.ndarray]:
    from studio.lipsync.sync_score import speech_features
    from studio.types import Speech

    speech = Speech(piece["audio"] if audio is None else audio, 16000)
    return speech_features(speech, piece["fps"], len(piece["opening"])), piece["opening"]


def fit_ridge(train: list[dict], lam: float) -> tuple[np.ndarray, float]:
    """Ridge from the speech features to the opening, both high-passed as the score compares them."""
    from studio.lipsync.sync_score import highpass

    xs, ys = [], []
    for p in train:
        x, y = design(p)
        ok = np.isfinite(y)
        if ok.sum() < 12 or y[ok].std() < 1e-6:
            continue
        y = np.where(ok, y, y[ok].mean())
        y = highpass((y - y.mean()) / y.std(), p["fps"])  # per-clip z-score: people's mouths differ in size
        xs.append(highpass(x, p["fps"])[ok])
        ys.append(y[ok])
    x, y = np.concatenate(xs), np.concatenate(ys)
    w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
    return w.astype(np.float32), 0.0


def score(p: dict, w, audio=None):
    from studio.lipsync.sync_score import score_curves, speech_activity
    from studio.types import Speech

    x, y = design(p, audio)
    n = len(y)
    act = speech_activity(Speech(p["audio"] if audio is None else audio, 16000), p["fps"], n)
    return score_curves(x @ w, y, p["fps"], act)


def mismatched_audio(p: dict, pool: list[dict]) -> np.ndarray:
    """The speech of the next piece in the pool from another clip (another person first), cut/padded to p's length."""
    others = [q for q in pool if q["person"] != p["person"]] or [q for q in pool if q["name"] != p["name"]]
    idx = pool.index(p) if p in pool else 0
    q = next((o for o in pool[idx + 1:] + pool[:idx] if o in others), others[0])
    need = len(p["audio"])
    a = q["audio"][:need]
    return np.pad(a, (0, need - len(a)))


def summarise(values) -> dict:
    v = np.array([x for x in values if x is not None], float)
    if not len(v):
        return {}
    return dict(n=len(v), median=round(float(np.median(v)), 3), mean=round(float(v.mean()), 3),
                p10=round(float(np.percentile(v, 10)), 3), p90=round(float(np.percentile(v, 90)), 3),
                min=round(float(v.min()), 3), max=round(float(v.max()), 3))


def auc(pos, neg) -> float:
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
                 / (len(pos) * len(neg)))


def evaluate(test: list[dict], w) -> dict:
    rows = {}
    for name, sel in (("grid", [p for p in test if p["set"] == "grid"]),
                      ("faces-dev", [p for p in test if p["set"] == "faces-dev"])):
        if not sel:
            continue
        real = [score(p, w) for p in sel]
        mis = [score(p, w, mismatched_audio(p, sel if name == "faces-dev" else sel)) for p in sel]
        r_real, r_mis = [s.correlation for s in real], [s.correlation for s in mis]
        rows[name] = dict(real=summarise(r_real), mismatched=summarise(r_mis),
                          score_real=summarise([s.score for s in real]),
                          score_mismatched=summarise([s.score for s in mis]),
                          auc=round(auc([x for x in r_real if x is not None], [x for x in r_mis if x is not None]), 3),
                          lag_real=summarise([s.lag_frames for s in real]),
                          weak_fraction_real=round(float(np.mean([bool(s.weak_segments) for s in real])), 3),
                          weak_fraction_mismatched=round(float(np.mean([bool(s.weak_segments) for s in mis])), 3))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, help="folder for the tracked landmarks (default: a temporary folder)")
    ap.add_argument("--grid-step", type=int, default=4)
    ap.add_argument("--fit", action="store_true", help="refit the regressor and write checkpoints/sync_regressor.npz")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sync_score.json")
    args = ap.parse_args()
    from studio.lipsync.sync_score import OFFSETS, REGRESSOR_FILE, SPAN, BANDS, load_regressor

    cache = args.cache or Path(tempfile.mkdtemp(prefix="sync-bench-"))
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    allp = pieces(args.data, cache, args.grid_step)
    fit, test = [p for p in allp if p["half"] == "fit"], [p for p in allp if p["half"] == "test"]
    print(f"{len(fit)} calibration pieces, {len(test)} test pieces (tracked in {time.time() - t0:.0f} s)")
    path = REPO / "checkpoints" / REGRESSOR_FILE
    if args.fit:
        # lambda: fitted on the first half of the calibration pieces, chosen on the second
        inner_a, inner_b = fit[0::2], fit[1::2]
        best = max(LAMBDAS, key=lambda lam: np.nanmean(
            [s.correlation or 0 for s in (score(p, fit_ridge(inner_a, lam)[0]) for p in inner_b)]))
        w, b = fit_ridge(fit, best)
        meta = dict(what="ridge regression: z-scored log-mel (studio.lipsync.sync_score.speech_features) -> "
                         "z-scored inner-lip opening per video frame",
                    lam=best, offsets_s=[float(o) for o in OFFSETS], span_s=SPAN, bands=BANDS,
                    trained_on=dict(grid_s1=[p["name"] for p in fit if p["set"] == "grid"],
                                    faces_dev=[p["name"] for p in fit if p["set"] == "faces-dev"]),
                    frames=int(sum(np.isfinite(p["opening"]).sum() for p in fit)),
                    data="GRID s1 (Cooke, Barker, Cunningham & Shao 2006, CC BY 4.0) every "
                         f"{args.grid_step}th clip by name, even positions; faces-dev (MIT-licensed example clips, "
                         "see ../shared/data/faces-dev/README.md) 5 s pieces, even positions",
                    made_by="benchmarks/sync_score.py --fit", date=time.strftime("%Y-%m-%d"))
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, weights=w, bias=np.float32(b), meta=np.array(json.dumps(meta)))
        tmp.replace(path)
        load_regressor.cache_clear()
        print(f"wrote {path} (lambda {best})")
    w, _, meta = load_regressor(str(path))
    rows = evaluate(test, w)
    # leave one faces-dev person out: refit without them, score their test pieces
    lopo = {}
    for person in sorted({p["person"] for p in allp if p["set"] == "faces-dev"}):
        wp, _ = fit_ridge([p for p in fit if p["person"] != person], meta.get("lam", 100.0))
        sel = [p for p in test if p["person"] == person]
        others = [p for p in test if p["set"] == "faces-dev"]
        lopo[person] = dict(real=[round(score(p, wp).correlation or 0, 3) for p in sel],
                            mismatched=[round(score(p, wp, mismatched_audio(p, others)).correlation or 0, 3)
                                        for p in sel])
    result = dict(test=rows, leave_one_person_out=lopo, regressor=dict(lam=meta.get("lam"), frames=meta.get("frames")),
                  pieces=dict(fit=len(fit), test=len(test)), seconds=round(time.time() - t0, 1))
    print(f"{'set':<10} {'real r median [p10, p90]':<28} {'mismatched r median [p10, p90]':<32} {'AUC':>5}  "
          f"score real / mismatched (median)")
    for name, r in rows.items():
        print(f"{name:<10} {r['real']['median']:>6.3f} [{r['real']['p10']:.3f}, {r['real']['p90']:.3f}]{'':<10} "
              f"{r['mismatched']['median']:>6.3f} [{r['mismatched']['p10']:.3f}, {r['mismatched']['p90']:.3f}]"
              f"{'':<14} {r['auc']:>5.3f}  {r['score_real']['median']:.2f} / {r['score_mismatched']['median']:.2f}")
    for person, r in lopo.items():
        print(f"left out {person}: real {np.median(r['real']):.3f}, mismatched {np.median(r['mismatched']):.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
