"""Cleaning a reference recording before a voice is made from it.

The reference is resampled, cut to its speech with silero-vad (silences, music and noise between phrases go),
loudness-normalised, and checked: too little speech, no speech at all (music, silence, noise) and a poor
speech-to-background ratio are refused with a message that says what to record instead.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..audio.io import resample
from ..errors import InputError, MissingDependencyError
from ..log import get_logger

log = get_logger("voice.reference")

VAD_RATE = 16000
MIN_SPEECH_SECONDS = 3.0
MAX_REFERENCE_SECONDS = 600.0  # more than ten minutes adds little and makes creation slow
MIN_SPEECH_SHARE = 0.3  # of the non-silent audio; music and noise score far below this
MIN_SNR_DB = 10.0
TARGET_RMS_DB = -20.0  # speech loudness after normalisation (dBFS, RMS over speech only)
GAP = 0.08  # seconds of the original kept around each speech segment, so word edges are not clipped

_vad_lock = threading.Lock()


@dataclass(frozen=True)
class CleanReference:
    audio: np.ndarray  # float32 mono, speech only, loudness-normalised
    sample_rate: int
    speech_seconds: float
    input_seconds: float
    snr_db: float
    segments: int


@lru_cache(maxsize=1)
def _vad_model():
    try:
        from silero_vad import load_silero_vad
    except ImportError:
        raise MissingDependencyError("silero-vad is not installed; run `make setup`") from None
    return load_silero_vad()


def speech_segments(audio16k: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) sample ranges of speech in 16 kHz audio, from silero-vad."""
    import torch
    from silero_vad import get_speech_timestamps

    with _vad_lock:  # the TorchScript model keeps recurrent state: one caller at a time
        stamps = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(audio16k, dtype=np.float32)),
                                       _vad_model(), sampling_rate=VAD_RATE, min_speech_duration_ms=200,
                                       min_silence_duration_ms=150)
    return [(int(s["start"]), int(s["end"])) for s in stamps]


def _db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def clean_reference(audio: np.ndarray, sample_rate: int, *, out_rate: int | None = None) -> CleanReference:
    """Speech-only, loudness-normalised reference at ``out_rate`` (default: the input rate), or InputError."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise InputError("the reference must be mono audio")
    out_rate = out_rate or sample_rate
    seconds = len(audio) / sample_rate
    if seconds < MIN_SPEECH_SECONDS:
        raise InputError(f"the reference is {seconds:.1f} s long; give at least {MIN_SPEECH_SECONDS:.0f} s of "
                         "clear speech of one speaker (10 s to a few minutes works best)")
    if seconds > MAX_REFERENCE_SECONDS:
        log.info("reference is %.0f s long; using its first %.0f s", seconds, MAX_REFERENCE_SECONDS)
        audio = audio[: int(MAX_REFERENCE_SECONDS * sample_rate)]
    if float(np.max(np.abs(audio))) < 1e-4:
        raise InputError("the reference is silent; give a recording of one person speaking")
    a16 = resample(audio, sample_rate, VAD_RATE)
    segments = speech_segments(a16)
    mask = np.zeros(len(a16), bool)
    for s, e in segments:
        mask[s:e] = True
    speech_s = mask.sum() / VAD_RATE
    # "Non-silent" = frames within 40 dB of the loudest ones; speech should be most of that
    frame = VAD_RATE // 50
    n = len(a16) // frame
    energy = np.array([_db(a16[i * frame:(i + 1) * frame]) for i in range(n)]) if n else np.zeros(0)
    loud = energy > (np.percentile(energy, 99) - 40) if n else np.zeros(0, bool)
    frame_speech = mask[: n * frame].reshape(n, frame).any(axis=1) if n else np.zeros(0, bool)
    share = float((frame_speech & loud).sum() / max(1, loud.sum()))
    if speech_s < 0.5 or share < MIN_SPEECH_SHARE:
        raise InputError("no speech was found in the reference (is it music, noise or silence?); give a "
                         "recording of one person speaking, without music")
    if speech_s < MIN_SPEECH_SECONDS:
        raise InputError(f"the reference has only {speech_s:.1f} s of speech; give at least "
                         f"{MIN_SPEECH_SECONDS:.0f} s (10 s to a few minutes works best)")
    # background level = the median energy of the pauses (robust to breaths and word edges left in them)
    pauses = energy[~frame_speech]
    speech_db = _db(a16[mask])
    noise_db = float(np.median(pauses)) if len(pauses) >= 5 else -120.0
    snr = speech_db - noise_db
    if snr < MIN_SNR_DB:
        raise InputError(f"the reference is too noisy (speech is only {snr:.0f} dB above the background); record "
                         f"in a quieter place or give a cleaner take (at least {MIN_SNR_DB:.0f} dB is needed)")
    # keep the speech (with a little margin) at the output rate, joined with short pauses
    work = resample(audio, sample_rate, out_rate) if out_rate != sample_rate else audio
    scale = out_rate / VAD_RATE
    pad = int(GAP * out_rate)
    spans: list[list[int]] = []
    for s, e in segments:  # padded spans, merged where they touch, so no sample is taken twice
        a, b = max(0, int(s * scale) - pad), min(len(work), int(e * scale) + pad)
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    pause = np.zeros(int(0.1 * out_rate), np.float32)
    pieces = []
    for a, b in spans:
        pieces += [work[a:b], pause]
    clean = np.concatenate(pieces[:-1]).astype(np.float32)
    gain = 10 ** ((TARGET_RMS_DB - speech_db) / 20)
    clean = clean * gain
    peak = float(np.max(np.abs(clean)))
    if peak > 0.98:
        clean = clean * (0.98 / peak)
    return CleanReference(clean, out_rate, float(speech_s), float(seconds), float(snr), len(segments))
