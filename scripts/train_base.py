"""Train the bundled base model ``checkpoints/base.pt`` (+ its sync expert ``base_expert.pt``): every talking
person available, with colour, scale, pose and flip augmentation, small enough to fine-tune on a CPU in minutes.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/train_base.py --work DIR --minutes 40      # resumable: rerun it
    python scripts/train_base.py --work DIR --ship                                          # -> checkpoints/

People: GRID s1 (clips 0..GRID_CLIPS-1 sorted by name; 400-411 stay unseen for the s1 benchmark) and faces-dev
(only the first 70 % of each clip: the last 30 % is the benchmark's). One faces-dev person, ``HELD_OUT`` (andrew),
is left out of training altogether: the validation numbers (sync-expert accuracy, L1) are measured on the first
70 % of his clip, i.e. on a person neither network saw, and benchmarks/personalize_quick.py personalises on him.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data"
GRID_CLIPS = 120
HELD_OUT = "styletalk_andrew_clip_2"
TRAIN_FRACTION = 0.7  # of each faces-dev clip; the rest is the benchmark's
CLIP_SECONDS, HOP_SECONDS = 3.0, 1.0  # overlapping cuts give the few non-GRID people more windows
ATTRIBUTION = (
    "Trained on the GRID audio-visual corpus, speaker s1 (Cooke, Barker, Cunningham & Shao, 2006, CC BY 4.0) and "
    "on the first 70 % of three talking-head clips from public repositories (MIT): FuxiVirtualHuman/styletalk "
    "samples/source_video (KristiNoem, feifeili_clip1) and KwaiVGI/LivePortrait assets/examples/driving/d6.mp4")


def duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def cut(src: Path, start: float, seconds: float, dst: Path) -> Path:
    if not dst.exists():
        tmp = dst.with_suffix(".partial.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", f"{start:.3f}", "-i", str(src), "-t", f"{seconds:.3f}",
                        "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
                        str(tmp)], check=True)
        tmp.rename(dst)
    return dst


def cut_person(video: Path, out: Path, fraction: float) -> list[Path]:
    """Overlapping CLIP_SECONDS cuts of the first ``fraction`` of a video."""
    end = duration(video) * fraction
    clips, t = [], 0.0
    while t + CLIP_SECONDS <= end + 1e-6:
        clips.append(cut(video, t, CLIP_SECONDS, out / f"{video.stem}_{int(t * 1000):06d}.mp4"))
        t += HOP_SECONDS
    return clips


def footage(work: Path):
    cuts = work / "cuts"
    cuts.mkdir(parents=True, exist_ok=True)
    grid = sorted((DATA / "grid-s1" / "clips").glob("*.mp4"))[:GRID_CLIPS]
    train, val = list(grid), []
    for video in sorted((DATA / "faces-dev" / "videos").glob("*.mp4")):
        clips = cut_person(video, cuts, TRAIN_FRACTION)
        (val if video.stem == HELD_OUT else train).extend(clips)
    return train, val


def config():
    from studio.lipsync.training.train import TrainConfig

    # the cpu preset at width 0.25 (2.3 M generator parameters): ~4x cheaper per step than s1's width 0.5, so a
    # personalisation's few minutes buy 4x the steps; half of the references from another clip and a weighted mouth
    # (the gpu preset's measured choices) so it takes the look from the reference and spends its loss on the lips
    return TrainConfig.preset("cpu", width=0.25, expert_steps=1500, generator_steps=3000, sync_warmup=500,
                              eval_every=100, cross_clip_refs=0.5, mouth_weight=3.0, augment=True,
                              min_generator_steps=500)


def trainer(work: Path):
    import torch

    from studio.lipsync.training.dataset import prepare_dataset
    from studio.lipsync.training.sampler import WindowSampler
    from studio.lipsync.training.train import Trainer

    train_files, val_files = footage(work)
    cfg = config()
    data = prepare_dataset(train_files, img_size=cfg.img_size, root=work / "prepared")
    val = prepare_dataset(val_files, img_size=cfg.img_size, root=work / "prepared")
    folder = work / "run"
    meta = dict(name="base", attribution=ATTRIBUTION, licence="CC BY 4.0 (GRID) + MIT (faces-dev sources)",
                data_fingerprint=data.fingerprint, footage_seconds=round(float(data.seconds), 1),
                people=["GRID s1", "styletalk_KristiNoem", "styletalk_feifeili_clip1", "liveportrait_d6"],
                held_out_person=HELD_OUT, validation="first 70 % of the held-out person's clip (never trained on)",
                grid_clips=GRID_CLIPS, faces_dev_fraction=TRAIN_FRACTION,
                consent="public research footage (GRID CC BY 4.0; MIT-licensed sample clips); base model, no single "
                        "person's likeness is reproduced")
    t = Trainer(folder, cfg, WindowSampler(data.clips, "cpu", seed=cfg.seed),
                WindowSampler(val.clips, "cpu", seed=cfg.seed + 1), "cpu", meta=meta)
    if (folder / "state.pt").exists():
        t.load_state_dict(torch.load(folder / "state.pt", map_location="cpu", weights_only=True))
    return t, data


def ship(work: Path) -> None:
    """checkpoints/base.pt and base_expert.pt from the run's latest checkpoints (fp16, metadata kept)."""
    import shutil

    run = work / "run"
    for src, dst in (("model.pt", "base.pt"), ("expert.pt", "base_expert.pt")):
        shutil.copyfile(run / src, REPO / "checkpoints" / dst)
        print(dst, (REPO / "checkpoints" / dst).stat().st_size)
    shutil.copyfile(run / "train.log", REPO / "benchmarks" / "results" / "base_train_log.jsonl")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=40)
    ap.add_argument("--ship", action="store_true")
    args = ap.parse_args()
    if args.ship:
        ship(args.work)
        return
    import torch

    torch.set_num_threads(1)
    t, data = trainer(args.work)
    print(data.describe(), flush=True)
    metrics = t.run(minutes=args.minutes)
    print(json.dumps(dict(expert_step=t.expert_step, gen_step=t.gen_step, **metrics)))


if __name__ == "__main__":
    main()
