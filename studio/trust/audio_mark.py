"""The audio watermark: Resemble AI's Perth implicit watermarker (MIT, its model ships inside the package).

Every speech the studio synthesizes or converts, and the sound track of every video it renders, carries it. The mark
is a yes/no mark (it carries no payload); it survives MP3 128k and resampling to 16 kHz. Detection gives a
confidence in [0, 1]: the mean of Perth's per-frame decisions (marked speech scores ~1, unmarked ~0).

The model loads once per process (the first call takes seconds: torch, torchaudio and librosa imports) and is
reused; loading is thread-safe.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import replace

import numpy as np

from ..errors import MissingDependencyError
from ..log import get_logger

log = get_logger("trust.audio")

# score above which audio counts as marked: midway between the highest unmarked file in ../shared/data (0.511, a
# LibriSpeech reading; 1012 files) and the lowest marked one after an attack (0.765, noise at 20 dB SNR), see
# benchmarks/results/trust.json
DETECT_THRESHOLD = 0.64
MIN_SECONDS = 0.25  # shorter audio is neither marked nor tested (too few frames for the detector)

_lock = threading.Lock()
_model = None
# the audio arrays this process marked (by id, weakly: they are freed as usual), so that a render does not mark
# speech a second time that speak() marked already
_marked: "weakref.WeakValueDictionary[int, np.ndarray]" = weakref.WeakValueDictionary()

_FIX = ("run `bash scripts/setup.sh` (it installs resemble-perth and torchaudio, with setuptools<81, and makes "
        "torchaudio importable next to the CPU build of torch)")


def _watermarker():
    """The Perth model, loaded on first use. Perth's package swallows its own import errors and leaves
    ``PerthImplicitWatermarker = None``; that is detected here and turned into an error that says how to fix it."""
    global _model
    with _lock:
        if _model is not None:
            return _model
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pkg_resources' deprecation notice from inside perth
            try:
                import perth
            except Exception as e:  # OSError from a torchaudio whose C++ extension does not match torch, ...
                raise MissingDependencyError(f"the audio watermark (resemble-perth) cannot be imported "
                                             f"({type(e).__name__}: {e}); {_FIX}") from None
            if getattr(perth, "PerthImplicitWatermarker", None) is None:
                reason = "unknown reason"
                try:  # import it again without perth's try/except to learn why it failed
                    from perth.perth_net.perth_net_implicit.perth_watermarker import PerthImplicitWatermarker  # noqa
                except Exception as e:
                    reason = f"{type(e).__name__}: {e}"
                raise MissingDependencyError(f"the audio watermark is unavailable: resemble-perth's "
                                             f"PerthImplicitWatermarker could not be imported ({reason}); {_FIX}")
            import contextlib
            import io

            import torch

            # Perth prints a line when its model loads; the library prints nothing, so it goes to the log
            printed = io.StringIO()
            with torch.inference_mode(), contextlib.redirect_stdout(printed):
                _model = perth.PerthImplicitWatermarker(device="cpu")
            if printed.getvalue().strip():
                log.info("perth: %s", printed.getvalue().strip())
        log.info("audio watermark model loaded")
        return _model


def check_available() -> None:
    """Raise MissingDependencyError (saying how to fix it) when the watermark cannot run here."""
    _watermarker()


# Perth's network sees the whole signal at once, so its memory grew with the audio (+74 MB for 10 s, +369 MB for
# 60 s). Long audio goes through it in pieces, each with context on both sides that is dropped afterwards: the
# context is far wider than the network's, the STFT's and the resampler's reach, and piece edges sit on the STFT's
# hop grid, so the result is the whole-signal one up to float rounding (audio of up to PIECE + 2 MARGIN seconds is
# one piece, exactly as before).
PIECE_SECONDS = 10.0
MARGIN_SECONDS = 1.0
PERTH_FRAMES_PER_SECOND = 100  # Perth's STFT hop: 320 samples at 32 kHz


def _pieces(n: int, sample_rate: int):
    """(start, stop, a, b) per piece: run on samples [a, b), keep [start, stop)."""
    import math

    sr = int(sample_rate)
    align = sr // math.gcd(sr, PERTH_FRAMES_PER_SECOND)  # samples that are a whole number of Perth hops
    piece = max(align, int(PIECE_SECONDS * sr) // align * align)
    margin = math.ceil(MARGIN_SECONDS * sr / align) * align
    if n <= piece + 2 * margin:
        yield 0, n, 0, n
        return
    for start in range(0, n, piece):
        stop = min(n, start + piece)
        yield start, stop, max(0, start - margin), min(n, stop + margin)


def embed(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``audio`` with the mark: float32 mono, same length and rate."""
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) < MIN_SECONDS * sample_rate:
        return audio
    import torch

    model = _watermarker()
    marked = np.empty_like(audio)
    for start, stop, a, b in _pieces(len(audio), sample_rate):
        with torch.inference_mode():
            part = np.asarray(model.apply_watermark(audio[a:b], sample_rate=int(sample_rate)), dtype=np.float32)
        if len(part) < b - a:  # the STFT round trip may differ by a few samples in length
            part = np.pad(part, (0, b - a - len(part)))
        marked[start:stop] = part[start - a: stop - a]
    marked = np.clip(marked, -1.0, 1.0)
    _marked[id(marked)] = marked
    return marked


def detect(audio: np.ndarray, sample_rate: int) -> float:
    """Confidence in [0, 1] that ``audio`` carries the Perth mark (the studio's, or anyone's who uses Perth)."""
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) < MIN_SECONDS * sample_rate or not np.any(audio):
        return 0.0
    import torch

    model = _watermarker()
    total, weight = 0.0, 0
    for start, stop, a, b in _pieces(len(audio), sample_rate):
        with torch.inference_mode():
            # Perth's own round=True turns its score into 0 or 1 at 0.5: an unmarked LibriSpeech file scoring 0.511
            # became "1.00, marked". The score itself is kept, and DETECT_THRESHOLD is set from what unmarked and
            # marked audio score (benchmarks/trust.py)
            frames = model.get_watermark(audio[a:b], sample_rate=int(sample_rate), round=False)
        if np.size(frames):  # each piece's confidence counts by the length it stands for
            total += float(np.clip(np.mean(frames), 0.0, 1.0)) * (stop - start)
            weight += stop - start
    return total / weight if weight else 0.0


def was_marked_here(audio: np.ndarray) -> bool:
    """Whether this very array came out of :func:`embed` in this process."""
    return _marked.get(id(audio)) is audio


def mark_speech(speech, *, check_first: bool = False):
    """A ``studio.types.Speech`` whose audio carries the mark (the same object when this process marked it).

    ``check_first`` (for audio that came from outside, e.g. a file given to lipsync): when the audio is marked
    already it is left as it is, since marking twice lowers its quality (SNR 16 -> 10 dB) for nothing."""
    if was_marked_here(speech.audio):
        return speech
    if check_first and detect(speech.audio, speech.sample_rate) >= DETECT_THRESHOLD:
        _marked[id(speech.audio)] = speech.audio
        return speech
    return replace(speech, audio=embed(speech.audio, speech.sample_rate))
