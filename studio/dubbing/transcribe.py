"""Timed lines from the video's own speech, for a dub without subtitles.

The language of the speech is detected (multilingual Whisper base) unless given; English is transcribed by the
bundled Whisper tiny.en, other languages by the multilingual base (``studio.audio.asr.transcribe_words``), with
word timestamps and the silero voice-activity filter. The words are grouped into subtitle lines at pauses,
sentence ends and a length limit. The transcript is written to the job folder as SRT, so it is made once per
video, and a user can correct it and pass it back with ``--subs``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError
from ..log import get_logger
from .files import read_json, write_json
from .subtitles import SubtitleLine, write_subtitles

log = get_logger("dubbing.transcribe")

MODEL = "whisper-tiny.en|base+snap1"  # part of the cache key: a change here makes a new transcript


@dataclass(frozen=True)
class LineRules:
    pause: float = 0.6  # a silence this long between two words starts a new line
    max_seconds: float = 6.0
    max_chars: int = 84
    min_seconds_at_sentence_end: float = 1.2  # a sentence end closes a line that is at least this long


def group_words(words: Sequence[tuple[float, float, str]], rules: LineRules = LineRules()) -> list[SubtitleLine]:
    """Subtitle lines from (start, end, word) triples in time order."""
    lines: list[list[tuple[float, float, str]]] = []
    for w in words:
        if not w[2].strip():
            continue
        if lines:
            cur = lines[-1]
            text = " ".join(x[2].strip() for x in cur)
            sentence_end = cur[-1][2].strip()[-1:] in ".!?…" and cur[-1][1] - cur[0][0] >= rules.min_seconds_at_sentence_end
            if not (w[0] - cur[-1][1] >= rules.pause or w[1] - cur[0][0] > rules.max_seconds
                    or len(text) + 1 + len(w[2].strip()) > rules.max_chars or sentence_end):
                cur.append(w)
                continue
        lines.append([w])
    out = []
    for k, group in enumerate(lines, 1):
        out.append(SubtitleLine(k, round(group[0][0], 3), round(max(group[-1][1], group[0][0] + 0.2), 3),
                                " ".join(x[2].strip() for x in group)))
    return out


def snap_to_speech(lines: Sequence[SubtitleLine], audio, sr: int, back: float = 0.3, forward: float = 1.0,
                   floor_db: float = -35.0) -> list[SubtitleLine]:
    """Lines with their starts and ends moved to where the sound really begins and ends (Whisper's word times are
    often early by a few hundred milliseconds): the first and last 10 ms frame above ``floor_db`` (relative to the
    loudest frame) from ``back`` seconds before to ``forward`` seconds after the given start (never past the
    line's end), and the same mirrored for the end; neighbours never overlap."""
    import numpy as np

    hop = int(0.01 * sr)
    n = len(audio) // hop
    if n == 0:
        return list(lines)
    rms = np.sqrt(np.mean(audio[:n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    loud = rms > rms.max() * 10 ** (floor_db / 20)
    out: list[SubtitleLine] = []
    for k, s in enumerate(lines):
        lo = max(0, int((s.start - back) * 100))
        hi = min(n, int(min(s.end, s.start + forward) * 100) + 1)
        if out:
            lo = max(lo, int(np.ceil(out[-1].end * 100)))
        idx = np.flatnonzero(loud[lo:hi])
        start = (lo + idx[0]) / 100 if len(idx) else s.start
        lo2 = max(int(start * 100), int((s.end - forward) * 100))
        hi2 = min(n, int((s.end + back) * 100) + 1)
        nxt = lines[k + 1].start if k + 1 < len(lines) else None
        if nxt is not None:
            hi2 = min(hi2, max(lo2, int(nxt * 100)))
        idx = np.flatnonzero(loud[lo2:hi2])
        end = (lo2 + idx[-1] + 1) / 100 if len(idx) else s.end
        if end - start < 0.2:
            start, end = s.start, max(s.end, s.start + 0.2)
        out.append(SubtitleLine(s.index, round(float(start), 3), round(float(end), 3), s.text, s.speaker))
    return out


def _words(audio, sample_rate: int, language):
    from ..audio.asr import transcribe_words

    words, language, probability = transcribe_words(audio, sample_rate, language)
    return [(w.start, w.end, w.text) for w in words], language, probability


def transcript(video: Path, video_hash: str, language: Optional[str], folder: Path, progress) -> tuple[Path, str]:
    """The job's transcript of ``video`` as SRT and the language spoken (``language``, or detected when None);
    made once, then read from ``folder``."""
    from ..audio.io import load_audio
    from .translate import language_name

    meta = read_json(folder / "transcript.json")
    if (meta and meta.get("video") == video_hash and meta.get("model") == MODEL
            and meta.get("asked") == language and (folder / meta.get("file", "-")).is_file()):
        return folder / meta["file"], meta["language"]
    progress.update("dub: transcribing", 0, 1)
    audio, sr = load_audio(video, 16000, what="video")
    words, spoken, probability = _words(audio, sr, language)
    if language is None:
        log.info("the speech of %s is in %s (p = %.2f)", video, language_name(spoken), probability)
        if probability < 0.5:
            log.warning("the language of %s is uncertain (%s, p = %.2f); give it with --language if wrong",
                        video, spoken, probability)
    lines = snap_to_speech(group_words(words), audio, sr)
    if not lines:
        raise InputError(f"no speech was recognised in the sound track of {video}; give subtitles with --subs")
    path = folder / f"transcript.{spoken}.srt"
    write_subtitles(lines, path)
    write_json(folder / "transcript.json", {"video": video_hash, "model": MODEL, "asked": language,
                                            "language": spoken, "probability": round(probability, 3),
                                            "file": path.name, "lines": len(lines)})
    progress.update("dub: transcribing", 1, 1)
    log.info("transcribed %d line(s) from %s into %s", len(lines), video, path)
    return path, spoken
