"""Speed and memory of the lip-sync job on this machine.

Builds 640x360 talking-face clips of 10 s and 60 s (GRID s1 clips scaled up, from --grid, by default
../shared/data/grid-s1/clips; or, when that folder is absent, a synthetic photo (skimage's astronaut, as
studio.samples.make_face writes it) with a slow zoom and a synthetic tone for audio), drives each with another
clip's audio, and reports the seconds per stage (decode, track, engine, blend, encode) and the peak resident memory
of the job, measured in a fresh process per run so runs do not share memory. It prints which input it used and
records it in the JSON ("input"); numbers from the synthetic input are not comparable with GRID ones.

    python benchmarks/pipeline_speed.py [--engine visemes] [--model NAME] [--seconds 10 60] [--grid DIR] [--out JSON]

The default --out is benchmarks/results/pipeline_speed_ENGINE.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GRID = REPO.parent / "shared" / "data" / "grid-s1" / "clips"


def build_clip(seconds: float, workdir: Path, grid: Path = GRID) -> tuple[Path, Path, dict]:
    """(video, audio, input): a 640x360 video of about `seconds`, audio of the same length from other clips, and
    what they were made from."""
    video, audio = workdir / f"face_{seconds:g}s.mp4", workdir / f"audio_{seconds:g}s.wav"
    clips = sorted(grid.glob("*.mp4")) if grid.is_dir() else []
    if clips:
        need = int(seconds / 3) + 1
        faces, voices = clips[:need], clips[need:2 * need]
        used = dict(kind="grid", path=str(grid), video=[c.name for c in faces], audio=[c.name for c in voices],
                    size="640x360", fps=25)
        for src, dst, opts in ((faces, video, ["-vf", "scale=640:360,setsar=1", "-an", "-c:v", "libx264", "-crf", "18"]),
                               (voices, audio, ["-vn", "-ac", "1", "-ar", "16000"])):
            lst = workdir / f"{dst.stem}.txt"
            lst.write_text("".join(f"file '{c}'\n" for c in src))
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst),
                            "-t", str(seconds), *opts, str(dst)], check=True)
    else:
        from studio.samples import make_face, make_talk

        face = workdir / "face.png"
        make_face(face)
        make_talk(video, face, seconds=seconds)
        used = dict(kind="synthetic", path=None, missing=str(grid),
                    video="synthetic photo (skimage astronaut via studio.samples.make_face), slow zoom "
                          "(studio.samples.make_talk), 25 fps",
                    audio="synthetic 200 Hz tone, 4 Hz envelope, 16 kHz")
        import numpy as np
        import soundfile as sf

        t = np.arange(int(seconds * 16000)) / 16000
        sf.write(audio, (0.3 * np.sin(2 * np.pi * 200 * t) * (0.5 - 0.5 * np.cos(2 * np.pi * 4 * t))).astype("float32"), 16000)
    return video, audio, used


CHILD = """
import json, resource, sys, time
from studio import Studio
video, audio, out, engine, model = sys.argv[1:6]
t0 = time.perf_counter()
r = Studio(device="cpu").lipsync(video, audio, out, engine=engine, model=model or None)
wall = time.perf_counter() - t0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(frames=r.frames, fps=r.fps, frames_with_face=r.frames_with_face, wall_s=round(wall, 2),
                      stages=r.seconds_per_stage, peak_rss_mb=round(peak_mb, 1))))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default="visemes")
    ap.add_argument("--model", default="")
    ap.add_argument("--seconds", type=float, nargs="+", default=[10, 60])
    ap.add_argument("--grid", type=Path, default=GRID, help="folder of GRID clips (default %(default)s)")
    ap.add_argument("--out", help="JSON to write (default benchmarks/results/pipeline_speed_ENGINE.json)")
    args = ap.parse_args()
    out = Path(args.out or f"benchmarks/results/pipeline_speed_{args.engine}.json")
    results, inputs = [], []
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        for seconds in args.seconds:
            video, audio, used = build_clip(seconds, Path(tmp), args.grid)
            inputs.append(used)
            if used["kind"] == "grid":
                print(f"input: GRID clips from {used['path']} scaled to 640x360 (video {used['video'][0]}.."
                      f"{used['video'][-1]}, audio {used['audio'][0]}..{used['audio'][-1]})", flush=True)
            else:
                print(f"input: SYNTHETIC photo with a slow zoom and a tone ({used['missing']} not found); "
                      "not comparable with the GRID numbers", flush=True)
            res = subprocess.run([sys.executable, "-c", CHILD, str(video), str(audio), str(Path(tmp) / "out.mp4"),
                                  args.engine, args.model], capture_output=True, text=True)
            if res.returncode != 0:
                print(res.stderr, file=sys.stderr)
                return 1
            row = dict(seconds=seconds, engine=args.engine, model=args.model or None, input=used["kind"],
                       **json.loads(res.stdout.strip().splitlines()[-1]))
            results.append(row)
            stages = " ".join(f"{k}={v:.2f}s" for k, v in row["stages"].items())
            print(f"{seconds:>5g} s input, {row['frames']} frames: wall {row['wall_s']:.1f} s "
                  f"({row['frames'] / row['wall_s']:.1f} frames/s); {stages}; peak RSS {row['peak_rss_mb']:.0f} MB")
    import platform
    import os

    kinds = sorted({u["kind"] for u in inputs})
    report = dict(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", engine=args.engine,
                  input=dict(kind=kinds[0] if len(kinds) == 1 else "mixed",
                             description="640x360 25 fps (GRID s1 scaled)" if kinds == ["grid"] else
                             "640x360 25 fps synthetic photo with a slow zoom" if kinds == ["synthetic"] else "mixed",
                             per_run=inputs),
                  results=results, when=time.strftime("%Y-%m-%d %H:%M"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
