"""Measure a video mark embedded in the face-aligned crop (issue 17, item 4): what bit accuracy survives x264 CRF 28,
half scale and a 10 % crop, at what PSNR and embedding cost. A measurement, not the studio's mark yet.

    python benchmarks/video_mark.py [--grid ../shared/data/grid-s1/clips] [--clips 3] [--height 720]

The idea (from the issue): the region a lip-sync changes is known in face-aligned coordinates, and the face is found
again after scaling or cropping, so a mark defined in those coordinates is re-aligned by the detector and a crop or
rescale of the frame does not move it. Here: each frame's face is aligned to a 128 x 128 canonical crop by a
similarity transform fitted to 6 landmarks (eye corners, nose tip, mouth corners, chin); 32 payload bits are spread
over 32 pseudo-random +-1 block patterns (16 x 16 blocks, smoothed) inside a feathered lower-face mask; their signed
sum, times a strength in grey levels, is warped back to the frame and added to its luma. The detector tracks the face
in the attacked video, aligns it the same way, high-passes the crop's luma and correlates it with each pattern; bits
are the signs of the least-squares estimates (the patterns' cross-talk removed through their Gram matrix), per
frame and summed over all frames of a clip (every frame carries the whole payload, so any trimmed
part still decodes). Unmarked clips give the false-positive baseline (bit accuracy around 0.5, low correlation).

Writes benchmarks/results/video_mark.json. Without the GRID clips it uses a synthetic clip (the astronaut photo,
moving slightly), whose numbers are not comparable; the JSON says which input was used.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIZE = 128
BITS = 32
BLOCKS = 16
# mediapipe indices: outer eye corners, inner eye corners, nose tip, mouth corners, chin
POINTS = [33, 133, 362, 263, 1, 61, 291, 152]


def canonical_points(lm: np.ndarray) -> np.ndarray:
    """Where POINTS go in the canonical crop: the first face's points, normalised (eyes level, fixed scale)."""
    import cv2

    pts = lm[POINTS].astype(np.float32)
    left, right = pts[:2].mean(0), pts[2:4].mean(0)
    # eyes at (40, 44) and (88, 44)
    src = np.float32([left, right])
    dst = np.float32([[40, 44], [88, 44]])
    d_src, d_dst = src[1] - src[0], dst[1] - dst[0]
    scale = np.linalg.norm(d_dst) / np.linalg.norm(d_src)
    angle = np.arctan2(d_dst[1], d_dst[0]) - np.arctan2(d_src[1], d_src[0])
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    m = np.float32([[c, -s, 0], [s, c, 0]])
    m[:, 2] = dst[0] - m[:, :2] @ src[0]
    return cv2.transform(pts[None], m)[0]


def align(lm: np.ndarray, template: np.ndarray) -> np.ndarray:
    import cv2

    m, _ = cv2.estimateAffinePartial2D(lm[POINTS].astype(np.float32), template, method=cv2.LMEDS)
    return m


def patterns(seed: int = 17) -> tuple[np.ndarray, np.ndarray]:
    """(BITS, SIZE, SIZE) zero-mean block patterns and the feathered lower-face mask."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(BITS):
        blocks = rng.choice([-1.0, 1.0], size=(BLOCKS, BLOCKS)).astype(np.float32)
        p = cv2.resize(blocks, (SIZE, SIZE), interpolation=cv2.INTER_NEAREST)
        p = cv2.GaussianBlur(p, (0, 0), 1.5)
        out.append(p - p.mean())
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    mask = (((xx - 64) / 46) ** 2 + ((yy - 92) / 34) ** 2 <= 1).astype(np.float32)
    mask = cv2.GaussianBlur(mask, (0, 0), 5)
    return np.stack(out), mask


def embed_frame(frame: np.ndarray, m: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Add the canonical-space ``signal`` (grey levels) to the frame's luma through the inverse of ``m``."""
    import cv2

    h, w = frame.shape[:2]
    delta = cv2.warpAffine(signal, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # luma-only change: adding the same amount to R, G and B changes Y by it and leaves the chroma alone
    return np.clip(frame.astype(np.float32) + delta[..., None], 0, 255).astype(np.uint8)


def correlations(frame: np.ndarray, m: np.ndarray, pats_hp: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import cv2

    crop = cv2.warpAffine(frame, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    y = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)[..., 0].astype(np.float32)
    hp = (y - cv2.GaussianBlur(y, (0, 0), 4)) * mask
    hp /= np.linalg.norm(hp) + 1e-6
    return pats_hp.reshape(BITS, -1) @ hp.reshape(-1)


def _track(path: Path):
    from studio.face import track_frames
    from studio.video.io import probe, read_frames

    info = probe(path)
    frames = list(read_frames(info))
    faces = list(track_frames(iter(frames), info.fps or 25))
    return frames, faces, info.fps or 25


def _ffmpeg(src: Path, dst: Path, vf: str | None, crf: int) -> Path:
    args = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(src)]
    if vf:
        args += ["-vf", vf]
    subprocess.run(args + ["-c:v", "libx264", "-crf", str(crf), "-preset", "veryfast", "-pix_fmt", "yuv420p",
                           "-an", str(dst)], check=True)
    return dst


ATTACKS = {
    "studio encode (CRF 18)": (None, 18),
    "CRF 23": (None, 23),
    "CRF 28": (None, 28),
    "half scale": ("scale=trunc(iw/4)*2:trunc(ih/4)*2", 18),
    "10 % crop": ("crop=trunc(iw*0.9/2)*2:trunc(ih*0.9/2)*2:trunc(iw*0.03/2)*2:trunc(ih*0.07/2)*2", 18),
    "CRF 28 + half scale": ("scale=trunc(iw/4)*2:trunc(ih/4)*2", 28),
}


def decode(path: Path, template, pats_hp, mask):
    frames, faces, _ = _track(path)
    index = np.array([i for i, face in enumerate(faces) if face is not None])
    scores = np.array([correlations(f, align(face.landmarks, template), pats_hp, mask)
                       for f, face in zip(frames, faces) if face is not None])
    if len(scores):
        # the patterns overlap inside the mask: undo their cross-talk (least squares, through their Gram matrix)
        flat = pats_hp.reshape(BITS, -1)
        scores = np.linalg.solve(flat @ flat.T, scores.T).T
    return scores, index, len(frames)


def temporal_sign(i: int, period: int) -> float:
    """+1 for ``period`` frames, then -1 for as many (1 when period is 0: the same mark on every frame)."""
    return 1.0 if period <= 0 or (i // period) % 2 == 0 else -1.0


def decode_clip(scores: np.ndarray, index: np.ndarray, period: int) -> np.ndarray:
    """Bit estimates from per-frame scores. With a temporal sign, the phase is unknown after trimming: every phase
    is tried and the strongest kept; the face's own (static) texture then cancels out. Bit 0 is a known sync bit
    (+1) that fixes the overall sign."""
    if period <= 0:
        return scores.sum(0)
    best = None
    for offset in range(2 * period):
        signs = np.array([temporal_sign(int(i) + offset, period) for i in index])
        est = (signs[:, None] * scores).sum(0)
        if best is None or np.abs(est).sum() > np.abs(best).sum():
            best = est
    return best if best[0] >= 0 else -best


def run_clip(src: Path, height: int, strength: float, work: Path, payload: np.ndarray, pats, mask,
             period: int = 0) -> dict:
    import cv2

    from studio.video.io import VideoWriter

    frames, faces, fps = _track(src)
    if height and frames[0].shape[0] != height:
        w = int(round(frames[0].shape[1] * height / frames[0].shape[0] / 2)) * 2
        scale = height / frames[0].shape[0]
        frames = [cv2.resize(f, (w, height), interpolation=cv2.INTER_CUBIC) for f in frames]
        from dataclasses import replace

        faces = [None if f is None else replace(f, landmarks=f.landmarks * scale,
                                                box=tuple(int(round(v * scale)) for v in f.box)) for f in faces]
    first = next(f for f in faces if f is not None)
    template = canonical_points(first.landmarks)
    signal = strength * np.tensordot(payload, pats, axes=1) / np.sqrt(BITS) * mask
    signal = signal.astype(np.float32)
    marked, t_embed, psnr, psnr_face = [], [], [], []
    for i, (frame, face) in enumerate(zip(frames, faces)):
        if face is None:
            marked.append(frame)
            continue
        t = time.perf_counter()
        m = align(face.landmarks, template)
        out = embed_frame(frame, m, signal * temporal_sign(i, period))
        t_embed.append(time.perf_counter() - t)
        mse = np.mean((out.astype(np.float32) - frame) ** 2)
        psnr.append(10 * np.log10(255 ** 2 / max(mse, 1e-9)))
        x1, y1, x2, y2 = (max(0, int(v)) for v in face.box)  # the face box: where the mark is
        mse_face = np.mean((out[y1:y2, x1:x2].astype(np.float32) - frame[y1:y2, x1:x2]) ** 2)
        psnr_face.append(10 * np.log10(255 ** 2 / max(mse_face, 1e-9)))
        marked.append(out)
    h, w = frames[0].shape[:2]
    plain_path, marked_path = work / f"{src.stem}.plain.mp4", work / f"{src.stem}.marked.mp4"
    for path, seq in ((plain_path, frames), (marked_path, marked)):
        with VideoWriter(path, w, h, fps, crf=0 if path == plain_path else 18) as writer:
            for f in seq:
                writer.write(f)
    import cv2 as _cv2

    pats_hp = np.stack([(p - _cv2.GaussianBlur(p, (0, 0), 4)) * mask for p in pats])
    pats_hp /= np.linalg.norm(pats_hp.reshape(BITS, -1), axis=1)[:, None, None]
    result = {"clip": src.name, "frames": len(frames), "size": f"{w}x{h}", "psnr_db": round(float(np.mean(psnr)), 2),
              "psnr_face_db": round(float(np.mean(psnr_face)), 2), "embed_ms_per_frame": round(1000 * float(np.median(t_embed)), 2), "attacks": {}}
    def score(path: Path) -> dict:
        scores, index, n = decode(path, template, pats_hp, mask)
        if len(scores) == 0:
            return {"faces_found": 0, "frames": n}
        signs = np.array([temporal_sign(int(i), period) for i in index])[:, None]
        whole = decode_clip(scores, index, period)
        second = max(1, int(round(fps)))  # a 1 s excerpt from the middle: trimming
        mid = slice(len(scores) // 2 - second // 2, len(scores) // 2 - second // 2 + second)
        trimmed = decode_clip(scores[mid], index[mid] - index[mid][0] + 3, period)  # phase unknown to it
        bits = slice(1, None) if period > 0 else slice(None)  # bit 0 is the sync bit with a temporal sign
        return {"faces_found": len(scores), "frames": n,
                "bit_accuracy_per_frame": round(float(np.mean(np.sign(scores * signs)[:, bits] == payload[None, bits])), 3),
                "bit_accuracy_clip": round(float(np.mean(np.sign(whole[bits]) == payload[bits])), 3),
                "bit_accuracy_1s_trim": round(float(np.mean(np.sign(trimmed[bits]) == payload[bits])), 3),
                "correlation": round(float(np.mean(scores * signs * payload[None])), 4)}

    for name, (vf, crf) in ATTACKS.items():
        result["attacks"][name] = score(_ffmpeg(marked_path, work / f"{src.stem}.{crf}.{abs(hash(name)) % 10**6}.mp4",
                                                vf, crf))
    # false-positive baseline: the unmarked clip, lossless and after CRF 28
    result["attacks"]["unmarked (lossless)"] = score(plain_path)
    result["attacks"]["unmarked CRF 28"] = score(_ffmpeg(plain_path, work / f"{src.stem}.plain28.mp4", None, 28))
    return result


def synthetic_clip(path: Path) -> Path:
    import cv2
    from skimage import data

    from studio.video.io import VideoWriter

    img = cv2.resize(data.astronaut(), (360, 360))
    with VideoWriter(path, 360, 360, 25, crf=0) as writer:
        for i in range(50):
            m = np.float32([[1, 0, 3 * np.sin(i / 5)], [0, 1, 2 * np.cos(i / 7)]])
            writer.write(cv2.warpAffine(img, m, (360, 360), borderMode=cv2.BORDER_REPLICATE))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", default=str(REPO.parent / "shared" / "data" / "grid-s1" / "clips"))
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--height", type=int, default=720, help="scale clips to this height first (0 = as they are)")
    ap.add_argument("--strength", type=float, default=6.0, help="mark amplitude in grey levels (before the mask)")
    ap.add_argument("--period", type=int, default=4,
                    help="the mark's sign flips every PERIOD frames (0 = the same mark on every frame)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "video_mark.json"))
    args = ap.parse_args()

    pats, mask = patterns()
    payload = np.random.default_rng(5).choice([-1.0, 1.0], size=BITS)
    payload[0] = 1.0  # the sync bit
    grid = Path(args.grid)
    with tempfile.TemporaryDirectory(prefix="studio-video-mark-") as tmp:
        work = Path(tmp)
        if grid.is_dir():
            clips, source = sorted(grid.glob("*.mp4"))[: args.clips], f"GRID s1 ({grid.name})"
        else:
            clips, source = [synthetic_clip(work / "synthetic.mp4")], "synthetic (astronaut photo, moving)"
        results = []
        for clip in clips:
            r = run_clip(clip, args.height, args.strength, work, payload, pats, mask, args.period)
            print(json.dumps(r), flush=True)
            results.append(r)
    summary = {}
    for name in results[0]["attacks"]:
        rows = [r["attacks"][name] for r in results if "bit_accuracy_clip" in r["attacks"][name]]
        summary[name] = {k: round(float(np.mean([row[k] for row in rows])), 3)
                         for k in ("bit_accuracy_per_frame", "bit_accuracy_clip", "bit_accuracy_1s_trim",
                                   "correlation")} if rows else {}
    report = {"input": source, "height": args.height, "strength": args.strength, "period": args.period, "bits": BITS,
              "psnr_db": round(float(np.mean([r["psnr_db"] for r in results])), 2),
              "psnr_face_db": round(float(np.mean([r["psnr_face_db"] for r in results])), 2),
              "embed_ms_per_frame": round(float(np.mean([r["embed_ms_per_frame"] for r in results])), 2),
              "summary": summary, "clips": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("input", "psnr_db", "psnr_face_db", "embed_ms_per_frame", "summary")},
                     indent=2))


if __name__ == "__main__":
    main()
