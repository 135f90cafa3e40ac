"""Speaker adaptation of Kokoro by gradient: the 256-d style moved by Adam through the PyTorch Kokoro
(``kokoro_torch``) and a differentiable copy of the resemblyzer speaker encoder.

The loss is ``1 - cosine(resemblyzer(Kokoro(style, sentence)), reference embedding)`` over several fitting
sentences (one per step, in turn), so the style is pushed toward the speaker rather than toward one sentence.
Frames per token are predicted again (without gradient) at every step from the current style; the gradient reaches
the style through the pitch/energy predictor and the decoder. The start is the closest shipped voice (as in
``kokoro_fit``), the step per dimension is scaled by how much the shipped voices differ there (the prosody half at
half), and the offset is clipped to the shipped voices' range widened by one spread, so the voice stays in the
model's range. Budget: CPU seconds of this process.

The fit sees only the reference's embedding; the fitting sentences are none of the benchmark's.
"""
from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
import torch

from ..log import get_logger
from ..progress import Progress

log = get_logger("voice.kokoro_gradfit")

FIT_SENTENCES = (
    "When sunlight strikes raindrops in the air, they form a rainbow.",
    "My grandmother kept a small garden full of herbs and roses.",
    "Nobody expected the winter to arrive so early this year.",
    "We counted seven boats drifting slowly past the harbour.",
)
LEARNING_RATE = 0.05  # Adam, on the offset in units of the shipped voices' spread
PROSODY_STEP = 0.5
EMBED_RATE = 16000


class TorchResemblyzer:
    """resemblyzer's ``embed_utterance`` in torch, so that gradients reach the audio: FFT resampling to 16 kHz,
    the volume raised to -30 dBFS when quieter (as ``preprocess_wav``), the same 40-band mel power spectrogram
    (25 ms Hann windows, 10 ms hop, librosa's filters), 1.6 s partials at resemblyzer's rate, the mean of their
    embeddings, normalised. Not done: the VAD trimming of long silences (Kokoro's sentences have none)."""

    def __init__(self):
        import librosa

        from .profiles import _speaker_encoder

        self.encoder = _speaker_encoder().eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.mel = torch.from_numpy(librosa.filters.mel(sr=EMBED_RATE, n_fft=400, n_mels=40)).float()
        self.window = torch.hann_window(400)

    def __call__(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        from resemblyzer.hparams import partials_n_frames

        x = audio.reshape(-1)
        if sample_rate != EMBED_RATE:  # band-limited resampling through the spectrum (differentiable)
            n_out = int(round(len(x) * EMBED_RATE / sample_rate))
            spec = torch.fft.rfft(x)[: n_out // 2 + 1]
            x = torch.fft.irfft(spec, n=n_out) * (n_out / len(x))
        rms = torch.sqrt(torch.mean(x ** 2) + 1e-12)
        x = x * torch.clamp(10 ** (-30 / 20) / rms, min=1.0)
        spec = torch.stft(x, 400, 160, window=self.window, center=True, pad_mode="constant", return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2  # not abs() ** 2: its gradient is NaN at exact zeros
        mel = (self.mel @ power).T  # (frames, 40)
        _, slices = self.encoder.compute_partial_slices(len(x), rate=1.3, min_coverage=0.75)
        need = slices[-1].stop
        if need > len(mel):
            mel = torch.nn.functional.pad(mel, (0, 0, 0, need - len(mel)))
        partials = torch.stack([mel[s] for s in slices])
        assert partials.shape[1] == partials_n_frames
        e = self.encoder(partials).mean(dim=0)
        return e / torch.linalg.norm(e)


@lru_cache(maxsize=1)
def torch_resemblyzer() -> TorchResemblyzer:
    return TorchResemblyzer()


def _tokens(text: str, language: str = "en") -> list[int]:
    from .kokoro import _tokenizer, phonemize

    tok = _tokenizer()
    return tok.tokenize(tok.known(phonemize(text, language)), limit=None)


def fit_style_gradient(reference: np.ndarray, sample_rate: int, *, budget_s: float = 300.0, seed: int = 0,
                       sentences=None, learning_rate: float = LEARNING_RATE, max_steps: int | None = None,
                       start: str | None = None, progress: Progress | None = None):
    """The Kokoro style fitted to the reference speaker by gradient within ``budget_s`` CPU seconds of this process
    (0 = the closest shipped voice; any other budget runs at least one step) and at most ``max_steps`` steps.
    ``sentences``: what the voice says while fitting (None = FIT_SENTENCES); ``start``: the shipped voice to start
    from (None = the closest to the reference). Returns a ``kokoro_fit.StyleFit``
    (``evaluations`` = gradient steps; ``score`` = the fitted style's cosine on ``kokoro_fit.FIT_SENTENCE``, spoken by
    the ONNX model as every voice is, so the two fits report the same measure)."""
    from .kokoro import VOICES, _styles
    from .kokoro_fit import StyleFit, _embed, closest_shipped_voice, score_style
    from .kokoro_torch import kokoro_model

    progress = Progress.of(progress)
    t0 = time.process_time()
    torch.manual_seed(seed)
    shipped = _styles()
    if start is None:
        base_voice, base_score, target, _ = closest_shipped_voice(reference, sample_rate, progress=progress)
    else:
        target = _embed(reference, sample_rate)
        base_voice, base_score = start, score_style(shipped[start], target)[0]
    base = shipped[base_voice]
    if budget_s <= 0:
        return StyleFit(base.copy(), base_voice, round(base_score, 4), round(base_score, 4), 0,
                        round(time.process_time() - t0, 1))
    stack = np.stack([shipped[v] for v in VOICES])
    spread = stack.std(axis=0).mean(axis=0) + 1e-4
    scale = torch.from_numpy((spread * np.r_[np.ones(128), np.full(128, PROSODY_STEP)]).astype(np.float32))
    lo = torch.from_numpy((stack.min(axis=(0, 1)) - spread - base.mean(axis=0)).astype(np.float32))
    hi = torch.from_numpy((stack.max(axis=(0, 1)) + spread - base.mean(axis=0)).astype(np.float32))
    model = kokoro_model()
    embed = torch_resemblyzer()
    goal = torch.from_numpy(np.asarray(target, np.float32))
    items = []
    with torch.no_grad():
        for text in sentences or FIT_SENTENCES:
            tokens = _tokens(text)
            ids = torch.tensor([[0, *tokens, 0]], dtype=torch.long)
            items.append((ids, model.text_features(ids), torch.from_numpy(base[len(tokens) - 1][None])))
    z = torch.zeros(256, requires_grad=True)
    opt = torch.optim.Adam([z], lr=learning_rate)
    steps, history = 0, []
    while (steps == 0 or time.process_time() - t0 < budget_s) and (max_steps is None or steps < max_steps):
        ids, text, row = items[steps % len(items)]
        delta = torch.maximum(torch.minimum(z * scale, hi), lo)
        audio, _ = model(ids, row + delta, text=text)
        cos = embed(audio, 24000) @ goal
        opt.zero_grad()
        (1 - cos).backward()
        opt.step()
        steps += 1
        history.append(float(cos.detach()))
        log.debug("gradient step %d: cosine %.3f on fit sentence %d", steps, history[-1], (steps - 1) % len(items))
        progress.update("fitting the Kokoro voice (gradient)", int(time.process_time() - t0), int(budget_s))
        progress.check()
    with torch.no_grad():
        delta = torch.maximum(torch.minimum(z * scale, hi), lo).numpy()
    style = (base + delta).astype(np.float32)
    score = score_style(style, target)[0] if steps else base_score
    seconds = time.process_time() - t0
    log.info("Kokoro style fitted by gradient: %d steps, fit-sentence cosine %s, FIT_SENTENCE %.3f -> %.3f (%.0f s)",
             steps, " ".join(f"{c:.3f}" for c in history[-len(items):]), base_score, score, seconds)
    return StyleFit(style, base_voice, round(base_score, 4), round(score, 4), steps, round(seconds, 1))
