"""Speed and memory of the lip-sync render, per stage and end to end, from 360p to 1080p.

Inputs: GRID s1 clips (from --grid, by default ../shared/data/grid-s1/clips) joined and scaled to each resolution,
driven with other clips' audio; when that folder is absent, a synthetic photo (skimage's astronaut, as
studio.samples.make_face writes it) with a slow zoom and a synthetic tone. It prints which input it used and records
it in the JSON ("input"); numbers from the synthetic input are not comparable with GRID ones.

For each resolution and engine it reports
- each stage's standalone throughput: decode, track, engine, blend and encode run alone, one after another, on the
  same --stage-frames frames of the 10 s input (frames/s), in a fresh process;
  with each stage's CPU milliseconds a frame (this process's threads and its ffmpeg children);
- end to end: the whole `Studio.lipsync` call in a fresh process per input length (what a user waits for: model
  loading, the audio mark, the visemes study of the footage, the render, the sync score, signing): its frames/s,
  their ratio to the slowest stage's standalone frames/s ("ratio_to_slowest"), the real-time factor (frames/s over
  the video's 25 frames/s: 2.0 = twice as fast as real time); the same over the streamed part alone (every frame
  decoded to encoded; seconds_per_stage "streamed (wall)"), labelled "streamed_"; its CPU seconds a frame and the
  bound they set (cores x frames / CPU seconds) with the share of the cores it kept busy: on a shared machine wall
  figures swing with the other jobs, CPU figures much less; the busy seconds of each stage, and the peak memory
  (resident; with --device cuda also the GPU's peak allocation);
- the 60 s / 10 s peak memory ratio (flat memory: about 1).

    python benchmarks/pipeline_speed.py [--engines visemes wav2lip] [--model s1] [--resolutions 360 720 1080]
        [--seconds 10 60] [--long-only 360] [--device cpu|cuda] [--stage-frames 50] [--grid DIR] [--out JSON]

--long-only R runs the longest input only at those resolutions (the short version for a shared machine:
`--seconds 10 60 --long-only 360`). The default --out is benchmarks/results/pipeline_speed_DEVICE.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GRID = REPO.parent / "shared" / "data" / "grid-s1" / "clips"
SIZES = {360: (640, 360), 720: (1280, 720), 1080: (1920, 1080)}
FPS = 25


def build_clip(seconds: float, workdir: Path, grid: Path = GRID, size=(640, 360)) -> tuple[Path, Path, dict]:
    """(video, audio, input): a WxH video of about `seconds`, audio of the same length from other clips, and what
    they were made from."""
    w, h = size
    video, audio = workdir / f"face_{h}p_{seconds:g}s.mp4", workdir / f"audio_{seconds:g}s.wav"
    clips = sorted(grid.glob("*.mp4")) if grid.is_dir() else []
    if clips:
        need = int(seconds / 3) + 1
        faces, voices = clips[:need], clips[need:2 * need]
        used = dict(kind="grid", path=str(grid), video=[c.name for c in faces], audio=[c.name for c in voices],
                    size=f"{w}x{h}", fps=FPS)
        jobs = [(faces, video, ["-vf", f"scale={w}:{h},setsar=1", "-an", "-c:v", "libx264", "-crf", "18",
                                "-preset", "veryfast"])]
        if not audio.exists():
            jobs.append((voices, audio, ["-vn", "-ac", "1", "-ar", "16000"]))
        for src, dst, opts in jobs:
            lst = workdir / f"{dst.stem}.txt"
            lst.write_text("".join(f"file '{c}'\n" for c in src))
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                            str(lst), "-t", str(seconds), *opts, str(dst)], check=True)
    else:
        from studio.samples import make_face, make_talk

        face = workdir / "face.png"
        make_face(face)
        small = workdir / f"talk_{seconds:g}s.mp4"
        if not small.exists():
            make_talk(small, face, seconds=seconds)
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(small), "-vf",
                        f"scale={w}:{h},setsar=1", "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", str(video)],
                       check=True)
        used = dict(kind="synthetic", path=None, missing=str(grid), size=f"{w}x{h}", fps=FPS,
                    video="synthetic photo (skimage astronaut via studio.samples.make_face), slow zoom "
                          "(studio.samples.make_talk), 25 fps, scaled",
                    audio="synthetic 200 Hz tone, 4 Hz envelope, 16 kHz")
        import numpy as np
        import soundfile as sf

        t = np.arange(int(seconds * 16000)) / 16000
        sf.write(audio, (0.3 * np.sin(2 * np.pi * 200 * t) * (0.5 - 0.5 * np.cos(2 * np.pi * 4 * t))).astype("float32"),
                 16000)
    return video, audio, used


PRELUDE = """
import json, os, resource, sys, time
def cpu_now():  # this process's CPU seconds (all its threads) plus its finished children's (ffmpeg)
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
def peaks(device):
    out = dict(peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    if device.startswith("cuda"):
        import torch
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out
"""

CHILD_E2E = PRELUDE + """
from studio import Studio
video, audio, out, engine, model, device = sys.argv[1:7]
t0, c0 = time.perf_counter(), cpu_now()
r = Studio(device=device).lipsync(video, audio, out, engine=engine, model=model or None)
wall, cpu = time.perf_counter() - t0, cpu_now() - c0
print(json.dumps(dict(frames=r.frames, fps=r.fps, frames_with_face=r.frames_with_face, wall_s=round(wall, 2),
                      cpu_s=round(cpu, 2), stages=r.seconds_per_stage,
                      sync_score=r.sync.score if r.sync is not None else None, **peaks(device))))
"""

CHILD_STAGES = PRELUDE + """
import numpy as np
from studio.face import FaceTracker
from studio.lipsync.engines import create_engine
from studio.lipsync.pipeline import load_speech_file
from studio.video.hw import video_codecs
from studio.video.io import VideoWriter, probe, read_frames
video, audio, engine_name, model, device, n, workdir = sys.argv[1:8]
n = int(n)
info = probe(video)
vcodec, hwaccel = video_codecs(device)
fps, cpu_ms = {}, {}
c0 = 0.0
def rate(key, t0, count):
    fps[key] = round(count / (time.perf_counter() - t0), 2)
    cpu_ms[key] = round(1000 * (cpu_now() - c0) / count, 2)
t0, c0 = time.perf_counter(), cpu_now()
decoder = read_frames(info, hwaccel=hwaccel)
frames = [f for _, f in zip(range(n), decoder)]
decoder.close()  # ends (and reaps) ffmpeg, so its CPU time is counted
rate("decode", t0, len(frames))
n = len(frames)
with FaceTracker(info.fps) as tracker:
    tracker.update(frames[0])  # warm-up: the graph's first frame
    t0, c0 = time.perf_counter(), cpu_now()
    faces = [tracker.update(f) for f in frames]
    rate("track", t0, n)
_, engine = create_engine(engine_name, model or None, device)
engine.prepare(load_speech_file(audio), info.fps, n)
bs = getattr(engine, "batch_size", 32)
engine.render(frames[:bs], faces[:bs], list(range(min(bs, n))))  # warm-up (first batch: allocations, kernels)
if device.startswith("cuda"):
    import torch; torch.cuda.synchronize()
t0, c0 = time.perf_counter(), cpu_now()
patches = []
for s in range(0, n, bs):
    patches += engine.render(frames[s:s + bs], faces[s:s + bs], list(range(s, min(s + bs, n))))
rate("engine", t0, n)
extra = {}
if hasattr(engine, "study"):
    # visemes renders a video with the person's own mouths from its study (cheaper than the drawn mouth the
    # standalone figure above measures): that path too, for information (the slowest stage stays the one above)
    engine.study(video)
    engine.prepare(load_speech_file(audio), info.fps, n)
    engine.render(frames[:bs], faces[:bs], list(range(min(bs, n))))
    t0 = time.perf_counter()
    for s in range(0, n, bs):
        engine.render(frames[s:s + bs], faces[s:s + bs], list(range(s, min(s + bs, n))))
    extra["engine_after_study_fps"] = round(n / (time.perf_counter() - t0), 2)
if device.startswith("cuda"):
    from functools import partial
    from studio.lipsync.blend_torch import blend_torch
    blend = partial(blend_torch, device=device)
    blend(frames[0], patches[0], faces[0])  # warm-up (lookup tables)
else:
    from studio.lipsync.blend import blend
copies = [f.copy() for f in frames]
t0, c0 = time.perf_counter(), cpu_now()
out = [blend(f, p, fc, inplace=True) if p is not None and fc is not None else f for f, fc, p in zip(copies, faces, patches)]
rate("blend", t0, n)
t0, c0 = time.perf_counter(), cpu_now()
with VideoWriter(workdir + "/stage_encode.mp4", info.width, info.height, info.fps, vcodec=vcodec) as writer:
    for f in out:
        writer.write(f)
rate("encode", t0, n)
print(json.dumps(dict(frames=n, stage_fps=fps, stage_cpu_ms=cpu_ms, faces=sum(f is not None for f in faces), vcodec=vcodec,
                      hwaccel=hwaccel, **extra, **peaks(device))))
"""


def _child(code: str, *args) -> dict:
    res = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", nargs="+", default=["visemes", "wav2lip"])
    ap.add_argument("--model", default="s1", help="checkpoint for wav2lip (default %(default)s)")
    ap.add_argument("--resolutions", type=int, nargs="+", default=[360, 720, 1080], choices=sorted(SIZES))
    ap.add_argument("--seconds", type=float, nargs="+", default=[10, 60])
    ap.add_argument("--long-only", type=int, nargs="*", default=None,
                    help="resolutions that also get the inputs longer than the shortest (default: all)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--stage-frames", type=int, default=50)
    ap.add_argument("--grid", type=Path, default=GRID, help="folder of GRID clips (default %(default)s)")
    ap.add_argument("--out", help="JSON to write (default benchmarks/results/pipeline_speed_DEVICE.json)")
    args = ap.parse_args()
    out = Path(args.out or REPO / f"benchmarks/results/pipeline_speed_{args.device.split(':')[0]}.json")
    seconds = sorted(args.seconds)
    rows, inputs = [], []
    def write_report():  # after every row, so a run that stops early keeps what it measured
        kinds = sorted({u["kind"] for u in inputs}) or ["none"]
        gpu = None
        if args.device.startswith("cuda"):
            import torch

            gpu = torch.cuda.get_device_name(0)
        report = dict(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores" +
                      (f", {gpu}" if gpu else ""), device=args.device, load_average=os.getloadavg(),
                      omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                      input=dict(kind=kinds[0] if len(kinds) == 1 else "mixed", per_resolution=inputs),
                      results=rows, when=time.strftime("%Y-%m-%d %H:%M"))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))

    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        tmp = Path(tmp)
        for res in args.resolutions:
            lengths = seconds if args.long_only is None or res in args.long_only else seconds[:1]
            clips = {s: build_clip(s, tmp, args.grid, SIZES[res]) for s in lengths}
            used = clips[lengths[0]][2]
            inputs.append(used)
            if used["kind"] == "grid":
                print(f"input {res}p: GRID clips from {used['path']} scaled to {used['size']} (video "
                      f"{used['video'][0]}.., audio {used['audio'][0]}..)", flush=True)
            else:
                print(f"input {res}p: SYNTHETIC photo with a slow zoom and a tone ({used['missing']} not found); "
                      "not comparable with the GRID numbers", flush=True)
            for engine in args.engines:
                model = args.model if engine == "wav2lip" else ""
                video, audio, _ = clips[lengths[0]]
                stage = _child(CHILD_STAGES, video, audio, engine, model, args.device, args.stage_frames, tmp)
                slowest = min(stage["stage_fps"], key=stage["stage_fps"].get)
                print(f"{res}p {engine}: standalone frames/s " + ", ".join(f"{k} {v:.1f}" for k, v in
                      stage["stage_fps"].items()) + f" (slowest: {slowest}; {stage['vcodec']}); CPU ms a frame "
                      + ", ".join(f"{k} {v:.1f}" for k, v in stage["stage_cpu_ms"].items())
                      + (f"; engine after the study of the footage {stage['engine_after_study_fps']:.1f} frames/s"
                         if "engine_after_study_fps" in stage else ""), flush=True)
                row = dict(resolution=res, size=used["size"], engine=engine, model=model or None, input=used["kind"],
                           stage_fps=stage["stage_fps"], stage_cpu_ms=stage["stage_cpu_ms"],
                           **({"engine_after_study_fps": stage["engine_after_study_fps"]}
                              if "engine_after_study_fps" in stage else {}), slowest_stage=slowest,
                           slowest_fps=stage["stage_fps"][slowest], vcodec=stage["vcodec"], runs=[])
                for s in lengths:
                    video, audio, _ = clips[s]
                    try:
                        r = _child(CHILD_E2E, video, audio, tmp / "out.mp4", engine, model, args.device)
                    except RuntimeError as e:  # one failed run is reported, not allowed to lose the others
                        row["runs"].append(dict(seconds=s, error=str(e).strip().splitlines()[-1]))
                        print(f"{res}p {engine} {s:g} s: FAILED: {row['runs'][-1]['error']}", flush=True)
                        continue
                    streamed = r["stages"].get("streamed (wall)") or r["wall_s"]
                    whole = r["frames"] / r["wall_s"]
                    cores = os.cpu_count() or 1
                    r.update(seconds=s, whole_call_fps=round(whole, 2),
                             ratio_to_slowest=round(whole / row["slowest_fps"], 3),
                             realtime_x=round(whole / r["fps"], 2),
                             streamed_fps=round(r["frames"] / streamed, 2),
                             streamed_ratio_to_slowest=round(r["frames"] / streamed / row["slowest_fps"], 3),
                             cpu_ms_per_frame=round(1000 * r["cpu_s"] / r["frames"], 2),
                             # the most frames/s this call's own CPU work allows on this machine's cores, and the
                             # share of those cores it kept busy (both hold up better on a shared machine than wall)
                             cpu_bound_fps=round(cores * r["frames"] / r["cpu_s"], 2),
                             cores_busy=round(r["cpu_s"] / r["wall_s"] / cores, 3))
                    row["runs"].append(r)
                    busy = " ".join(f"{k}={v:.1f}s" for k, v in r["stages"].items())
                    print(f"{res}p {engine} {s:g} s ({r['frames']} frames): whole call {whole:.1f} frames/s "
                          f"({r['ratio_to_slowest']:.2f} of the slowest stage, {r['realtime_x']:.2f}x real time); "
                          f"streamed part {r['streamed_fps']:.1f} frames/s ({r['streamed_ratio_to_slowest']:.2f}); "
                          f"CPU {r['cpu_ms_per_frame']:.1f} ms a frame (bound {r['cpu_bound_fps']:.1f} frames/s on "
                          f"{cores} cores, {100 * r['cores_busy']:.0f} % busy); peak RSS {r['peak_rss_mb']:.0f} MB"
                          + (f", GPU {r['peak_gpu_mb']:.0f} MB" if "peak_gpu_mb" in r else "") + f"; {busy}",
                          flush=True)
                if len([r for r in row["runs"] if "error" not in r]) > 1:
                    row["memory_ratio_long_short"] = round(row["runs"][-1]["peak_rss_mb"] / row["runs"][0]["peak_rss_mb"], 3)
                    print(f"{res}p {engine}: peak memory {row['runs'][-1]['seconds']:g} s / "
                          f"{row['runs'][0]['seconds']:g} s = {row['memory_ratio_long_short']:.2f}", flush=True)
                rows.append(row)
                write_report()
    write_report()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
