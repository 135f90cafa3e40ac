"""An untimed script (one line per cue, optional ``NAME: `` prefix) timed against the source speech.

The speech is transcribed with word timestamps (``studio.audio.asr.transcribe_words``); the script's words and the
recognised words are aligned as two sequences (difflib's longest matching blocks over normalised words), and each
cue takes the times of its first and last matched word. A cue with no matched word (the recogniser missed it) is
placed in the gap its neighbours leave, in proportion to its length. The times are then snapped to the sound like
a transcript's (``transcribe.snap_to_speech``).
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError
from ..log import get_logger
from .subtitles import SubtitleLine, decode

log = get_logger("dubbing.script")

SUFFIXES = (".txt",)
_NAME = re.compile(r"^\s*([^\W\d][\w .'-]{0,31}?)\s*:\s+(\S.*)$")


def is_script(path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


def read_script(path) -> list[tuple[Optional[str], str]]:
    """(speaker or None, text) per non-empty line of a plain text script (any common encoding)."""
    from ..video.io import check_input_file

    p = check_input_file(path, "script")
    text, _ = decode(p.read_bytes(), f"script {p}")
    cues = []
    for raw in text.lstrip("\ufeff").splitlines():
        raw = raw.strip()
        if not raw:
            continue
        m = _NAME.match(raw)
        speaker, body = (m.group(1).strip().title(), m.group(2).strip()) if m else (None, raw)
        if re.search(r"\w", body):
            cues.append((speaker, body))
    if not cues:
        raise InputError(f"script {p} has no lines; write one line of dialogue per line (optionally 'NAME: text')")
    return cues


def normalise(word: str) -> str:
    w = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in w if c.isalnum())


def align(cues: Sequence[tuple[Optional[str], str]], words: Sequence[tuple[float, float, str]],
          duration: float) -> list[SubtitleLine]:
    """Timed lines for ``cues`` from recognised ``words`` ((start, end, word), in time order)."""
    script, owner = [], []
    for k, (_, text) in enumerate(cues):
        for w in text.split():
            if normalise(w):
                script.append(normalise(w))
                owner.append(k)
    heard = [(a, b, normalise(w)) for a, b, w in words if normalise(w)]
    matcher = difflib.SequenceMatcher(None, script, [w for _, _, w in heard], autojunk=False)
    times: list[list[tuple[float, float]]] = [[] for _ in cues]
    matched = 0
    for block in matcher.get_matching_blocks():
        for i in range(block.size):
            a, b, _ = heard[block.b + i]
            times[owner[block.a + i]].append((a, b))
            matched += 1
    if not matched:
        raise InputError("none of the script's words were heard in the video's speech; check that the script "
                         "belongs to this video and is in the language spoken (--lang)")
    spans: list[Optional[tuple[float, float]]] = [(t[0][0], t[-1][1]) if t else None for t in times]
    _fill_gaps(spans, [len(text) for _, text in cues], duration)
    log.info("script: %d of %d words matched the speech", matched, len(script))
    return [SubtitleLine(k + 1, round(a, 3), round(max(b, a + 0.2), 3), text, speaker)
            for k, ((speaker, text), (a, b)) in enumerate(zip(cues, spans))]


def _fill_gaps(spans: list, weights: Sequence[int], duration: float) -> None:
    """Cues without times share the gap between their timed neighbours in proportion to their length."""
    k = 0
    while k < len(spans):
        if spans[k] is not None:
            k += 1
            continue
        j = k
        while j < len(spans) and spans[j] is None:
            j += 1
        lo = spans[k - 1][1] if k > 0 else 0.0
        hi = spans[j][0] if j < len(spans) else duration
        total = sum(weights[k:j]) or 1
        t = lo
        for i in range(k, j):
            step = (hi - lo) * weights[i] / total
            spans[i] = (t, t + step)
            t += step
        k = j


def timed_script(path, video: Path, video_hash: str, language: Optional[str], duration: float, folder: Path,
                 progress) -> tuple[Path, str]:
    """The script at ``path`` timed against ``video``'s speech, written as SRT in the job ``folder`` (made once
    per video and script), and the language spoken."""
    from ..audio.asr import transcribe_words
    from ..audio.io import load_audio
    from ..hashing import file_sha256
    from .files import key, read_json, write_json
    from .subtitles import write_subtitles
    from .transcribe import snap_to_speech

    cues = read_script(path)
    k = key("script", 1, video_hash, file_sha256(Path(path)), language)
    meta = read_json(folder / "script.json")
    if meta and meta.get("key") == k and (folder / meta["file"]).is_file():
        return folder / meta["file"], meta["language"]
    progress.update("dub: aligning the script", 0, 1)
    audio, sr = load_audio(video, 16000, what="video")
    words, spoken, _ = transcribe_words(audio, sr, language)
    lines = snap_to_speech(align(cues, [(w.start, w.end, w.text) for w in words], duration), audio, sr)
    out = write_subtitles(lines, folder / f"script.{spoken}.srt")
    write_json(folder / "script.json", {"key": k, "file": out.name, "language": spoken, "lines": len(lines)})
    progress.update("dub: aligning the script", 1, 1)
    return out, spoken
