"""ROC AUC of `studio detect` on real talking clips vs the same clips re-synced by our engines.

    python benchmarks/detect.py [--data ../shared/data] [--work DIR] [--render-only] [--fit]

Set: 16 GRID s1 clips (every 44th by name, starting at the 2nd: none of the sync regressor's calibration clips)
and 8 five-second pieces of the faces-dev videos (two per person: at 2.5 s and 12.5 s, or at 0 s and the end for
the 10 s clip). Each is kept real (re-encoded by the studio's own writer, so the codec is no cue) and re-synced with another
clip's speech by `visemes` (v2), `visemes-v1` and `wav2lip` with checkpoints/s1.pt. The clips are split in halves
(alternating); 32 more real GRID clips and 7 more real faces-dev pieces (overlapping no test piece) join the
calibration half only, as the reference of what real footage looks like. The detector's logistic weights are fitted on the calibration half (--fit writes
checkpoints/detect_weights.npz) and the AUC is reported on the test half. Renders are kept in --work and reused.
Prints a table, writes benchmarks/results/detect.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PIECE = 5.0
ENGINES = (("visemes-v1", None), ("visemes", None), ("wav2lip", "s1"))  # "visemes" is v2


def sources(data: Path) -> list[dict]:
    """[{name, path, start, seconds, half}] of the real clips and pieces, deterministic."""
    grid = sorted((data / "grid-s1" / "clips").glob("*.mp4"))[1::44][:16]
    out = [dict(name=c.stem, path=c, start=0.0, seconds=None, set="grid") for c in grid]
    from studio.video.io import probe

    for v in sorted((data / "faces-dev" / "videos").glob("*.mp4")):
        d = probe(v).duration
        for start in ((2.5, 12.5) if d >= 17.6 else (0.0, round(d - PIECE - 0.05, 2))):
            out.append(dict(name=f"{v.stem}_{start:g}", path=v, start=start, seconds=PIECE, set="faces-dev"))
    for i, s in enumerate(out):
        s["half"] = "calibration" if i % 2 == 0 else "test"
    # more real footage for the calibration half only (no renders needed): what real clips look like is the
    # detector's reference. Other GRID clips, and faces-dev pieces that overlap no test piece.
    grid_all = sorted((data / "grid-s1" / "clips").glob("*.mp4"))
    # 32 more real GRID clips (the first refit with 16 called 3 of 24 other real GRID clips "likely re-synced")
    for c in grid_all[23::44][:16] + grid_all[12::44][:16]:
        out.append(dict(name=c.stem, path=c, start=0.0, seconds=None, set="grid", half="calibration", real_only=True))
    for v in sorted((data / "faces-dev" / "videos").glob("*.mp4")):
        d = probe(v).duration
        for start in (7.5, 22.5, 27.5):
            if d >= 17.6 and start + PIECE <= d:
                out.append(dict(name=f"{v.stem}_{start:g}", path=v, start=start, seconds=PIECE, set="faces-dev",
                                half="calibration", real_only=True))
    return out


def cut_real(src: dict, dst: Path) -> Path:
    """The real clip (or piece) through the studio's writer, with its own sound."""
    from studio.audio.io import load_audio, save_audio
    from studio.video.io import VideoWriter, probe, read_frames

    if dst.exists():
        return dst
    info = probe(src["path"])
    first = int(round(src["start"] * info.fps))
    n = int(round(src["seconds"] * info.fps)) if src["seconds"] else None
    audio, sr = load_audio(src["path"], 16000)
    a = int(src["start"] * sr)
    audio = audio[a: a + int(src["seconds"] * sr)] if src["seconds"] else audio
    with tempfile.TemporaryDirectory() as tmp:
        wav = save_audio(Path(tmp) / "a.wav", audio, sr)
        with VideoWriter(dst, info.width, info.height, info.fps, audio_path=wav) as w:
            for k, frame in enumerate(read_frames(info)):
                if k < first:
                    continue
                if n is not None and k >= first + n:
                    break
                w.write(frame)
    return dst


def render_all(srcs: list[dict], work: Path) -> list[dict]:
    """Real and re-synced files for every source: [{name, half, set, kind, path}]."""
    from studio.lipsync.pipeline import load_speech_file, run_lipsync
    from studio.progress import Progress
    from studio.types import LipSyncOptions

    items = []
    real = {}
    for s in srcs:
        (work / "real").mkdir(parents=True, exist_ok=True)
        real[s["name"]] = cut_real(s, work / "real" / f"{s['name']}.mp4")
        items.append(dict(name=s["name"], half=s["half"], set=s["set"], kind="real", path=real[s["name"]]))
    for i, s in enumerate(s for s in srcs if not s.get("real_only")):
        # the speech of another source of the same set (another person for faces-dev)
        same = [o for o in srcs if o["set"] == s["set"] and o["path"] != s["path"] and not o.get("real_only")]
        driver = same[(i * 3 + 1) % len(same)]
        for engine, model in ENGINES:
            dst = work / f"{engine}{'_' + model if model else ''}" / f"{s['name']}.mp4"
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                t0 = time.time()
                speech = load_speech_file(real[driver["name"]])
                run_lipsync(real[s["name"]], speech, dst, LipSyncOptions(engine=engine, model=model), "cpu",
                            Progress.none())
                print(f"rendered {dst.parent.name}/{dst.name} in {time.time() - t0:.1f} s", flush=True)
            items.append(dict(name=s["name"], half=s["half"], set=s["set"], kind=dst.parent.name, path=dst,
                              driver=driver["name"]))
    return items


CORE = ("sync_corr", "sync_lag_abs", "sharp_ratio", "flicker_ratio", "lip_jitter")
ALL = ("sync_corr", "sync_lag_abs", "sharp_ratio", "flicker_ratio", "lip_jitter", "mouth_spread", "seam_ratio",
       "flicker_corr")
CONFIGS = {  # name: (cues with a linear weight, cues with a weight on their square)
    "linear": (ALL, ()), "quadratic": (ALL, ALL), "quadratic3": (ALL, ("sharp_ratio", "flicker_ratio", "sync_lag_abs")),
    "quadratic2": (ALL, ("sharp_ratio", "flicker_ratio")),
    "core_quadratic3": (CORE, ("sharp_ratio", "flicker_ratio", "sync_lag_abs")),
    "core_quadratic2": (CORE + ("mouth_spread",), ("sharp_ratio", "flicker_ratio")),
}
L2S = (1.0, 3.0, 10.0, 30.0)


def choose_model(cal: list[dict], feats: dict, work: Path) -> dict:
    """Cues and penalty by 6-fold cross-validation on the calibration half only, folds grouped by source clip (a
    clip's real and re-synced versions stay together). The test half is not looked at."""
    from studio.trust import detect as det

    names = sorted({it["name"] for it in cal})
    folds = [set(names[i::6]) for i in range(6)]
    tmp = work / "cv_weights.npz"
    key = lambda it: f"{it['kind']}/{it['name']}"  # noqa: E731
    scores = {}
    for config, (lin, quad) in CONFIGS.items():
        for l2 in L2S:
            p = {}
            for fold in folds:
                train = [it for it in cal if it["name"] not in fold]
                det.fit_weights([feats[key(it)] for it in train], [it["kind"] != "real" for it in train],
                                provenance={}, l2=l2, linear=lin, quadratic=quad, path=tmp)
                p.update({key(it): det.probability(feats[key(it)], str(tmp)) for it in cal if it["name"] in fold})
            real = [p[key(it)] for it in cal if it["kind"] == "real"]
            fake = [p[key(it)] for it in cal if it["kind"] != "real"]
            scores[f"{config} l2={l2:g}"] = (auc(fake, real), config, l2)
    det.load_weights.cache_clear()
    best = max(scores.values(), key=lambda v: v[0])
    return dict(config=best[1], l2=best[2], cv_auc=round(best[0], 3),
                cv=[{"model": k, "cv_auc": round(v[0], 3)} for k, v in scores.items()])


def auc(pos, neg) -> float:
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
                 / (len(pos) * len(neg)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, help="folder for the renders and features (default: temporary)")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--fit", action="store_true", help="refit the detector's weights on the calibration half")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "detect.json")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="detect-bench-"))
    os.environ.setdefault("STUDIO_HOME", str(work / "home"))
    t0 = time.time()
    items = render_all(sources(args.data), work)
    print(f"{len(items)} files ready in {time.time() - t0:.0f} s")
    if args.render_only:
        return 0
    return evaluate(items, work, args)


def evaluate(items: list[dict], work: Path, args) -> int:
    from studio.trust import detect as det

    feats = {}
    cache = work / "features.json"
    known = json.loads(cache.read_text()) if cache.exists() else {}
    t0 = time.time()
    frames = 0
    for it in items:
        key = f"{it['kind']}/{it['name']}"
        if key not in known:
            f = det.measure(it["path"])
            known[key] = f
            frames += f["frames"]
            cache.write_text(json.dumps(known))
        feats[key] = known[key]
    per_frame_ms = 1000 * (time.time() - t0) / frames if frames else None
    cal = [it for it in items if it["half"] == "calibration"]
    test = [it for it in items if it["half"] == "test"]
    selection = None
    if args.fit:
        selection = choose_model(cal, feats, work)
        lin, quad = CONFIGS[selection["config"]]
        det.fit_weights([feats[f"{it['kind']}/{it['name']}"] for it in cal],
                        [it["kind"] != "real" for it in cal], l2=selection["l2"], linear=lin, quadratic=quad,
                        provenance=dict(made_by="benchmarks/detect.py --fit", date=time.strftime("%Y-%m-%d"),
                                        selection=selection,
                                        calibration=[f"{it['kind']}/{it['name']}" for it in cal]))
    rows = {}
    for half, sel in (("calibration", cal), ("test", test)):
        p = {f"{it['kind']}/{it['name']}": det.probability(feats[f"{it['kind']}/{it['name']}"]) for it in sel}
        real = [p[f"real/{it['name']}"] for it in sel if it["kind"] == "real"]
        row = {}
        for kind in sorted({it["kind"] for it in sel} - {"real"}):
            fake = [p[f"{kind}/{it['name']}"] for it in sel if it["kind"] == kind]
            row[kind] = dict(auc=round(auc(fake, real), 3), n_real=len(real), n_resynced=len(fake),
                             median_resynced=round(float(np.median(fake)), 3))
        fakes = [v for k, v in p.items() if not k.startswith("real/")]
        row["all"] = dict(auc=round(auc(fakes, real), 3), median_real=round(float(np.median(real)), 3),
                          median_resynced=round(float(np.median(fakes)), 3),
                          accuracy_at_0_5=round(float((np.sum(np.array(real) < 0.5) + np.sum(np.array(fakes) >= 0.5))
                                                      / (len(real) + len(fakes))), 3))
        for s in ("grid", "faces-dev"):
            r = [p[f"real/{it['name']}"] for it in sel if it["kind"] == "real" and it["set"] == s]
            f = [p[f"{it['kind']}/{it['name']}"] for it in sel if it["kind"] != "real" and it["set"] == s]
            if r and f:
                row[f"all_{s}"] = dict(auc=round(auc(f, r), 3), n_real=len(r), n_resynced=len(f))
        row["scores"] = {k: round(v, 3) for k, v in p.items()}
        rows[half] = row
    # single cues on the test half: AUC of the raw value (0.5 = no information, below 0.5 = lower when re-synced)
    single = {}
    for name in det.FEATURES:
        r = [feats[f"real/{it['name']}"][name] for it in test if it["kind"] == "real"]
        f = [feats[f"{it['kind']}/{it['name']}"][name] for it in test if it["kind"] != "real"]
        single[name] = round(auc(f, r), 3)
    result = dict(test=rows["test"], calibration=rows["calibration"], single_feature_auc_test=single,
                  selection=selection or det.load_weights()[2].get("selection"),
                  ms_per_frame=None if per_frame_ms is None else round(per_frame_ms, 1),
                  weights=det.load_weights()[2], n_files=len(items))
    print(f"{'half':<12} {'engine':<14} {'AUC':>6} {'median p(re-synced)':>20}")
    for half in ("calibration", "test"):
        for kind, r in rows[half].items():
            if kind == "scores":
                continue
            print(f"{half:<12} {kind:<14} {r['auc']:>6.3f} {r.get('median_resynced', float('nan')):>20.3f}")
    print("single-feature AUC on the test half:", json.dumps(single))
    if per_frame_ms:
        print(f"detect cost: {per_frame_ms:.1f} ms a frame (tracking included)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
