"""Subtitles: read SRT and WebVTT in any common encoding, validate them, write them back.

Parsing uses ``srt`` (SRT) and ``webvtt-py`` (WebVTT); both take decoded text, so the bytes are decoded here first:
a byte-order mark (UTF-8, UTF-16, UTF-32), then strict UTF-8, then UTF-16 without a mark (many NUL bytes), then
``chardet``'s guess, then cp1252. A line may name its speaker: ``ANNA: text`` (a name in capitals before a colon)
or a WebVTT voice tag ``<v Anna>text``.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError
from ..log import get_logger
from .files import write_text

log = get_logger("dubbing.subtitles")

SUFFIXES = (".srt", ".vtt")
END_TOLERANCE = 0.05  # seconds a line may end after the video's end (rounding of the last frame)
_SPEAKER = re.compile(r"^\s*[-–]?\s*([A-Z][A-Z0-9 .'_-]{0,31}?)\s*:\s+(\S.*)$", re.S)
_VOICE_TAG = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]+)>")
_TAGS = re.compile(r"</?[a-zA-Z][^>]*>|\{\\[^}]*\}")  # <i>, <b>, <font ...>, <c.x>, ASS overrides {\an8}


@dataclass(frozen=True)
class SubtitleLine:
    index: int  # 1-based position in the file (after sorting by start time)
    start: float  # seconds
    end: float
    text: str  # the words, tags removed; line breaks kept
    speaker: Optional[str] = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def spoken(self) -> str:
        """The text as one line, for speech."""
        return " ".join(part.strip() for part in self.text.splitlines() if part.strip())


@dataclass(frozen=True)
class Subtitles:
    lines: tuple[SubtitleLine, ...]
    encoding: str
    format: str  # "srt" or "vtt"
    path: Optional[Path] = None


def stamp(seconds: float, sep: str = ",") -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


# ---- decoding --------------------------------------------------------------------------------------------------
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode(data: bytes, name: str = "subtitle file") -> tuple[str, str]:
    """(text, encoding) of subtitle bytes; InputError when no common encoding fits."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    nul_even, nul_odd = data[0::2].count(0), data[1::2].count(0)
    if len(data) >= 4 and max(nul_even, nul_odd) > 0.3 * len(data) / 2:
        encoding = "utf-16-le" if nul_odd > nul_even else "utf-16-be"
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            pass
    if b"\x00" not in data:
        candidates = []
        try:
            import chardet

            guess = chardet.detect(data)
            if guess.get("encoding") and (guess.get("confidence") or 0) >= 0.5:
                candidates.append(guess["encoding"])
        except ImportError:  # chardet is optional: cp1252 is the common case anyway
            pass
        for encoding in (*candidates, "cp1252"):
            try:
                return data.decode(encoding), encoding.lower()
            except (UnicodeDecodeError, LookupError):
                continue
    raise InputError(f"{name} cannot be decoded as text (not UTF-8, UTF-16 or cp1252; it may be a binary file); "
                     "save it as UTF-8 text and try again")


# ---- parsing ---------------------------------------------------------------------------------------------------
def _clean(text: str) -> str:
    lines = [_TAGS.sub("", part).strip() for part in text.replace("\r", "").split("\n")]
    return "\n".join(part for part in lines if part)


def _speaker(text: str, voice: Optional[str] = None) -> tuple[str, Optional[str]]:
    tag = _VOICE_TAG.search(text)
    if voice is None and tag:
        voice = tag.group(1).strip()
    text = _clean(text)
    if voice is None:
        m = _SPEAKER.match(text)
        if m and any(c.isalpha() for c in m.group(1)):
            voice, text = m.group(1).strip().title(), m.group(2).strip()
    return text, voice


def _parse_srt(text: str, name: str) -> list[SubtitleLine]:
    import srt

    try:
        subs = list(srt.parse(text, ignore_errors=False))
    except srt.SRTParseError as e:
        raise InputError(f"{name} is not a valid SRT file ({e}); each block needs a number, a "
                         "'00:00:01,000 --> 00:00:02,500' line and text") from None
    out = []
    for s in subs:
        body, speaker = _speaker(s.content)
        out.append(SubtitleLine(0, s.start.total_seconds(), s.end.total_seconds(), body, speaker))
    return out


def _seconds(ts) -> float:
    h, m, rest = str(ts).split(":")
    return int(h) * 3600 + int(m) * 60 + float(rest)


def _parse_vtt(text: str, name: str) -> list[SubtitleLine]:
    import webvtt
    from webvtt.errors import MalformedFileError

    try:
        vtt = webvtt.from_string(text.lstrip("\ufeff"))
    except (MalformedFileError, ValueError) as e:
        raise InputError(f"{name} is not a valid WebVTT file ({e}); it must start with 'WEBVTT' and have cues like "
                         "'00:01.000 --> 00:02.500'") from None
    out = []
    for c in vtt:
        body, speaker = _speaker(c.raw_text, c.voice)
        out.append(SubtitleLine(0, _seconds(c.start), _seconds(c.end), body, speaker))
    return out


def parse(text: str, fmt: str, name: str = "subtitle file") -> list[SubtitleLine]:
    """Lines of decoded SRT/VTT text, sorted by start time and numbered from 1 (not validated)."""
    lines = _parse_vtt(text, name) if fmt == "vtt" else _parse_srt(text, name)
    lines.sort(key=lambda s: (s.start, s.end))
    return [replace(s, index=i + 1) for i, s in enumerate(lines)]


def sniff_format(path: Path, text: str) -> str:
    if path.suffix.lower() == ".vtt" or text.lstrip("\ufeff").startswith("WEBVTT"):
        return "vtt"
    return "srt"


def read_subtitles(path, *, video_duration: Optional[float] = None) -> Subtitles:
    """Read and validate an SRT or WebVTT file (any common encoding)."""
    from ..video.io import check_input_file

    p = check_input_file(path, "subtitle")
    text, encoding = decode(p.read_bytes(), f"subtitle file {p}")
    fmt = sniff_format(p, text)
    lines = parse(text, fmt, f"subtitle file {p}")
    validate(lines, video_duration=video_duration, name=f"subtitle file {p}")
    log.info("read %d line(s) from %s (%s, %s)", len(lines), p, fmt, encoding)
    return Subtitles(tuple(lines), encoding, fmt, p)


def validate(lines: Sequence[SubtitleLine], *, video_duration: Optional[float] = None,
             name: str = "the subtitles") -> None:
    """Raise InputError naming every problem (up to 8): no lines, empty lines, bad or overlapping times, lines
    outside the video."""
    if not lines:
        raise InputError(f"{name} has no subtitle lines; give an SRT or WebVTT file with timed lines")
    problems = []
    prev: Optional[SubtitleLine] = None
    for s in lines:
        where = f"line {s.index} ({stamp(s.start)} --> {stamp(s.end)})"
        if not s.spoken.strip() or not re.search(r"\w", s.spoken):
            problems.append(f"{where} has no words; remove it or give it text")
        if s.end <= s.start:
            problems.append(f"{where} ends before it starts; fix its times")
        if prev is not None and s.start < prev.end - 1e-3:
            problems.append(f"{where} starts before line {prev.index} ends ({stamp(prev.end)}); overlapping lines "
                            "cannot be dubbed: shorten the earlier line or start this one later")
        if video_duration is not None:
            if s.start >= video_duration:
                problems.append(f"{where} starts after the video ends ({video_duration:.2f} s); the subtitles "
                                "belong to a longer video or need shifting")
            elif s.end > video_duration + END_TOLERANCE:
                problems.append(f"{where} ends after the video ends ({video_duration:.2f} s); end it at "
                                f"{stamp(video_duration)} or earlier")
        prev = s if prev is None or s.end > prev.end else prev
    if problems:
        more = f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""
        raise InputError(f"{name} cannot be dubbed: " + "; ".join(problems[:8]) + more)


# ---- writing ---------------------------------------------------------------------------------------------------
def _body(s: SubtitleLine, fmt: str) -> str:
    text = s.text.strip()
    if s.speaker:
        return f"<v {s.speaker}>{text}" if fmt == "vtt" else f"{s.speaker.upper()}: {text}"
    return text


def format_srt(lines: Sequence[SubtitleLine]) -> str:
    blocks = [f"{k}\n{stamp(s.start)} --> {stamp(s.end)}\n{_body(s, 'srt')}\n" for k, s in enumerate(lines, 1)]
    return "\n".join(blocks)


def format_vtt(lines: Sequence[SubtitleLine]) -> str:
    blocks = [f"{k}\n{stamp(s.start, '.')} --> {stamp(s.end, '.')}\n{_body(s, 'vtt')}\n" for k, s in enumerate(lines, 1)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def write_subtitles(lines: Sequence[SubtitleLine], path) -> Path:
    """Write UTF-8 SRT or VTT (by suffix), atomically."""
    p = Path(path)
    if p.suffix.lower() not in SUFFIXES:
        raise InputError(f"subtitle output {p} must end in .srt or .vtt")
    return write_text(p, format_vtt(lines) if p.suffix.lower() == ".vtt" else format_srt(lines))
