"""Fit each line's speech to its subtitle slot, in three steps, and report what each step did.

0. the engine's silence before the first sound and after the last is trimmed (a short pad kept), so the line's
   first sound plays at the slot's start; when the line is too long, pauses inside it longer than ``max_pause``
   are shortened to it first (no word is spoken faster for that);
1. speaking rate: the line is synthesized again, faster (up to ``max_rate``), when its natural length overruns;
2. pitch-keeping time-stretch, at most ``max_stretch`` (ffmpeg's ``rubberband`` filter when the installed ffmpeg
   has it, else ``atempo``);
3. borrowing silence from the gaps after and before the slot (keeping ``min_gap`` to the neighbours).

What still does not fit is played in full and reported as overflow (the next line then starts later); nothing is
cut silently. Lines shorter than their slot keep their natural pace and start at the slot's start.
"""
from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Callable, Optional, Sequence

import numpy as np

from ..log import get_logger
from ..types import PhonemeTiming, Speech

log = get_logger("dubbing.timing")


@dataclass(frozen=True)
class FitOptions:
    max_rate: float = 1.3  # fastest speaking rate asked of the TTS (1.0 = the voice's own pace)
    max_stretch: float = 1.25  # fastest pitch-keeping time-stretch after that
    min_gap: float = 0.08  # seconds of silence kept between two lines when borrowing
    tolerance: float = 0.02  # a line this much (relative) over its slot counts as fitting without changes
    trim: bool = True  # cut the engine's leading and trailing silence (the first sound starts the line)
    max_pause: Optional[float] = 0.12  # seconds: longer pauses inside a too-long line are shortened (None: kept)


@dataclass(frozen=True)
class LineFit:
    """Steps 1 and 2 for one line (they depend on the line alone, so they are cached per line)."""

    natural: float  # seconds at the voice's own pace
    rate: float  # speaking rate used (1.0 = own pace)
    stretch: float  # time-stretch factor applied afterwards (>1 = faster; 1.0 = none)
    duration: float  # seconds produced
    stretcher: Optional[str] = None  # "rubberband", "atempo" or None
    lead: float = 0.0  # seconds before the first sound (the trim's pad): placed before the slot's start


@dataclass(frozen=True)
class Placement:
    """Where a line's speech plays, and the report of its fit."""

    index: int
    slot_start: float
    slot_end: float
    start: float  # where the speech starts
    end: float  # where it ends
    natural: float
    produced: float
    rate: float
    stretch: float
    borrowed_before: float
    borrowed_after: float
    delayed: float  # seconds the start moved later because the line before overflowed
    overflow: float  # seconds of speech beyond the slot plus what could be borrowed
    cut_at_end: float = 0.0  # seconds of speech past the video's end (not in the output)
    lead: float = 0.0  # seconds from ``start`` to the first sound

    @property
    def sound_start(self) -> float:
        return self.start + self.lead

    @property
    def fits(self) -> bool:
        return self.overflow <= 1e-3 and self.cut_at_end <= 1e-3

    def as_dict(self) -> dict:
        d = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        d["slot"] = round(self.slot_end - self.slot_start, 3)
        d["fits"] = self.fits
        return d


@lru_cache(maxsize=4)
def _filters(exe: str) -> str:
    try:
        return subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def stretcher_name() -> str:
    """``rubberband`` when the installed ffmpeg has the filter, else ``atempo``."""
    from ..video.io import ffmpeg_exe

    return "rubberband" if " rubberband " in _filters(ffmpeg_exe()) else "atempo"


def time_stretch(speech: Speech, factor: float) -> tuple[Speech, str]:
    """Speech ``factor`` times faster (``factor`` > 1 shortens), pitch kept; phoneme timings follow."""
    from ..video.io import ffmpeg_exe

    name = stretcher_name()
    filt = f"rubberband=tempo={factor:.6f}:pitchq=quality" if name == "rubberband" else f"atempo={factor:.6f}"
    sr = speech.sample_rate
    args = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "f32le", "-ac", "1", "-ar", str(sr), "-i", "pipe:",
            "-af", filt, "-f", "f32le", "-ac", "1", "-ar", str(sr), "pipe:"]
    res = subprocess.run(args, input=np.ascontiguousarray(speech.audio, np.float32).tobytes(), capture_output=True)
    if res.returncode != 0:
        raise RuntimeError(f"ffmpeg {name} failed: {res.stderr.decode(errors='replace').strip()[-300:]}")
    audio = np.frombuffer(res.stdout, np.float32)
    target = int(round(len(speech.audio) / factor))
    audio = np.pad(audio, (0, max(0, target - len(audio))))[:target].astype(np.float32)
    phonemes = None
    if speech.phonemes is not None:
        phonemes = tuple(PhonemeTiming(p.phoneme, p.start / factor, p.end / factor) for p in speech.phonemes)
    return replace(speech, audio=audio, phonemes=phonemes), name


def fit_line(synth: Callable[[float], Speech], slot: float, options: FitOptions = FitOptions()) -> tuple[Speech, LineFit]:
    """Steps 0, 1 and 2: ``synth(rate)`` speaks the line at a rate (1.0 = own pace).

    The rate comes from the measured length of the first synthesis (trimmed, pauses shortened); an engine whose
    length does not scale exactly with the rate (Kokoro: its pauses and pads do not) gets one more try at the rate
    the second synthesis measures, before the time-stretch takes the rest."""
    from ..audio.trim import shorten_pauses, trim_silence

    limit = slot * (1 + options.tolerance)

    def spoken(rate: float) -> Speech:
        s = synth(rate)
        if options.trim:
            s = trim_silence(s)
        if s.duration > limit and options.max_pause is not None:
            s = shorten_pauses(s, options.max_pause)
        return s

    speech = spoken(1.0)
    natural = speech.duration
    rate, stretch, name = 1.0, 1.0, None
    if natural > limit and options.max_rate > 1.0:
        rate = float(min(options.max_rate, natural / slot))
        speech = spoken(rate)
        if speech.duration > limit and rate < options.max_rate - 1e-3:
            again = float(min(options.max_rate, rate * speech.duration / slot))
            if again > rate * 1.02:
                rate, speech = again, spoken(again)
    if speech.duration > limit and options.max_stretch > 1.0:
        stretch = float(min(options.max_stretch, speech.duration / slot))
        speech, name = time_stretch(speech, stretch)
    lead = 0.0
    if options.trim:
        from ..audio.trim import sound_bounds

        bounds = sound_bounds(speech.audio, speech.sample_rate)
        lead = bounds[0] if bounds else 0.0
    return speech, LineFit(round(natural, 4), round(rate, 4), round(stretch, 4), round(speech.duration, 4), name,
                           round(lead, 4))


def place(slots: Sequence[tuple[int, float, float]], fits: Sequence[LineFit], video_duration: float,
          options: FitOptions = FitOptions()) -> list[Placement]:
    """Step 3: where each line plays. ``slots`` are (index, start, end), sorted and not overlapping."""
    out: list[Placement] = []
    prev_end = 0.0
    for k, ((index, s0, s1), fit) in enumerate(zip(slots, fits)):
        earliest = 0.0 if k == 0 else prev_end + options.min_gap
        # only a line that ran past this slot's start delays it (slots that touch stay as they are)
        delayed = max(0.0, earliest - s0) if k and prev_end > s0 + 1e-6 else 0.0
        # the silence before the first sound goes before the slot (into the gap, never over the line before), so
        # the first sound plays at the slot's start
        lead = 0.0 if delayed else min(fit.lead, max(0.0, s0 - (prev_end if k else 0.0)))
        start = s0 + delayed - lead
        need = fit.duration - (s1 - start)
        before = after = 0.0
        if need > 1e-4:
            limit = slots[k + 1][1] - options.min_gap if k + 1 < len(slots) else video_duration
            after = float(np.clip(limit - s1, 0.0, need))
            need -= after
            if need > 1e-4 and delayed == 0.0:
                before = float(np.clip(start - earliest, 0.0, need))
                need -= before
                start -= before
        overflow = max(0.0, need)
        end = start + fit.duration
        cut = max(0.0, end - video_duration)
        out.append(Placement(index, s0, s1, start, end, fit.natural, fit.duration, fit.rate, fit.stretch,
                             before, after, delayed, overflow, cut, fit.lead))
        if overflow > 1e-3:
            log.warning("line %d is %.2f s longer than its slot even after rate %.2f, stretch %.2f and borrowing",
                        index, overflow, fit.rate, fit.stretch)
        prev_end = end
    return out


def summary(placements: Sequence[Placement]) -> dict:
    n = len(placements)
    return {
        "lines": n,
        "fit": sum(p.fits for p in placements),
        "overflowing": [p.index for p in placements if not p.fits],
        "max_stretch": round(max((p.stretch for p in placements), default=1.0), 3),
        "max_rate": round(max((p.rate for p in placements), default=1.0), 3),
        "mean_start_shift": round(float(np.mean([abs(p.sound_start - p.slot_start) for p in placements])) if n else 0.0, 3),
    }
