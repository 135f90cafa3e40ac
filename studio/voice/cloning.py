"""Voice conversion engines: base-voice speech in, the same speech in a reference speaker's voice out.

No voice-cloning or voice-conversion weights can be had offline, so the default engine is built from what can:
the base TTS voice, Whisper (to transcribe the reference) and the WORLD vocoder.

"knn" (default) — parallel kNN envelope conversion:
  1. at voice creation, the reference is transcribed and the base voice says the same words; the two are aligned
     frame by frame (DTW over MFCCs), which gives pairs (base frame, speaker frame) for the same sound;
  2. for each pair we keep the base frame's envelope with its context (the key) and the log-spectral difference
     speaker minus base (the delta), for voiced/voiced and unvoiced/unvoiced pairs only;
  3. at synthesis, each frame of new base speech looks up its k nearest keys — matching happens inside the base
     voice, so it is reliable — and gets the mean of their deltas added to its own envelope; F0 is mapped to
     the speaker's pitch level and range. The base envelope keeps the words clear; the deltas move the timbre.
  More reference audio gives more pairs and a closer voice.
"global" — the same pairs reduced to one average delta (a long-term spectrum match) plus the pitch mapping; a
  measured baseline, and a fallback for very short references.

Engines are a small Protocol so that stronger models (XTTS-v2, OpenVoice, ...) can be registered by users who have
their weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..audio.io import resample
from ..errors import InputError
from ..log import get_logger
from ..progress import Progress
from ..registry import Registry
from . import world

log = get_logger("voice.cloning")

MIN_PAIRS = 150  # aligned frame pairs (1.5 s of matched speech) below which no conversion is attempted


@dataclass(frozen=True)
class ConversionData:
    """What an engine needs of a voice, stored in the profile folder (``conversion.npz``)."""

    keys: np.ndarray  # (pairs, dims) float16 base-voice envelope contexts, normalised
    deltas: np.ndarray  # (pairs, ENVELOPE_DIMS) float32 speaker minus base, energy term zeroed
    key_mean: np.ndarray
    key_std: np.ndarray
    target_f0: tuple[float, float]  # log-F0 mean, std of the speaker
    base_f0: tuple[float, float]  # the same for the base voice saying the reference's words
    tempo: float = 1.0  # the speaker's speaking rate relative to the base voice (same words, speech time)

    def to_arrays(self) -> dict:
        return dict(keys=self.keys, deltas=self.deltas, key_mean=self.key_mean, key_std=self.key_std,
                    target_f0=np.array(self.target_f0), base_f0=np.array(self.base_f0),
                    tempo=np.array(self.tempo))

    @classmethod
    def from_arrays(cls, a) -> "ConversionData":
        return cls(a["keys"], a["deltas"], a["key_mean"], a["key_std"], tuple(map(float, a["target_f0"])),
                   tuple(map(float, a["base_f0"])), float(a["tempo"]))


class VoiceConverter(Protocol):
    name: str

    def prepare(self, reference: np.ndarray, sample_rate: int, *, progress: Progress) -> tuple[ConversionData, dict]:
        """Learn what the engine needs from a clean reference; returns the data and facts for the profile."""
        ...

    def convert(self, audio: np.ndarray, sample_rate: int, data: ConversionData, *,
                pitch_semitones: float = 0.0) -> np.ndarray:
        """The base-voice audio in the profile's voice, same length and sample rate."""
        ...


VOICE_CONVERTERS: Registry[VoiceConverter] = Registry("voice conversion engine")


def _mfcc(audio: np.ndarray, frames: int) -> np.ndarray:
    import librosa

    hop = int(world.WORK_RATE * world.FRAME_MS / 1000)
    m = librosa.feature.mfcc(y=audio, sr=world.WORK_RATE, n_mfcc=20, n_fft=1024, hop_length=hop, win_length=hop * 4)
    m = m[1:, :frames]
    return (m - m.mean(axis=1, keepdims=True)) / (m.std(axis=1, keepdims=True) + 1e-6)


def aligned_pairs(base: np.ndarray, speaker: np.ndarray) -> tuple[np.ndarray, np.ndarray, world.WorldFrames,
                                                                  world.WorldFrames]:
    """Frame pairs (base index, speaker index) of the same words said by both, by DTW over MFCCs."""
    import librosa

    fb, fs = world.analyse(base), world.analyse(speaker)
    nb, ns = len(fb.f0), len(fs.f0)
    mb, ms = _mfcc(base, nb), _mfcc(speaker, ns)
    nb, ns = min(nb, mb.shape[1]), min(ns, ms.shape[1])
    _, path = librosa.sequence.dtw(X=mb[:, :nb], Y=ms[:, :ns], metric="euclidean")
    i, j = path[::-1, 0], path[::-1, 1]
    keep = (fb.voiced[i] == fs.voiced[j]) & fb.loud[i] & fs.loud[j]
    return i[keep], j[keep], fb, fs


class KnnEnvelopeConverter:
    """Parallel kNN envelope conversion (see the module docstring); ``neighbours=None`` = the "global" engine."""

    def __init__(self, neighbours: int | None = 32, name: str = "knn"):
        self.neighbours = neighbours
        self.name = name

    # ---- creation ---------------------------------------------------------------------------------------------
    def prepare(self, reference: np.ndarray, sample_rate: int, *, progress: Progress,
                say=None) -> tuple[ConversionData, dict]:
        """``say``: text -> Speech, the base voice the conversion will start from (default: the piper voice; the
        "hybrid" voices pass their fitted Kokoro voice)."""
        from ..audio.asr import transcribe
        from .tts import synthesize

        say = say or synthesize

        ref = resample(reference, sample_rate, world.WORK_RATE)
        progress.update("transcribing the reference", 0, 1)
        segments = [s for s in transcribe(ref, world.WORK_RATE) if len(s.text.split()) >= 2]
        if not segments:
            raise InputError("no words could be recognised in the reference; give clear English speech of one "
                             "speaker (the bundled recogniser and base voice are English)")
        keys, deltas, f0_speaker, f0_base = [], [], [], []
        speech_time = [0.0, 0.0]  # speaker, base: voiced frames of the same words (robust to background noise)
        for k, seg in enumerate(segments):
            progress.update("aligning the reference with the base voice", k, len(segments))
            a, b = int(seg.start * world.WORK_RATE), int(seg.end * world.WORK_RATE)
            piece = ref[a:b]
            if len(piece) < world.WORK_RATE // 2:
                continue
            said = say(seg.text)
            base = resample(said.audio, said.sample_rate, world.WORK_RATE)
            i, j, fb, fs = aligned_pairs(base, piece)
            if len(i) == 0:
                continue
            keys.append(world.with_context(fb.envelope)[i])
            d = fs.envelope[j] - fb.envelope[i]
            d[:, 0] = 0.0  # loudness is matched separately; the energy term would also lift silences
            deltas.append(d)
            speech_time[0] += fs.voiced.sum()
            speech_time[1] += fb.voiced.sum()
            f0_speaker.append(fs.f0[fs.loud])
            f0_base.append(fb.f0[fb.loud])
        progress.update("aligning the reference with the base voice", len(segments), len(segments))
        pairs = sum(len(d) for d in deltas)
        if pairs < MIN_PAIRS:
            raise InputError("the reference could not be matched with its transcript (too little clear English "
                             "speech?); give at least 10 s of one speaker talking clearly")
        key = np.concatenate(keys)
        mean, std = key.mean(axis=0), key.std(axis=0) + 1e-6
        data = ConversionData(((key - mean) / std).astype(np.float16), np.concatenate(deltas).astype(np.float32),
                              mean.astype(np.float32), std.astype(np.float32),
                              world.log_f0_stats(np.concatenate(f0_speaker)),
                              world.log_f0_stats(np.concatenate(f0_base)),
                              float(np.clip(speech_time[1] / max(1.0, speech_time[0]), 0.7, 1.4)))
        facts = {"aligned_frames": int(pairs), "transcript": " ".join(s.text for s in segments),
                 "pitch_hz": round(float(np.exp(data.target_f0[0])), 1), "tempo": round(data.tempo, 3)}
        return data, facts

    # ---- synthesis --------------------------------------------------------------------------------------------
    def _delta(self, keys: np.ndarray, data: ConversionData) -> np.ndarray:
        """The mean envelope delta of each frame's k nearest keys."""
        n = len(keys)
        if self.neighbours is None or self.neighbours >= len(data.deltas):
            return np.broadcast_to(data.deltas.mean(axis=0), (n, data.deltas.shape[1]))
        bank = data.keys.astype(np.float32)
        bank_sq = np.einsum("ij,ij->i", bank, bank)
        k = self.neighbours
        out = np.empty((n, data.deltas.shape[1]), np.float32)
        for s in range(0, n, 512):  # bounded memory for long lines
            d2 = bank_sq[None, :] - 2.0 * keys[s:s + 512] @ bank.T
            idx = np.argpartition(d2, k, axis=1)[:, :k]
            out[s:s + 512] = data.deltas[idx].mean(axis=1)
        return out

    def convert(self, audio: np.ndarray, sample_rate: int, data: ConversionData, *,
                pitch_semitones: float = 0.0) -> np.ndarray:
        x = resample(audio, sample_rate, world.WORK_RATE)
        if len(x) < world.WORK_RATE // 20 or float(np.max(np.abs(x), initial=0)) < 1e-4:
            return audio.astype(np.float32)
        frames = world.analyse(x)
        keys = (world.with_context(frames.envelope) - data.key_mean) / data.key_std
        envelope = frames.envelope + self._delta(keys.astype(np.float32), data)
        f0 = np.zeros_like(frames.f0)
        v = frames.voiced
        (mt, st), (mb, sb) = data.target_f0, data.base_f0
        f0[v] = np.exp((np.log(frames.f0[v]) - mb) / sb * st + mt + pitch_semitones * np.log(2) / 12)
        y = world.synthesize(f0, envelope, frames.aperiodicity)
        y = np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
        rms_in, rms_out = np.sqrt(np.mean(x ** 2)), np.sqrt(np.mean(y ** 2)) + 1e-9
        y = y * (rms_in / rms_out)
        peak = float(np.max(np.abs(y)))
        if peak > 0.99:
            y *= 0.99 / peak
        y = resample(y, world.WORK_RATE, sample_rate)
        return np.pad(y, (0, max(0, len(audio) - len(y))))[: len(audio)].astype(np.float32)


VOICE_CONVERTERS.register(
    "knn", "parallel kNN envelope conversion over the reference (WORLD vocoder); more reference, closer voice"
)(lambda: KnnEnvelopeConverter(32, "knn"))
VOICE_CONVERTERS.register(
    "global", "one average spectral difference plus pitch mapping (baseline; robust on short references)"
)(lambda: KnnEnvelopeConverter(None, "global"))

DEFAULT_CONVERTER = "knn"
