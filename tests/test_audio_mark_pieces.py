"""The audio mark runs Perth on pieces of long audio (its memory no longer grows with the length): the pieces
cover every sample once, and marking in pieces gives the whole-signal result."""
from __future__ import annotations

import numpy as np
import pytest

from studio.trust import audio_mark


@pytest.mark.parametrize("sr", [16000, 22050, 24000, 44100])
def test_pieces_cover_each_sample_once_on_the_hop_grid(sr):
    n = int(37.3 * sr)
    pieces = list(audio_mark._pieces(n, sr))
    assert len(pieces) == 4
    kept = np.zeros(n, int)
    for start, stop, a, b in pieces:
        kept[start:stop] += 1
        assert a <= start < stop <= b and (start - a) * 100 % sr == 0  # context a whole number of Perth hops
        assert start == 0 or start - a >= audio_mark.MARGIN_SECONDS * sr  # context both sides, inside the audio
        assert stop == n or b - stop >= audio_mark.MARGIN_SECONDS * sr
    assert (kept == 1).all()
    assert list(audio_mark._pieces(int(10 * sr), sr)) == [(0, int(10 * sr), 0, int(10 * sr))]  # short: one piece


def test_marking_in_pieces_is_marking_the_whole(monkeypatch):
    try:
        audio_mark.check_available()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"audio watermark unavailable: {e}")
    rng = np.random.default_rng(0)
    sr = 16000
    t = np.arange(6 * sr) / sr
    # noise in syllable-rate bursts (a steady tone is ambiguous to Perth's detector: 0.46 unmarked)
    audio = (0.1 * rng.standard_normal(len(t)) * (0.55 + 0.45 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    whole = audio_mark.embed(audio, sr)
    monkeypatch.setattr(audio_mark, "PIECE_SECONDS", 1.5)
    monkeypatch.setattr(audio_mark, "MARGIN_SECONDS", 0.5)
    assert len(list(audio_mark._pieces(len(audio), sr))) == 4
    pieces = audio_mark.embed(audio, sr)
    assert np.abs(whole - audio).max() > 1e-3  # the mark changes the audio...
    assert np.abs(pieces - whole).max() < 1e-4  # ...and the pieces change it the same way
    # detection in pieces (each long enough for the detector's own decision: a few seconds)
    monkeypatch.setattr(audio_mark, "PIECE_SECONDS", 3.0)
    assert len(list(audio_mark._pieces(len(audio), sr))) == 2
    assert audio_mark.detect(pieces, sr) > 0.9 and audio_mark.detect(audio, sr) < 0.1
