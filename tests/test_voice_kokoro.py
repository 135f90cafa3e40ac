"""Voices on Kokoro (engines "kokoro" and "hybrid"): the style fit, the profile, speaking other languages in it, and
the second speaker encoder that scores clones."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from studio.errors import InputError
from studio.voice import kokoro_fit, kokoro_gradfit, profiles
from studio.voice.kokoro import _styles
from studio.voice.profiles import VoiceProfile, load_voice
from studio.voice.service import SpeakOptions, speak
from studio.voice.similarity import SPEAKER_ENCODERS, encoder
from studio.voice.tts import synthesize

CONSENT = "test speaker: synthetic speech made by the test suite"
READING = "The old lighthouse keeper climbed the stairs every evening and lit the lamp for the ships."


@pytest.fixture(scope="module")
def kumo() -> tuple[np.ndarray, int]:
    """A 'speaker' that is one of Kokoro's own shipped voices, with a little noise as a recording would have."""
    s = synthesize(READING, engine="kokoro", voice="jm_kumo")
    rng = np.random.default_rng(0)
    return s.audio + rng.normal(0, 3e-4, len(s.audio)).astype(np.float32), s.sample_rate


def test_second_encoder_tells_voices_apart(kumo):
    assert {"resemblyzer", "voicefilter"} <= set(SPEAKER_ENCODERS.names())
    vf = encoder("voicefilter")
    audio, sr = kumo
    half = len(audio) // 2  # the two halves: the same voice, different words
    other = synthesize("Could you send me the report before noon?")  # the piper voice
    a, b, c = vf.embed(audio[:half], sr), vf.embed(audio[half:], sr), vf.embed(other.audio, other.sample_rate)
    assert abs(np.linalg.norm(a) - 1) < 1e-4
    assert a @ b > a @ c + 0.05


def test_cli_kokoro_voice_is_fitted_and_speaks_spanish(kumo, tmp_path, capsys, monkeypatch):
    from studio.cli import main

    # short lines keep the test quick: the one the fit speaks, and the one the new voice is checked with
    monkeypatch.setattr(kokoro_fit, "FIT_SENTENCE", "Hello there, my friend.")
    monkeypatch.setattr(kokoro_gradfit, "FIT_SENTENCES", ("Hello there, my friend.",))
    monkeypatch.setattr(profiles, "CHECK_LINE", "The quick brown fox jumps over the lazy dog.")
    ref = tmp_path / "ref.wav"
    sf.write(str(ref), *kumo)
    # the smallest budget: the closest shipped voice, then one step of the fit (a gradient step, by default)
    assert main(["voice", "create", "--name", "anna", "--from", str(ref), "--consent", CONSENT,
                 "--engine", "kokoro", "--fit-seconds", "0.01"]) == 0
    assert "speaks en, es, fr, it, pt" in capsys.readouterr().out
    v = load_voice("anna")
    assert v.engine == "kokoro" and v.data is None and not (v.path / "conversion.npz").exists()
    f = v.facts
    assert f["kokoro_start_voice"] == "jm_kumo"  # the reference is that shipped voice
    assert f["kokoro_fit_method"] == profiles.KOKORO_FIT_METHOD == "gradient" and f["kokoro_fit_evaluations"] == 1
    assert v.style.shape == _styles()["jm_kumo"].shape and np.isfinite(v.style).all()
    assert f["similarity_to_reference"] > 0.8
    out = tmp_path / "es.wav"
    assert main(["speak", "--voice", "anna", "--lang", "es", "--text", "Hola, ¿cómo estás?", "-o", str(out)]) == 0
    audio, sr = sf.read(str(out))
    assert sr == 24000 and len(audio) > sr * 0.5
    # a dub speaks its Spanish lines in the voice too
    from studio.dubbing.speech import DubVoice, synthesize_line

    line = synthesize_line("Hola a todos.", language="es", engine="kokoro", voice=DubVoice("profile", "p", v, CONSENT))
    assert line.sample_rate == 24000 and line.duration > 0.4
    # the app's Speak menu offers the voice's languages
    from studio.ui.app import StudioApp

    menu = StudioApp(workdir=tmp_path / "app").voice_languages("anna", "es")
    assert [c[1] for c in menu["choices"]] == ["en", "es", "fr", "it", "pt"] and menu["value"] == "es"
    # a Kokoro voice speaks with Kokoro only; a piper-based voice speaks English only
    with pytest.raises(InputError, match="kokoro TTS engine, not piper"):
        speak("Hello.", voice="anna", options=SpeakOptions(engine="piper"))


def test_a_piper_based_voice_refuses_other_languages_with_a_hint():
    piper_based = VoiceProfile(None, CONSENT, "2026-12-02", "knn", 10.0, 30.0)
    assert piper_based.languages == ("en",)
    with pytest.raises(InputError, match="--engine kokoro"):
        speak("Hola.", voice=piper_based, options=SpeakOptions(language="es"))
