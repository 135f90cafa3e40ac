"""Several speakers in one video: who says each line, the voice each speaker is cloned from, and which face says it.

- Lines carry speaker names from the subtitles (``NAME: text``, ``<v NAME>``); without names, and when the dub
  needs them (each speaker's own voice), the source speech of each line is diarized (``studio.audio.diarize``):
  the lines get the names "Speaker 1", "Speaker 2", ... in order of first appearance.
- A speaker's reference for cloning is their lines' stretches of the source sound, joined (minus any time another
  speaker's line overlaps).
- The face that says a line: when the shot holds several faces, every face is tracked through the line's slot and
  the one whose mouth opening follows the original speech best is passed to the lip-sync (``face_point``); a named
  speaker's lines vote together for one face position (on the benchmark's two-person scene, per-line choices on
  the bare slots were right for 2 of 6 lines; with 0.3 s around each slot and the vote, 6 of 6).
Results are cached in the job folder under a key of the video and the line times.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..log import get_logger
from .files import key, read_json, write_json
from .subtitles import SubtitleLine

log = get_logger("dubbing.speakers")

PREFIX = "Speaker"
FACE_PAD = 0.3  # seconds around a line's slot watched when choosing its face


def named(lines: Sequence[SubtitleLine]) -> bool:
    return any(s.speaker for s in lines)


def diarize_lines(lines: Sequence[SubtitleLine], audio: np.ndarray, sr: int, video_hash: str, folder: Path,
                  threshold: float) -> list[SubtitleLine]:
    """The lines with speaker names from diarization of their source speech (cached in ``folder``)."""
    from ..audio.diarize import speaker_labels

    k = key("speakers", 1, video_hash, [(s.start, s.end) for s in lines], threshold)
    meta = read_json(folder / "speakers.json")
    if meta and meta.get("key") == k:
        labels = meta["labels"]
    else:
        labels = speaker_labels(audio, sr, [(s.start, s.end) for s in lines], threshold)
        write_json(folder / "speakers.json", {"key": k, "labels": labels, "threshold": threshold})
    return [replace(s, speaker=f"{PREFIX} {n + 1}") for s, n in zip(lines, labels)]


def speaker_reference(lines: Sequence[SubtitleLine], speaker: str, audio: np.ndarray, sr: int) -> np.ndarray:
    """The source sound of ``speaker``'s lines, joined; stretches overlapped by another speaker's line are left out."""
    others = [(s.start, s.end) for s in lines if s.speaker != speaker]
    keep = np.zeros(len(audio), bool)
    for s in lines:
        if s.speaker == speaker:
            keep[int(s.start * sr):int(s.end * sr)] = True
    for a, b in others:
        keep[int(a * sr):int(b * sr)] = False
    return np.asarray(audio[keep], np.float32)


def speaking_faces(info, lines: Sequence[SubtitleLine], audio: np.ndarray, sr: int, video_hash: str, folder: Path,
                   tracker: str, progress) -> list[Optional[tuple[float, float]]]:
    """Per line: the centre of the face that says it (the face whose mouth follows the line's original sound
    best), or None when its slot shows fewer than two faces. Cached in ``folder``."""
    from ..face.active_speaker import FaceTracks
    from ..video.io import read_frames

    k = key("faces", 2, video_hash, [(s.start, s.end) for s in lines], tracker)
    meta = read_json(folder / "faces.json")
    if meta and meta.get("key") == k:
        return [tuple(p) if p else None for p in meta["points"]]
    fps = info.fps
    # the slot and FACE_PAD around it: the mouth closing before and after the line is part of what tells faces apart
    slots = [(max(0, int(round((s.start - FACE_PAD) * fps))), int(round((s.end + FACE_PAD) * fps))) for s in lines]
    last = max(b for _, b in slots) if slots else 0
    tracks: dict[int, FaceTracks] = {}
    points: list[Optional[tuple[float, float]]] = [None] * len(lines)
    scores: list[list] = [[] for _ in lines]
    try:
        for t, frame in enumerate(read_frames(info)):
            if t >= last:
                break
            progress.update("dub: finding the speaking faces", t, last)
            for i, (a, b) in enumerate(slots):
                if a <= t < b:
                    if i not in tracks:  # (not setdefault: that would build a face mesh every frame)
                        tracks[i] = FaceTracks(tracker)
                    tracks[i].add(frame)
                    if t == b - 1:  # the line's slot is over: score its faces, free the tracker
                        scores[i], points[i] = _decide(tracks.pop(i), audio, sr, a, fps)
        for i in list(tracks):  # slots running past the last frame
            scores[i], points[i] = _decide(tracks.pop(i), audio, sr, slots[i][0], fps)
    finally:
        for tr in tracks.values():
            tr.close()
    points = _per_speaker(lines, scores, points, 0.1 * max(info.width, info.height))
    write_json(folder / "faces.json", {"key": k, "points": [list(p) if p else None for p in points],
                                       "scores": scores})
    found = sum(p is not None for p in points)
    if found:
        log.info("several faces: the speaking face was chosen for %d of %d line(s)", found, len(lines))
    return points


def _per_speaker(lines, scores, points, near: float) -> list:
    """One face per named speaker: the position whose faces follow that speaker's sound best on average over
    all their lines (one short line is a noisy vote; a speaker rarely changes seats within a shot). A line with
    no face near that position keeps its own choice."""
    points = list(points)
    for name in dict.fromkeys(s.speaker for s in lines if s.speaker):
        mine = [i for i, s in enumerate(lines) if s.speaker == name and len(scores[i]) >= 2]
        if len(mine) < 2:
            continue

        def nearest(i, xy):
            found = [(float(np.hypot(c[1][0] - xy[0], c[1][1] - xy[1])), c) for c in scores[i]]
            d, c = min(found, key=lambda f: f[0])
            return c if d <= near else None

        best, best_score = None, -np.inf
        for i in mine:
            for _, xy in scores[i]:
                votes = [c[0] for c in (nearest(j, xy) for j in mine) if c is not None]
                if len(votes) * 2 >= len(mine) and np.mean(votes) > best_score:
                    best, best_score = xy, float(np.mean(votes))
        if best is None:
            continue
        for i in mine:
            c = nearest(i, best)
            if c is not None:
                points[i] = tuple(c[1])
    return points


def _decide(tracks, audio, sr, first_frame, fps):
    from ..face.active_speaker import pick_speaking_face, speech_envelope

    try:
        a = first_frame
        piece = audio[int(a / fps * sr):]
        env = speech_envelope(piece, sr, fps, tracks.frames)
        scores = tracks.scores(env)
        return [[round(c, 3), [round(x, 1), round(y, 1)]] for c, (x, y) in scores], pick_speaking_face(scores)
    finally:
        tracks.close()
