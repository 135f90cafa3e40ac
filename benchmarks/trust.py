"""Trust benchmark (issue 17, item 8): how well the studio's marks survive, and that unmarked media are never flagged.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/trust.py [--quick] [--data ../shared/data] [--parts ...]

Parts (``--parts``, default all):

- ``video``: GRID s1 clips scaled to 720 p (as a 1280x720-class render) and faces-dev clips at their own size, marked
  with :class:`studio.trust.video_mark.VideoMarker` (job id fixed) using the studio's tracked faces, written with the
  studio's encoder (x264 CRF 18), then attacked with ffmpeg: x264 CRF 23 and CRF 28, half scale, 10 % crop, CRF 28
  + half scale, and a trim (a 1 s excerpt cut from the middle, re-encoded at CRF 23). Per attack: bit accuracy of the
  decoded 40 bits against the embedded ones, found (magic + CRC + confidence threshold), confidence. Also PSNR of
  the marked frames (whole frame and face box) and the embedding cost per frame at 720 p.
- ``video_fp``: ``read_video_mark`` on every unmarked video in DATA (all GRID s1 clips, all faces-dev videos, all
  frames): false positives, and the confidence distribution the threshold is set against. ``--landmarks DIR`` keeps
  each video's tracked landmarks, so that a rescan after a change to the detector takes minutes, not ~45.
- ``audio``: Perth's confidence on marked speech (Piper, 10 sentences) as saved, resampled to 16 kHz, through MP3
  128k, with white noise at 20 dB SNR; the mark's SNR against the unmarked speech.
- ``audio_fp``: Perth's score on all unmarked speech in DATA (the sound of every GRID clip and faces-dev video,
  every LibriSpeech file, interleaved so that a run stopped by ``--minutes`` has some of each): false positives at
  ``audio_mark.DETECT_THRESHOLD``, the highest scores, wall and CPU seconds a file.
- ``detect``: the ``studio detect`` ROC AUC per engine on held-out clips, from ``benchmarks/detect.py``'s result
  (see :func:`detect_rows`).

``--quick`` uses 3 clips for attacks, 60 GRID clips and the faces-dev videos for false positives, 3 sentences and
100 audio files: a few minutes. Writes benchmarks/results/trust.json (``trust_quick.json`` with --quick).
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
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

JOB = "5a7d10c3e9b2"  # the job id every benchmark mark carries
ATTACKS = {  # name: (ffmpeg -vf, CRF, trim)
    "studio encode (CRF 18)": (None, 18, False),
    "CRF 23": (None, 23, False),
    "CRF 28": (None, 28, False),
    "half scale": ("scale=trunc(iw/4)*2:trunc(ih/4)*2", 18, False),
    "10 % crop": ("crop=trunc(iw*0.9/2)*2:trunc(ih*0.9/2)*2:trunc(iw*0.03/2)*2:trunc(ih*0.07/2)*2", 18, False),
    "CRF 28 + half scale": ("scale=trunc(iw/4)*2:trunc(ih/4)*2", 28, False),
    "trim (1 s from the middle, CRF 23)": (None, 23, True),
}


def _ffmpeg(args: list) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *map(str, args)], check=True)


def attack(src: Path, dst: Path, vf, crf: int, trim: bool, duration: float) -> Path:
    args = []
    if trim:
        args += ["-ss", f"{max(0.0, duration / 2 - 0.5):.3f}", "-t", "1.0"]
    args += ["-i", src]
    if vf:
        args += ["-vf", vf]
    _ffmpeg(args + ["-c:v", "libx264", "-crf", crf, "-preset", "veryfast", "-pix_fmt", "yuv420p", "-an", dst])
    return dst


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 10 * np.log10(255 ** 2 / max(mse, 1e-9))


# ---- video mark under attack ----------------------------------------------------------------------------------
def video_clip(src: Path, height: int, work: Path) -> dict:
    import cv2

    from studio.face import track_frames
    from studio.trust import video_mark as vm
    from studio.video.io import VideoWriter, probe, read_frames

    info = probe(src)
    fps = info.fps or 25.0
    frames = list(read_frames(info, max_frames=int(round(fps * 4))))  # 4 s is plenty for every attack
    faces = list(track_frames(iter(frames), fps))
    if height and frames[0].shape[0] != height:
        s = height / frames[0].shape[0]
        w = int(round(frames[0].shape[1] * s / 2)) * 2
        frames = [cv2.resize(f, (w, height), interpolation=cv2.INTER_CUBIC) for f in frames]
        faces = [None if f is None else replace(f, landmarks=f.landmarks * s, box=tuple(int(v * s) for v in f.box))
                 for f in faces]
    marker = vm.VideoMarker(JOB)
    marked, cost, p_frame, p_face = [], [], [], []
    for frame, face in zip(frames, faces):
        t = time.perf_counter()
        out = marker.mark(frame, face)
        cost.append(time.perf_counter() - t)
        if face is not None:
            p_frame.append(psnr(out, frame))
            x1, y1, x2, y2 = (max(0, int(v)) for v in face.box)
            p_face.append(psnr(out[y1:y2, x1:x2], frame[y1:y2, x1:x2]))
        marked.append(out)
    h, w = frames[0].shape[:2]
    path = work / f"{src.stem}.marked.mp4"
    with VideoWriter(path, w, h, fps) as writer:
        for f in marked:
            writer.write(f)
    row = {"clip": src.name, "size": f"{w}x{h}", "frames": len(frames), "frames_marked": marker.marked,
           "psnr_frame_db": round(float(np.mean(p_frame)), 2), "psnr_face_box_db": round(float(np.mean(p_face)), 2),
           "embed_ms_per_frame": round(1000 * float(np.median(cost)), 2), "attacks": {}}
    for name, (vf, crf, trim) in ATTACKS.items():
        attacked = path if (vf is None and crf == 18 and not trim) else \
            attack(path, work / f"{src.stem}.{abs(hash(name)) % 10 ** 6}.mp4", vf, crf, trim, len(frames) / fps)
        r = vm.read_video_mark(attacked, max_frames=None)
        row["attacks"][name] = {"found": r.found, "bit_accuracy": round(r.bit_accuracy(JOB), 3),
                                "job_ok": r.job == JOB[:6], "confidence": r.confidence, "frames_used": r.frames_used,
                                "per_frame_bit_agreement": r.bit_agreement}
    return row


def embed_cost_720p(clip: Path, repeats: int = 100) -> dict:
    """Median milliseconds of VideoMarker.mark on a 1280x720 frame (a face tracked once, the frame repeated)."""
    import cv2

    from studio.face import detect_faces
    from studio.trust.video_mark import VideoMarker
    from studio.video.io import probe, read_frames

    frame = next(read_frames(probe(clip), max_frames=1))
    frame = cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_CUBIC)
    face = detect_faces(frame)[0]
    marker = VideoMarker(JOB)
    marker.mark(frame, face)  # patterns made once per process
    cost, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.thread_time()
        marker.mark(frame, face)
        cost.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    return {"size": "1280x720", "median_ms": round(1000 * float(np.median(cost)), 2),
            "p90_ms": round(1000 * float(np.percentile(cost, 90)), 2),
            "cpu_median_ms": round(1000 * float(np.median(cpu)), 2), "note": "wall and CPU time on the shared CPU"}


def video_part(data: Path, quick: bool, work: Path) -> dict:
    grid = sorted((data / "grid-s1" / "clips").glob("*.mp4"))
    dev = sorted((data / "faces-dev" / "videos").glob("*.mp4"))
    jobs = [(c, 720) for c in grid[: 2 if quick else 3]] + [(c, 0) for c in dev[: 1 if quick else 2]]
    rows = []
    for clip, height in jobs:
        row = video_clip(clip, height, work)
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary = {}
    for name in ATTACKS:
        cells = [r["attacks"][name] for r in rows]
        summary[name] = {"bit_accuracy_mean": round(float(np.mean([c["bit_accuracy"] for c in cells])), 3),
                         "bit_accuracy_min": round(float(np.min([c["bit_accuracy"] for c in cells])), 3),
                         "found": f"{sum(c['found'] and c['job_ok'] for c in cells)}/{len(cells)}",
                         "confidence_min": round(float(np.min([c["confidence"] for c in cells])), 2)}
    by_kind = {}
    for kind, sel in (("grid_720p", [r for r, (_, h) in zip(rows, jobs) if h]),
                      ("faces_dev_native", [r for r, (_, h) in zip(rows, jobs) if not h])):
        if sel:
            by_kind[kind] = {name: {"bit_accuracy_mean": round(float(np.mean([r["attacks"][name]["bit_accuracy"]
                                                                               for r in sel])), 3),
                                    "found": f"{sum(r['attacks'][name]['found'] for r in sel)}/{len(sel)}"}
                             for name in ATTACKS}
    return {"clips": rows, "summary": summary, "by_kind": by_kind,
            "psnr_frame_db": round(float(np.mean([r["psnr_frame_db"] for r in rows])), 2),
            "psnr_face_box_db": round(float(np.mean([r["psnr_face_box_db"] for r in rows])), 2),
            "embed_720p": embed_cost_720p(grid[0] if grid else dev[0])}


# ---- false positives ------------------------------------------------------------------------------------------
def tracked_faces(video: Path, cache=None) -> tuple:
    """(faces, fps) of every frame of ``video``, tracked by the studio's tracker; with ``cache`` (a folder) the
    tracking is stored there as ``STEM.npz`` (landmarks only) and reused, so a changed detector can be rescanned
    over all the videos without tracking them again (tracking is most of the scan's cost)."""
    from studio.face import track_frames
    from studio.types import Face
    from studio.video.io import probe, read_frames

    info = probe(video, "video")
    fps = info.fps or 25.0
    path = Path(cache) / f"{video.stem}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            scheme = str(z["scheme"])
            return [Face(tuple(int(v) for v in b), lm, 1.0, scheme) if ok else None
                    for lm, ok, b in zip(z["lm"], z["ok"], z["box"])], fps
    faces = list(track_frames(read_frames(info), fps))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        n = max([len(f.landmarks) for f in faces if f is not None] or [478])
        lm = np.zeros((len(faces), n, 2), np.float32)
        for i, f in enumerate(faces):
            if f is not None:
                lm[i, :len(f.landmarks)] = f.landmarks
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, lm=lm, ok=np.array([f is not None for f in faces]),
                 box=np.array([f.box if f is not None else (0, 0, 0, 0) for f in faces]),
                 scheme=np.array(next((f.scheme for f in faces if f is not None), "mediapipe478")), fps=fps)
        tmp.replace(path)
    return faces, fps


def read_mark_with_faces(video: Path, faces: list, fps: float):
    """``read_video_mark`` (all frames) with the faces already tracked."""
    from studio.trust import video_mark as vm
    from studio.video.io import probe, read_frames

    t0 = time.perf_counter()
    scores, index, read = vm.collect_scores(read_frames(probe(video, "video")), fps, faces=faces, max_frames=None)
    return vm.decode_scores(scores, index, read, time.perf_counter() - t0)


def video_fp_part(data: Path, quick: bool, save=None, minutes: float = 0, start: int = 0, cache=None) -> dict:
    """Every unmarked video (faces-dev first, then GRID s1). ``save(summary)`` is called every 25 videos, so an
    interrupted run still reports how many were checked; ``minutes`` > 0 stops after that long; ``cache``: a folder
    for the tracked landmarks (see :func:`tracked_faces`)."""
    from studio.trust import video_mark as vm

    grid = sorted((data / "grid-s1" / "clips").glob("*.mp4"))
    videos = sorted((data / "faces-dev" / "videos").glob("*.mp4")) + (grid[:60] if quick else grid)
    videos = videos[start:]  # --fp-start: the rest of a scan that was stopped
    rows, t0 = [], time.perf_counter()

    def summary(complete: bool) -> dict:
        conf = np.array([r["confidence"] for r in rows if r["frames_used"]])
        return {"videos": len(rows), "of": len(videos), "complete": complete, "with_face": int(len(conf)),
                "false_positives": sum(r["found"] for r in rows),
                "magic_and_crc_match": sum(r["magic_ok"] and r["crc_ok"] for r in rows),
                "confidence_max": round(float(conf.max()), 3) if len(conf) else None,
                "confidence_p99": round(float(np.percentile(conf, 99)), 3) if len(conf) else None,
                "confidence_mean": round(float(conf.mean()), 3) if len(conf) else None,
                "threshold": vm.FOUND_THRESHOLD, "seconds": round(time.perf_counter() - t0, 1),
                "landmark_cache": bool(cache), "rows": rows}

    for i, v in enumerate(videos):
        if minutes and time.perf_counter() - t0 > 60 * minutes:
            print(f"video fp: stopped after {minutes} min at {i}/{len(videos)}", flush=True)
            break
        r = read_mark_with_faces(v, *tracked_faces(v, cache)) if cache else vm.read_video_mark(v, max_frames=None)
        rows.append({"video": v.name, "found": r.found, "confidence": r.confidence, "magic_ok": r.magic_ok,
                     "crc_ok": r.crc_ok, "corrected": r.corrected, "frames_used": r.frames_used})
        if i % 25 == 24:
            print(f"video fp {i + 1}/{len(videos)} ({time.perf_counter() - t0:.0f} s)", flush=True)
            if save is not None:
                save(summary(False))
    return summary(len(rows) == len(videos))


def _load(path: Path):
    from studio.audio.io import load_audio

    return load_audio(path, what="audio", allow_silent=True)


def audio_fp_part(data: Path, quick: bool, save=None, minutes: float = 0) -> dict:
    """Perth's confidence on every unmarked sound in DATA: the GRID clips', the faces-dev videos', every LibriSpeech
    file. The three sources are interleaved, so a run stopped by ``minutes`` has checked some of each; ``save`` gets
    the summary every 25 files."""
    from studio.trust import audio_mark

    sources = [sorted((data / "grid-s1" / "clips").glob("*.mp4")),
               sorted((data / "faces-dev" / "videos").glob("*.mp4")),
               sorted((data / "librispeech").rglob("*.flac"))]
    if quick:  # 50 GRID clips, the faces-dev videos and 50 LibriSpeech files
        sources = [sources[0][:50], sources[1], sources[2][-50:]]
    files = []  # round robin over the sources, in proportion to their sizes
    longest = max(len(s) for s in sources)
    for i in range(longest):
        for s in sources:
            a, b = int(i * len(s) / longest), int((i + 1) * len(s) / longest)
            files.extend(s[a:b])
    rows, t0, c0 = [], time.perf_counter(), time.process_time()

    def summary(complete: bool) -> dict:
        conf = np.array([r["confidence"] for r in rows])
        kinds = {"grid-s1": 0, "faces-dev": 0, "librispeech": 0}
        for r in rows:
            kinds[r["set"]] += 1
        return {"files": len(rows), "of": len(files), "complete": complete, "by_set": kinds,
                "false_positives": int((conf >= audio_mark.DETECT_THRESHOLD).sum()),
                "confidence_max": round(float(conf.max()), 3) if len(conf) else None,
                "confidence_mean": round(float(conf.mean()), 4) if len(conf) else None,
                "threshold": audio_mark.DETECT_THRESHOLD, "seconds": round(time.perf_counter() - t0, 1),
                "seconds_per_file": round((time.perf_counter() - t0) / max(1, len(rows)), 2),
                "cpu_seconds_per_file": round((time.process_time() - c0) / max(1, len(rows)), 2),
                "highest": sorted(rows, key=lambda r: -r["confidence"])[:5]}

    for i, f in enumerate(files):
        if minutes and time.perf_counter() - t0 > 60 * minutes:
            print(f"audio fp: stopped after {minutes} min at {i}/{len(files)}", flush=True)
            break
        audio, sr = _load(f)
        kind = "librispeech" if f.suffix == ".flac" else "faces-dev" if "faces-dev" in f.parts else "grid-s1"
        rows.append({"file": f.name, "set": kind, "confidence": round(audio_mark.detect(audio, sr), 3)})
        if i % 25 == 24:
            print(f"audio fp {i + 1}/{len(files)} ({time.perf_counter() - t0:.0f} s)", flush=True)
            if save is not None:
                save(summary(False))
    return summary(len(rows) == len(files))


# ---- audio mark under attack ----------------------------------------------------------------------------------
SENTENCES = [
    "Please leave the package at the front door before noon.",
    "The museum will open a new exhibition about ancient ships next month.",
    "Turn left at the bakery and walk two blocks toward the river.",
    "Our team finished the project three days earlier than planned.",
    "She poured a cup of tea and watched the rain fall on the garden.",
    "The train to the mountains leaves every morning at seven fifteen.",
    "Could you explain once more how the new heating system works?",
    "He wrote a long letter to his brother who lives across the ocean.",
    "After dinner, the children played a quiet game by the fireplace.",
    "I have never seen so many birds gathered on one small island.",
]


def audio_part(quick: bool, work: Path) -> dict:
    import soundfile as sf

    from studio.audio.io import resample
    from studio.trust import audio_mark
    from studio.voice.service import SpeakOptions, speak

    rng = np.random.default_rng(7)
    rows = []
    for i, text in enumerate(SENTENCES[: 3 if quick else 10]):
        plain = speak(text, options=SpeakOptions(audio_mark=False))
        audio, sr = plain.audio, plain.sample_rate
        t = time.perf_counter()
        marked = audio_mark.embed(audio, sr)
        embed_s = time.perf_counter() - t
        snr = 10 * np.log10(np.sum(audio ** 2) / max(np.sum((marked - audio) ** 2), 1e-12))
        wav, mp3 = work / f"s{i}.wav", work / f"s{i}.mp3"
        sf.write(wav, marked, sr)
        _ffmpeg(["-i", wav, "-c:a", "libmp3lame", "-b:a", "128k", mp3])
        noise = rng.standard_normal(len(marked)).astype(np.float32)
        noise *= np.sqrt(np.mean(marked ** 2) / np.mean(noise ** 2) / 10 ** (20 / 10))
        rows.append({"sentence": i, "seconds": round(len(audio) / sr, 2), "snr_db": round(float(snr), 2),
                     "embed_ms_per_s": round(1000 * embed_s / (len(audio) / sr), 1),
                     "as saved": audio_mark.detect(*_load(wav)),
                     "16 kHz resample": audio_mark.detect(resample(marked, sr, 16000), 16000),
                     "MP3 128k": audio_mark.detect(*_load(mp3)),
                     "noise 20 dB SNR": audio_mark.detect(np.clip(marked + noise, -1, 1), sr),
                     "unmarked": audio_mark.detect(audio, sr)})
        print(json.dumps(rows[-1]), flush=True)
    attacks = ["as saved", "16 kHz resample", "MP3 128k", "noise 20 dB SNR", "unmarked"]
    return {"sentences": len(rows), "snr_db": round(float(np.mean([r["snr_db"] for r in rows])), 2),
            "embed_ms_per_s": round(float(np.median([r["embed_ms_per_s"] for r in rows])), 1),
            "confidence": {a: {"mean": round(float(np.mean([r[a] for r in rows])), 3),
                               "min": round(float(np.min([r[a] for r in rows])), 3),
                               "max": round(float(np.max([r[a] for r in rows])), 3),
                               "detected": f"{sum(r[a] >= audio_mark.DETECT_THRESHOLD for r in rows)}/{len(rows)}"}
                           for a in attacks},
            "rows": rows}


# ---- `studio detect` --------------------------------------------------------------------------------------------
def detect_rows(data: Path, quick: bool, work: Path) -> list:
    """ROC AUC of ``studio detect`` per engine, on the held-out (test) half of ``benchmarks/detect.py``: real clips
    against the same clips re-synced by each engine, none of them seen when the detector's weights were fitted.
    Rendering and measuring that set takes ~30 min on the shared CPU, so it is run by ``benchmarks/detect.py``
    (``--fit`` refits ``checkpoints/detect_weights.npz``) and read here from ``benchmarks/results/detect.json``."""
    path = REPO / "benchmarks" / "results" / "detect.json"
    if not path.is_file():
        print("detect: run `python benchmarks/detect.py --fit` first", flush=True)
        return []
    res = json.loads(path.read_text())
    test = res["test"]
    rows = []
    for engine, r in test.items():
        if engine in ("scores", "all") or engine.startswith("all_"):
            continue
        rows.append({"engine": engine, "clips": f"{r['n_real']} real + {r['n_resynced']} re-synced",
                     "roc_auc": r["auc"], "median_p_resynced": r["median_resynced"]})
    n_real = len([k for k in test.get("scores", {}) if k.startswith("real/")])
    rows.append({"engine": "all engines", "clips": f"{n_real} real + {len(test['scores']) - n_real} re-synced",
                 "roc_auc": test["all"]["auc"], "median_p_resynced": test["all"]["median_resynced"],
                 "median_p_real": test["all"]["median_real"]})
    return rows


# ---- report -----------------------------------------------------------------------------------------------------
def table(report: dict) -> str:
    lines = ["| check | result | target |", "|---|---|---|"]
    v = report.get("video")
    if v:
        for name, s in v["summary"].items():
            lines.append(f"| video mark, {name} | bit accuracy {s['bit_accuracy_mean']:.3f} (min "
                         f"{s['bit_accuracy_min']:.3f}), found {s['found']} | >= 0.95 |")
        lines.append(f"| video mark PSNR | frame {v['psnr_frame_db']:.1f} dB, face box {v['psnr_face_box_db']:.1f} dB "
                     "| >= 40 dB |")
        e = v["embed_720p"]
        lines.append(f"| video mark embed, 1280x720 (shared) | {e['median_ms']:.2f} ms a frame median (p90 "
                     f"{e['p90_ms']:.2f}; CPU time {e.get('cpu_median_ms', float('nan')):.2f}) | <= 10 ms |")
    f = report.get("video_fp")
    if f:
        lines.append(f"| video mark false positives | {f['false_positives']}/{f['videos']} unmarked videos "
                     f"{'(all)' if f.get('complete') else 'of ' + str(f.get('of')) + ' (run stopped early)'} "
                     f"({f['with_face']} with a face; confidence max {f['confidence_max']}, threshold "
                     f"{f['threshold']}) | 0 |")
    a = report.get("audio")
    if a:
        for name, s in a["confidence"].items():
            lines.append(f"| audio mark, {name} | confidence {s['mean']:.3f} (min {s['min']:.3f}), detected "
                         f"{s['detected']} | {'< 0.5' if name == 'unmarked' else '>= 0.5'} |")
        lines.append(f"| audio mark SNR | {a['snr_db']:.1f} dB | |")
    af = report.get("audio_fp")
    if af:
        lines.append(f"| audio mark false positives | {af['false_positives']}/{af['files']} unmarked files "
                     f"{'(all)' if af.get('complete') else 'of ' + str(af.get('of')) + ' (run stopped early)'} "
                     f"(confidence max {af['confidence_max']}; {af.get('seconds_per_file')} s a file) | 0 |")
    for row in report.get("detect") or []:
        lines.append(f"| `detect` ROC AUC, {row.get('engine')} (held-out clips) | {row.get('roc_auc'):.3f} "
                     f"({row.get('clips')}; median p(re-synced) {row.get('median_p_resynced'):.2f}) | >= 0.9 |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", nargs="+", default=["video", "video_fp", "audio", "audio_fp", "detect"],
                    choices=["video", "video_fp", "audio", "audio_fp", "detect"])
    ap.add_argument("--out", help="JSON path (default benchmarks/results/trust[_quick].json)")
    ap.add_argument("--minutes", type=float, default=0,
                    help="video_fp, audio_fp: stop after this many minutes (0 = all)")
    ap.add_argument("--fp-start", type=int, default=0, help="video_fp: skip the first N videos (resume a scan)")
    ap.add_argument("--landmarks", help="video_fp: folder that keeps the tracked landmarks of every video, so that "
                                        "a rescan after a detector change does not track again")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    data = Path(args.data)
    out = Path(args.out or REPO / "benchmarks" / "results" / f"trust{'_quick' if args.quick else ''}.json")
    report = json.loads(out.read_text()) if out.is_file() else {}  # parts not rerun keep their last numbers
    report.update({"machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), OMP_NUM_THREADS="
                              f"{os.environ.get('OMP_NUM_THREADS')}", "quick": args.quick, "job_id": JOB})
    with tempfile.TemporaryDirectory(prefix="studio-trust-bench-") as tmp:
        work = Path(tmp)
        for part in args.parts:
            t0 = time.perf_counter()
            if part == "video":
                report["video"] = video_part(data, args.quick, work)
            elif part == "video_fp":
                def save(partial):
                    report["video_fp"] = partial
                    out.write_text(json.dumps(report, indent=2))

                report["video_fp"] = video_fp_part(data, args.quick, save, args.minutes, args.fp_start,
                                                   args.landmarks)
            elif part == "audio":
                report["audio"] = audio_part(args.quick, work)
            elif part == "audio_fp":
                def save_audio(partial):
                    report["audio_fp"] = partial
                    out.write_text(json.dumps(report, indent=2))

                report["audio_fp"] = audio_fp_part(data, args.quick, save_audio, args.minutes)
            elif part == "detect":
                report["detect"] = detect_rows(data, args.quick, work)
            if isinstance(report.get(part), dict):
                report[part]["quick"] = args.quick  # parts are rerun separately: each says how it was run
            print(f"{part}: {time.perf_counter() - t0:.0f} s", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2))
    print(table(report))


if __name__ == "__main__":
    main()
