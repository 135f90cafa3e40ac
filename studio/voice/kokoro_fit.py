"""Speaker adaptation of Kokoro: fit the 256-d style vector to a reference speaker. Two methods, registered in
STYLE_FITS: "search" (this module, no gradients) and "gradient" (``kokoro_gradfit``, through a PyTorch Kokoro).

Kokoro's voice is a style vector: its first 128 values drive the decoder (timbre), the last 128 the prosody
predictor (durations, pitch, energy). A speaker's style is searched for directly:

1. start from the shipped voice closest to the reference (each says FIT_SENTENCE; resemblyzer cosine to the
   reference's mean embedding) - that alone is the "unfitted" Kokoro voice;
2. a (1+lambda) evolution strategy over an offset added to every row of that voice's style table, scored by the
   same cosine, step size adapted by the 1/5 success rule, kept within the budget of seconds it is given.

Regularisers, so the speech stays intelligible and the voice stays in the model's range: each dimension's step is
scaled by how much the shipped voices differ in it (the prosody half at half that), the offset is clipped to the
shipped voices' range widened by one such spread, and a candidate whose speech is more than MAX_LENGTH_CHANGE
longer or shorter than the starting voice's is rejected (a broken duration predictor mumbles).

The search needs only the ONNX model, but it learns the fit sentence and resemblyzer more than the speaker (its gain
on the scored sentence mostly does not carry over to new sentences, README "Cloned voices"); the gradient fit
(``kokoro_gradfit``) does carry over. Both use only the reference: whatever scores the result must use other speech.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..log import get_logger
from ..progress import Progress
from ..registry import Registry

log = get_logger("voice.kokoro_fit")

# spoken by every candidate; not one of the benchmark's sentences
FIT_SENTENCE = "When sunlight strikes raindrops in the air, they form a rainbow."
MAX_LENGTH_CHANGE = 0.25
PROSODY_STEP = 0.5  # the prosody half moves at half the timbre half's step: durations and intonation stay sane


@dataclass(frozen=True)
class StyleFit:
    style: np.ndarray  # (rows, 256) float32 style table, as the shipped voices
    base_voice: str  # the shipped voice the fit started from
    base_score: float  # its cosine to the reference (resemblyzer, FIT_SENTENCE)
    score: float  # the fitted style's cosine
    evaluations: int
    seconds: float  # CPU seconds


def _embed(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    from .similarity import encoder

    return encoder("resemblyzer").embed(audio, sample_rate)


def closest_shipped_voice(reference: np.ndarray, sample_rate: int, *,
                          progress: Progress | None = None) -> tuple[str, float, np.ndarray, int]:
    """The shipped Kokoro voice closest to the reference (each says FIT_SENTENCE; resemblyzer cosine to the
    reference), its cosine, the reference's embedding and the length of that voice's FIT_SENTENCE in samples."""
    from .kokoro import VOICES, _styles

    progress = Progress.of(progress)
    target = _embed(reference, sample_rate)
    progress.update("choosing the closest Kokoro voice", 0, 1)
    scores = {}
    for v in VOICES:
        scores[v] = score_style(_styles()[v], target)
        progress.check()
    best = max(scores, key=lambda v: scores[v][0])
    log.info("closest shipped Kokoro voice %s (cosine %.3f)", best, scores[best][0])
    return best, scores[best][0], target, scores[best][1]


def score_style(style: np.ndarray, target: np.ndarray) -> tuple[float, int]:
    """Resemblyzer cosine between the style saying FIT_SENTENCE (ONNX Kokoro) and a unit target embedding, and the
    length of that speech in samples."""
    from .kokoro import SAMPLE_RATE, KokoroTTS

    audio = KokoroTTS(style=style).synthesize(FIT_SENTENCE).audio
    return float(_embed(audio, SAMPLE_RATE) @ target), len(audio)


def fit_style(reference: np.ndarray, sample_rate: int, *, budget_s: float = 120.0, seed: int = 0,
              offspring: int = 4, progress: Progress | None = None) -> StyleFit:
    """The Kokoro style closest to the reference speaker found within ``budget_s`` CPU seconds of this process
    (CPU, not wall-clock time, so that the fit is the same on a busy machine; 0 = the closest shipped voice; any
    other budget runs at least one generation)."""
    from .kokoro import SAMPLE_RATE, VOICES, KokoroTTS, _styles

    progress = Progress.of(progress)
    t0 = time.process_time()
    tts = KokoroTTS()
    shipped = _styles()

    def say(table: np.ndarray) -> np.ndarray:
        tts.style = table
        return tts.synthesize(FIT_SENTENCE).audio

    def score(audio: np.ndarray) -> float:
        return float(_embed(audio, SAMPLE_RATE) @ target)

    base_voice, base_score, target, base_len = closest_shipped_voice(reference, sample_rate, progress=progress)
    base = shipped[base_voice]
    evaluations = len(VOICES)

    # per-dimension scale: how much the shipped voices differ (mean over the table rows)
    stack = np.stack([shipped[v] for v in VOICES])  # (voices, rows, 256)
    spread = stack.std(axis=0).mean(axis=0) + 1e-4
    scale = spread * np.r_[np.ones(128), np.full(128, PROSODY_STEP)]
    lo = stack.min(axis=(0, 1)) - spread - base.mean(axis=0)
    hi = stack.max(axis=(0, 1)) + spread - base.mean(axis=0)
    rng = np.random.default_rng(seed)
    best_delta, best = np.zeros(256, np.float32), base_score
    sigma = 0.5
    generations = 0
    while budget_s > 0 and (generations == 0 or time.process_time() - t0 < budget_s):  # any budget: one generation
        generations += 1
        wins = 0
        gen_best = None
        for _ in range(offspring):
            delta = np.clip(best_delta + sigma * scale * rng.standard_normal(256), lo, hi).astype(np.float32)
            audio = say(base + delta)
            evaluations += 1
            if abs(len(audio) / base_len - 1) > MAX_LENGTH_CHANGE:
                continue
            s = score(audio)
            if s > best:
                wins += 1
                if gen_best is None or s > gen_best[0]:
                    gen_best = (s, delta)
            progress.check()
        if gen_best is not None:
            best, best_delta = gen_best
        # 1/5 success rule: widen the search while it keeps finding better voices, narrow it when it does not
        sigma = float(np.clip(sigma * (1.5 if wins / offspring > 0.2 else 0.8), 0.05, 2.0))
        progress.update("fitting the Kokoro voice", int(time.process_time() - t0), int(budget_s))
    seconds = time.process_time() - t0
    log.info("Kokoro style fitted: cosine %.3f -> %.3f in %d evaluations (%.0f s)", base_score, best, evaluations,
             seconds)
    return StyleFit((base + best_delta).astype(np.float32), base_voice, round(base_score, 4), round(best, 4),
                    evaluations, round(seconds, 1))


# ways of fitting the style; a voice profile stores only the result (style.npy), never how it was found
STYLE_FITS: Registry = Registry("Kokoro style fit")
STYLE_FITS.register("search", "(1+4) evolution strategy over the style, scored by resemblyzer (ONNX Kokoro; "
                    "no gradients)")(lambda: fit_style)


def _gradient_fit(*args, **kwargs) -> StyleFit:
    from .kokoro_gradfit import fit_style_gradient

    return fit_style_gradient(*args, **kwargs)


STYLE_FITS.register("gradient", "Adam on the style through the PyTorch Kokoro and a differentiable resemblyzer "
                    "(kokoro_gradfit)")(lambda: _gradient_fit)
