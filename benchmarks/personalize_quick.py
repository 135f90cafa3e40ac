"""Quick personalisation benchmark: personalise on the first 70 % of a person's clip within a short budget, then
re-sync the last 30 % to its own sound and compare mouths with the real frames, against zero-shot models.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/personalize_quick.py --budget 5      # -> results/personalize_quick.json

Default person: faces-dev styletalk_andrew_clip_2 (27 s), whom the bundled base model never saw (scripts/
train_base.py leaves him out). Scores (studio.lipsync.personalize.heldout_scores): mouth-opening correlation at lag
0, best lag in frames (+ = late), mouth-region PSNR (lower half of 96 px face crops). The generator's reference
frames come from the first 70 % (so the real mouth is not in its input; the results in
results/personalize_quick*.json predate this and used each frame as its own reference). ``personalised_row`` is the function the
``anyface`` benchmark calls.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
CONSENT = ("benchmark on public MIT-licensed sample footage (faces-dev); the model stays on this machine and no "
           "render is published")


def personalised_row(train_video, test_video, test_audio, out_path=None, budget_minutes: float = 5.0,
                     zero_shot=("s1", "base"), device: str = "cpu", base=None) -> dict:
    """Personalise on ``train_video`` (the first part of a person's footage) within ``budget_minutes``, then score
    the personalised model and the ``zero_shot`` models on ``test_video`` re-synced to ``test_audio``; the row
    (and the personalisation report) is written to ``out_path`` as JSON when given. ``base``: the generator to
    personalise (None = the default, the bundled base model)."""
    from studio.checkpoints import is_available
    from studio.lipsync import personalize as P

    start = time.monotonic()
    settings = replace(P.DEFAULT_SETTINGS, budget_minutes=budget_minutes, base=base or P.DEFAULT_SETTINGS.base)
    report = P.personalize(train_video, CONSENT, settings, device)
    models = ([report.model] if report.model else []) + [m for m in zero_shot if is_available(m)]
    scores = P.heldout_scores(models, Path(test_video), device, audio_path=test_audio, references=train_video)
    row = dict(base=str(report.base), train_video=Path(train_video).name, test_video=Path(test_video).name, budget_minutes=budget_minutes,
               personalised=scores[0] if report.model else None,
               fallback_reason=report.fallback_reason,
               **{f"{m}_zero_shot": s for m, s in zip(models[1 if report.model else 0:],
                                                      scores[1 if report.model else 0:])},
               report={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(report).items()},
               seconds=round(time.monotonic() - start, 1))
    if out_path is not None:
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(row, indent=2))
    return row


def split(video: Path, fraction: float, work: Path) -> tuple[Path, Path]:
    """The first ``fraction`` and the rest of a video, re-encoded (frame-accurate)."""
    from studio.lipsync.personalize import cut
    from studio.video.io import probe

    d = probe(video).duration
    return (cut(video, 0.0, d * fraction, work / f"{video.stem}_first.mp4"),
            cut(video, d * fraction, d * (1 - fraction), work / f"{video.stem}_last.mp4"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=DATA / "faces-dev" / "videos" / "styletalk_andrew_clip_2.mp4")
    ap.add_argument("--budget", type=float, default=5.0, help="CPU minutes for the personalisation")
    ap.add_argument("--base", help="generator to personalise (default: the bundled base model)")
    ap.add_argument("--zero-shot", default="s1,base", help="models scored zero-shot beside it")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "personalize_quick.json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="personalize-quick-"))
    first, last = split(args.video, 0.7, work)
    row = personalised_row(first, last, last, args.out, args.budget, base=args.base,
                           zero_shot=tuple(m for m in args.zero_shot.split(",") if m))
    row["person"] = args.video.stem
    row["machine"] = "shared 2-core CPU, 1 thread, nice 10, other jobs running"
    args.out.write_text(json.dumps(row, indent=2))
    print(json.dumps({k: v for k, v in row.items() if k != "report"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
