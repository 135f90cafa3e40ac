"""Wav2Lip's mel spectrogram, to the letter of its hparams, so official checkpoints see what they were trained on.

16 kHz audio, pre-emphasis 0.97, STFT (n_fft 800, hop 200, Hann window 800, centred with reflect padding as
librosa 0.7 did), magnitude -> 80 Slaney mel bands 55-7600 Hz, amplitude to dB minus 20 dB reference, symmetric
normalisation to [-4, 4] with min level -100 dB. Together: clip(1.6 * log10(max(1e-5, M)) + 2.4, -4, 4).
80 mel frames per second; a video frame at 25 fps spans 3.2 of them.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
FMIN, FMAX = 55.0, 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS = 4.0
MEL_STEP = 16  # mel frames per model window (0.2 s)
MEL_FPS = SAMPLE_RATE / HOP  # 80


@lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX).astype(np.float32)


def stft_magnitude(audio: np.ndarray) -> np.ndarray:
    """|STFT| (n_fft // 2 + 1, frames), centred frames with reflect padding, periodic Hann window."""
    from scipy.signal import get_window

    y = np.pad(audio.astype(np.float32), N_FFT // 2, mode="reflect")
    n_frames = 1 + (len(y) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(y, shape=(n_frames, N_FFT), strides=(y.strides[0] * HOP, y.strides[0]))
    window = get_window("hann", WIN, fftbins=True).astype(np.float32)
    return np.abs(np.fft.rfft(frames * window, axis=1)).T.astype(np.float32)


def normalise_db(mel_magnitude: np.ndarray) -> np.ndarray:
    """Amplitude -> dB (20 log10, floor 1e-5, minus the reference level) -> symmetric [-4, 4]."""
    db = 20.0 * np.log10(np.maximum(1e-5, mel_magnitude)) - REF_LEVEL_DB
    return np.clip(2 * MAX_ABS * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS, -MAX_ABS, MAX_ABS)


def wav2lip_mel(audio_16k: np.ndarray) -> np.ndarray:
    """(80, T) float32 mel spectrogram of 16 kHz mono audio, as Wav2Lip computes it."""
    from scipy.signal import lfilter

    audio = np.asarray(audio_16k, dtype=np.float32)
    if audio.ndim != 1 or len(audio) < 2:
        raise ValueError("wav2lip_mel needs 1-D audio of at least two samples")
    emphasised = lfilter([1.0, -PREEMPHASIS], [1.0], audio).astype(np.float32)
    return normalise_db(mel_basis() @ stft_magnitude(emphasised)).astype(np.float32)


def mel_windows(mel: np.ndarray, fps: float, n_frames: int, window: int = MEL_STEP) -> np.ndarray:
    """(n_frames, 80, window): the window starting at int(i * 80 / fps) for video frame i; past the end, the
    last ``window`` mel frames are repeated so every frame gets a full window."""
    n_mel = mel.shape[1]
    if n_mel < window:
        mel = np.pad(mel, ((0, 0), (0, window - n_mel)), mode="edge")
        n_mel = window
    starts = np.minimum((np.arange(n_frames) * MEL_FPS / fps).astype(int), n_mel - window)
    idx = starts[:, None] + np.arange(window)[None, :]
    return np.ascontiguousarray(mel[:, idx].transpose(1, 0, 2), dtype=np.float32)
