"""Text to speech with the bundled Piper voice and the speaking controls."""
from __future__ import annotations

import numpy as np
import pytest

from studio.errors import InputError
from studio.voice.service import SpeakOptions, speak
from studio.voice.tts import split_sentences, synthesize


def test_phoneme_timings_cover_the_audio():
    s = synthesize("Hello there, how are you?")
    assert s.sample_rate == 22050 and s.duration > 0.8
    starts = [p.start for p in s.phonemes]
    assert starts == sorted(starts)
    assert all(p.end >= p.start for p in s.phonemes)
    assert abs(s.phonemes[-1].end - s.duration) < 0.15  # the end marker carries a short tail


def test_long_text_is_split_into_sentences():
    assert split_sentences("One. Two! Three?") == ["One.", "Two!", "Three?"]
    one, two = synthesize("I like tea."), synthesize("I like tea. You like coffee.")
    assert two.duration > one.duration + 0.5
    assert any(p.phoneme == " " and p.end - p.start >= 0.2 for p in two.phonemes)  # the pause between


@pytest.mark.parametrize("text", ["", "   ", "?!..."])
def test_empty_text_is_rejected(text):
    with pytest.raises(InputError):
        synthesize(text)


def test_duration_fitting_within_two_percent_and_timings_scaled():
    s = speak("This line must last exactly three seconds.", options=SpeakOptions(duration=3.0))
    assert abs(s.duration - 3.0) / 3.0 < 0.02
    assert abs(s.phonemes[-1].end - 3.0) < 0.15


def test_rate_pitch_and_sample_rate():
    normal = speak("Speaking quickly now.")
    fast = speak("Speaking quickly now.", options=SpeakOptions(rate=1.5))
    assert fast.duration < normal.duration * 0.8
    out = speak("Hi there.", options=SpeakOptions(sample_rate=48000, pitch_semitones=2))
    assert out.sample_rate == 48000 and np.abs(out.audio).max() > 0.05
    with pytest.raises(InputError):
        speak("Hi.", options=SpeakOptions(sample_rate=12345))
    with pytest.raises(InputError, match="unknown voice"):
        speak("Hi.", voice="anna")
