"""Dubbing: subtitles, timing fit, translation, mix, a short end-to-end dub, resume and edit-one-line reruns."""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, tone, write_video
from studio.dubbing import subtitles as subs_mod
from studio.dubbing.subtitles import SubtitleLine, decode, parse, read_subtitles, validate, write_subtitles
from studio.dubbing.timing import FitOptions, LineFit, fit_line, place, time_stretch
from studio.errors import InputError
from studio.types import PhonemeTiming, Speech

SRT = """1
00:00:00,500 --> 00:00:02,000
ANNA: ¿Qué tal, señor? Café
con leche.

2
00:00:02,500 --> 00:00:04,250
<i>Naïve</i> déjà vu — 20 °C.
"""

VTT = """WEBVTT
Kind: captions

NOTE a comment that is not a cue

intro
00:00.500 --> 00:02.000 align:start
<v Anna>¿Qué tal, señor? Café</v>
con leche.

00:00:02.500 --> 00:00:04.250
Naïve déjà vu — 20 °C.
"""


def _check_lines(lines):
    assert [(s.index, s.start, s.end) for s in lines] == [(1, 0.5, 2.0), (2, 2.5, 4.25)]
    assert lines[0].speaker == "Anna"
    assert lines[0].text == "¿Qué tal, señor? Café\ncon leche."
    assert lines[0].spoken == "¿Qué tal, señor? Café con leche."
    assert lines[1].text == "Naïve déjà vu — 20 °C." and lines[1].speaker is None


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_read_in_every_encoding(tmp_path, encoding, fmt):
    text = SRT if fmt == "srt" else VTT
    if encoding == "cp1252":
        text = text.replace("—", "-")  # the dash is in cp1252 too, but keep the file plain Latin-1-ish
    path = tmp_path / f"clip.{fmt}"
    path.write_bytes(text.encode(encoding))
    result = read_subtitles(path, video_duration=5.0)
    assert result.format == fmt
    lines = list(result.lines)
    if encoding == "cp1252":
        lines[1] = replace(lines[1], text=lines[1].text.replace("-", "—"))
    _check_lines(lines)


def test_decode_names_encodings_and_refuses_binary():
    assert decode("héllo".encode("utf-8"))[1] == "utf-8"
    assert decode("\ufeffhéllo".encode("utf-8"))[1] == "utf-8-sig"
    assert decode("1\nhéllo wörld, ça va très bien".encode("cp1252"))[0] == "1\nhéllo wörld, ça va très bien"
    with pytest.raises(InputError, match="cannot be decoded"):
        decode(bytes(range(256)) * 4, "subs.srt")


def test_subtitles_round_trip_through_srt_and_vtt(tmp_path):
    lines = parse(SRT, "srt")
    for suffix in (".srt", ".vtt"):
        out = write_subtitles(lines, tmp_path / f"out{suffix}")
        back = read_subtitles(out)
        assert back.format == suffix[1:] and back.encoding == "utf-8"
        _check_lines(list(back.lines))
    with pytest.raises(InputError, match=".srt or .vtt"):
        write_subtitles(lines, tmp_path / "out.txt")


def test_subtitle_errors_say_what_to_fix(tmp_path):
    def bad(text, duration=None, suffix=".srt"):
        p = tmp_path / f"bad{suffix}"
        p.write_text(text, encoding="utf-8")
        with pytest.raises(InputError) as e:
            read_subtitles(p, video_duration=duration)
        return str(e.value)

    overlap = "1\n00:00:01,000 --> 00:00:03,000\nOne.\n\n2\n00:00:02,000 --> 00:00:04,000\nTwo.\n"
    assert "line 2" in (m := bad(overlap)) and "before line 1 ends" in m
    empty = "1\n00:00:01,000 --> 00:00:02,000\n<i> </i>\n\n2\n00:00:02,500 --> 00:00:03,000\nfine\n"
    assert "line 1" in (m := bad(empty)) and "no words" in m
    late = "1\n00:00:01,000 --> 00:00:02,000\nOne.\n\n2\n00:00:09,000 --> 00:00:10,000\nTwo.\n"
    assert "starts after the video ends (5.00 s)" in bad(late, 5.0)
    long = "1\n00:00:01,000 --> 00:00:06,000\nOne.\n"
    assert "ends after the video ends" in bad(long, 5.0)
    assert "not a valid WebVTT" in bad("no header\n\n00:01.000 --> 00:02.000\nx\n", suffix=".vtt")
    assert "no subtitle lines" in bad("\n\n")
    (tmp_path / "bin.srt").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError, match="cannot be decoded"):
        read_subtitles(tmp_path / "bin.srt")
    backwards = [SubtitleLine(1, 2.0, 1.0, "x")]
    with pytest.raises(InputError, match="ends before it starts"):
        validate(backwards)


# ---- timing ----------------------------------------------------------------------------------------------------
def _synth(natural: float, calls: list, sr: int = 16000):
    def synth(rate: float) -> Speech:
        calls.append(rate)
        return Speech(tone(natural / rate, sr), sr)

    return synth


def test_fit_line_uses_rate_then_bounded_stretch():
    calls = []
    speech, fit = fit_line(_synth(1.0, calls), slot=2.0)
    assert calls == [1.0] and fit.rate == 1.0 and fit.stretch == 1.0 and abs(speech.duration - 1.0) < 1e-3

    calls = []
    speech, fit = fit_line(_synth(2.4, calls), slot=2.0)  # rate 1.2 is enough
    assert calls == [1.0, pytest.approx(1.2)] and fit.stretch == 1.0 and abs(fit.duration - 2.0) < 1e-3

    calls = []
    speech, fit = fit_line(_synth(4.0, calls), slot=2.0)  # rate 1.3, then stretch 1.25 at most
    assert calls[1] == pytest.approx(1.3) and fit.stretch == pytest.approx(1.25)
    assert fit.duration == pytest.approx(4.0 / 1.3 / 1.25, abs=2e-3) and fit.duration > 2.0


def _spoken(parts, sr: int = 16000) -> Speech:
    """Silence (None, seconds) and sound (True, seconds) pieces; one phoneme per sound piece."""
    audio, phonemes, t = [], [], 0.0
    for sound, secs in parts:
        piece = tone(secs, sr) if sound else np.zeros(int(round(secs * sr)), np.float32)
        if sound:
            phonemes.append(PhonemeTiming("a", t, t + secs))
        audio.append(piece)
        t += len(piece) / sr
    return Speech(np.concatenate(audio).astype(np.float32), sr, tuple(phonemes))


def test_trim_and_pause_shortening_keep_the_sound_and_move_the_timings():
    from studio.audio.trim import shorten_pauses, sound_bounds, trim_silence

    speech = _spoken([(None, 0.3), (True, 0.5), (None, 0.5), (True, 0.4), (None, 0.25)])
    a, b = sound_bounds(speech.audio, speech.sample_rate)
    assert abs(a - 0.3) < 0.015 and abs(b - 1.7) < 0.015
    trimmed = trim_silence(speech)
    assert abs(trimmed.duration - (1.4 + 0.02 + 0.05)) < 0.02  # the sound and the pads
    assert abs(trimmed.phonemes[0].start - 0.02) < 0.015 and abs(trimmed.phonemes[1].end - 1.42) < 0.02
    short = shorten_pauses(trimmed, 0.12)
    assert abs(short.duration - (trimmed.duration - 0.38)) < 0.05  # the 0.5 s pause is about 0.12 s now
    assert 0.06 < short.phonemes[1].start - short.phonemes[0].end < 0.14  # (the tone fades in and out)
    assert abs(np.abs(short.audio).sum() - np.abs(speech.audio).sum()) < 0.01 * np.abs(speech.audio).sum()
    silent = Speech(np.zeros(8000, np.float32), 16000)
    assert sound_bounds(silent.audio, 16000) is None and trim_silence(silent).duration == silent.duration


def test_fit_line_trims_silence_first_and_takes_the_rate_from_the_measured_speech():
    calls = []

    def synth(rate: float) -> Speech:  # 0.15 s of silence, speech that gets only 0.9x as much shorter as asked
        calls.append(rate)
        return _spoken([(None, 0.15), (True, 1.6 / rate ** 0.9), (None, 0.2)])

    speech, fit = fit_line(synth, slot=1.8)  # fits once trimmed: no faster speech
    assert calls == [1.0] and fit.rate == 1.0 and fit.stretch == 1.0 and speech.duration < 1.8
    calls = []
    speech, fit = fit_line(synth, slot=1.4)
    assert len(calls) == 3 and calls[2] > calls[1] > 1.0 and fit.stretch <= 1.02  # the rate corrected once
    assert speech.duration <= 1.4 * 1.02 + 1e-3


def test_time_stretch_keeps_pitch_and_length():
    sr = 16000
    t = np.arange(sr * 2) / sr
    sine = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out, name = time_stretch(Speech(sine, sr), 1.25)
    assert name in ("rubberband", "atempo")
    assert len(out.audio) == int(round(len(sine) / 1.25))
    spectrum = np.abs(np.fft.rfft(out.audio[2000:-2000]))
    peak = np.fft.rfftfreq(len(out.audio) - 4000, 1 / sr)[np.argmax(spectrum)]
    assert abs(peak - 440) < 10


def test_place_borrows_after_then_before_and_reports_overflow():
    slots = [(1, 1.0, 2.0), (2, 3.0, 4.0), (3, 4.2, 5.0)]
    fits = [LineFit(1.5, 1.0, 1.0, 1.5), LineFit(1.0, 1.0, 1.0, 1.0), LineFit(2.0, 1.3, 1.25, 2.0)]
    opts = FitOptions(min_gap=0.1)
    p1, p2, p3 = place(slots, fits, video_duration=5.5, options=opts)
    assert (p1.start, p1.borrowed_after, p1.borrowed_before, p1.overflow) == (1.0, 0.5, 0.0, 0.0) and p1.fits
    assert p2.start == 3.0 and p2.end == 4.0 and p2.fits
    # line 3 (2.0 s in 0.8 s): 0.5 s after the slot (to the video's end), 0.1 s before (gap 0.2 minus 0.1 kept), 0.6 s over
    assert p3.borrowed_after == pytest.approx(0.5) and p3.borrowed_before == pytest.approx(0.1)
    assert p3.overflow == pytest.approx(0.6) and not p3.fits and p3.end == pytest.approx(6.1)
    assert p3.cut_at_end == pytest.approx(0.6)
    # an overflowing line pushes the next one later (never two lines at once)
    q1, q2 = place([(1, 0.0, 1.0), (2, 1.1, 2.0)], [LineFit(1.5, 1, 1, 1.5), LineFit(0.5, 1, 1, 0.5)], 3.0, opts)
    assert q1.overflow == pytest.approx(0.5) and q2.start == pytest.approx(1.6) and q2.delayed == pytest.approx(0.5)
    # slots that touch: the second line keeps its start and, with no gap before it, borrows nothing there
    r1, r2 = place([(1, 0.0, 1.0), (2, 1.0, 2.0)], [LineFit(1.0, 1, 1, 1.0), LineFit(1.2, 1, 1, 1.2)], 2.1, opts)
    assert r2.start == 1.0 and r2.delayed == 0.0 and r2.borrowed_before == 0.0 and r2.borrowed_after == pytest.approx(0.1)
    assert r2.overflow == pytest.approx(0.1)
    # the silence before a line's first sound goes before its slot (never over the line before)
    led = LineFit(0.8, 1, 1, 0.8, lead=0.05)
    s1, s2 = place([(1, 0.0, 1.0), (2, 1.5, 2.5)], [led, led], 3.0, opts)
    assert s1.start == 0.0 and s1.sound_start == pytest.approx(0.05)  # nothing before the video's start
    assert s2.start == pytest.approx(1.45) and s2.sound_start == pytest.approx(1.5) and s2.fits


def test_every_line_gets_its_own_span_of_frames():
    from studio.dubbing.render import plan_spans

    spans = plan_spans([(1.0, 2.0), (2.1, 3.0), (5.0, 6.0)], fps=10, n_frames=80, pad=0.2)
    assert [(s.first, s.stop, s.synced) for s in spans] == [
        (0, 8, False), (8, 20, True), (20, 32, True), (32, 48, False), (48, 62, True), (62, 80, False)]
    assert plan_spans([], 25, 50)[0].synced is False


# ---- mix -------------------------------------------------------------------------------------------------------
def test_mix_ducks_speech_regions_and_hits_the_loudness_target():
    from studio.dubbing.mix import MixOptions, mix

    sr = 16000
    background = 0.1 * np.sin(2 * np.pi * 100 * np.arange(4 * sr) / sr).astype(np.float32)
    speech = np.zeros(4 * sr, np.float32)
    speech[sr:2 * sr] = tone(1.0, sr)
    out, facts = mix(background, speech, [(1.0, 2.0)], sr, MixOptions(loudness=-20.0))
    assert facts["loudness"] == pytest.approx(-20.0, abs=0.5)
    assert np.max(np.abs(out)) <= 10 ** (-1 / 20) + 1e-6
    # outside the region the background is unchanged up to the common gain; inside it is ducked under the speech
    gain = np.std(out[3 * sr:]) / np.std(background[3 * sr:])
    only_bg = out[int(1.02 * sr):int(1.1 * sr)] - speech[int(1.02 * sr):int(1.1 * sr)] * gain
    assert np.std(only_bg) < 0.3 * np.std(background) * gain
    with pytest.raises(InputError, match="background"):
        mix(background, speech, [], sr, MixOptions(background="magic"))


# ---- languages -------------------------------------------------------------------------------------------------
def test_unknown_tts_language_and_translation_pair_are_clear():
    from studio.dubbing.speech import tts_engine_for
    from studio.dubbing.translate import find_translator

    with pytest.raises(InputError, match="German"):
        tts_engine_for("de")
    with pytest.raises(InputError, match=r"cannot translate English \(en\) to Japanese \(ja\)"):
        find_translator("en", "ja")


@pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium is not installed")
def test_apertium_translates_english_to_spanish_line_by_line():
    from studio.dubbing.translate import find_translator

    t = find_translator("en", "es")
    out = t.translate(["Good morning.", "The house is big.", "Thank you very much."], "en", "es")
    assert len(out) == 3
    assert "casa" in out[1].lower() and "gracias" in out[2].lower()


def test_speaker_voices_are_checked_against_the_lines():
    from studio.dubbing.speech import speaker_voices

    lines = parse(SRT, "srt")  # line 1 is Anna's
    assert speaker_voices([("ANNA", "base")], lines)["anna"].kind == "base"
    with pytest.raises(InputError, match="speakers named there: Anna"):
        speaker_voices([("Bob", "base")], lines)
    with pytest.raises(InputError, match="not a saved voice"):
        speaker_voices([("anna", "auto")], lines)
    with pytest.raises(InputError, match="unknown voice 'nobody'"):
        speaker_voices([("anna", "nobody")], lines)


def test_batch_files_in_csv_and_json(tmp_path):
    from studio.dubbing.batch import read_batch

    (tmp_path / "jobs.json").write_text(json.dumps(
        [{"video": "a.mp4", "subs": "a.en.srt", "to": "es"}, {"video": "a.mp4", "subs": "b.srt", "voice": "anna"}]))
    jobs = read_batch(tmp_path / "jobs.json", tmp_path / "out")
    assert [j.name for j in jobs] == ["a", "a-2"] and jobs[0].to == "es" and jobs[1].voice == "anna"
    assert jobs[0].out == str(tmp_path / "out" / "a" / "a.es.mp4") and jobs[0].video == str(tmp_path / "a.mp4")
    (tmp_path / "bad.csv").write_text("film,text\nx.mp4,x.srt\n")
    with pytest.raises(InputError, match="at least the column video"):
        read_batch(tmp_path / "bad.csv", tmp_path / "out")
    (tmp_path / "gap.csv").write_text("video,subs\n,x.srt\n")
    with pytest.raises(InputError, match="row 1 needs a video"):
        read_batch(tmp_path / "gap.csv", tmp_path / "out")


# ---- end to end ------------------------------------------------------------------------------------------------
LINES = [(0.2, 1.2, "Hello there."), (2.6, 3.8, "It is good to see you again.")]


def _srt(lines) -> str:
    return "\n".join(f"{k}\n{subs_mod.stamp(a)} --> {subs_mod.stamp(b)}\n{t}\n" for k, (a, b, t) in enumerate(lines, 1))


class _Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut):
    import cv2

    folder = tmp_path_factory.mktemp("dub")
    face = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    write_video(folder / "clip.mp4", [face] * 100, 25.0, audio=tone(4.0, 16000, freq=150.0), sr=16000)
    (folder / "clip.srt").write_text(_srt(LINES), encoding="utf-8")
    return folder


def _counting(monkeypatch):
    import studio.dubbing.speech as dub_speech

    texts = []
    real = dub_speech.synthesize_line

    def counted(text, **kw):
        texts.append(text)
        return real(text, **kw)

    monkeypatch.setattr(dub_speech, "synthesize_line", counted)
    return texts


def _options(**kw):
    from studio.dubbing.job import DubOptions
    from studio.types import LipSyncOptions

    return DubOptions(lipsync=LipSyncOptions(engine="visemes"), audio_mark=False, **kw)


@pytest.fixture(scope="module")
def dubbed(clip):
    """An interrupted first run (stopped after the first piece of the picture), then the run that finishes it."""
    from studio.dubbing.job import run_dub

    out = clip / "clip.dub.mp4"
    seen = []

    def stop_after_first_piece(stage, done, total):
        seen.append(stage)
        if stage == "dub: picture" and done == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        run_dub(clip / "clip.mp4", clip / "clip.srt", out, _options(), progress=stop_after_first_piece)
    interrupted = {"out_exists": out.exists(), "spans": sorted(p.name for p in (clip / "clip.dub.dubjob" / "spans").glob("*.mp4"))}
    mp = pytest.MonkeyPatch()
    try:
        texts = _counting(mp)
        result = run_dub(clip / "clip.mp4", clip / "clip.srt", out, _options())
    finally:
        mp.undo()
    return {"interrupted": interrupted, "result": result, "texts": texts, "out": out}


def test_interrupted_job_leaves_no_output_and_resume_redoes_nothing_done(dubbed):
    assert dubbed["interrupted"]["out_exists"] is False
    assert len(dubbed["interrupted"]["spans"]) == 1
    result = dubbed["result"]
    assert dubbed["texts"] == []  # both lines were synthesized before the interruption
    assert result.work["synthesized"] == 0 and result.work["mixed"] is False
    spans = json.loads(result.report_path.read_text())["spans"]
    assert [s["lip_synced"] for s in spans] == [True, False, True]
    assert result.work["spans_rendered"] == len(spans) - 1


def test_dub_end_to_end_outputs(dubbed, clip):
    from studio.audio.io import load_audio
    from studio.video.io import probe, read_frames

    result = dubbed["result"]
    info = probe(result.path)
    assert info.has_audio and info.frames == 100 and info.duration == pytest.approx(4.0, abs=0.05)
    report = json.loads(result.report_path.read_text())
    assert report["fit"]["lines"] == 2 and report["voice"]["kind"] == "base" and report["language"] == "en"
    for line, (a, b, _) in zip(report["lines"], LINES):
        assert line["slot_start"] == a and line["slot"] == pytest.approx(b - a)
        assert {"produced", "rate", "stretch", "borrowed_before", "borrowed_after", "overflow"} <= set(line)
    spans = report["spans"]
    assert all(s["frames_with_face"] > 0 for s in spans if s["lip_synced"])
    assert all("score" in s["sync"] for s in spans if s["lip_synced"])  # each stretch's sync score
    # the new subtitles carry the real timings of the speech
    srt_lines = read_subtitles(result.srt_path).lines
    # (the first sound: the line's audio starts its lead earlier)
    assert [s.start for s in srt_lines] == pytest.approx([x["start"] + x["lead"] for x in report["lines"]], abs=0.002)
    assert all(0.0 <= x["lead"] < 0.05 for x in report["lines"])  # the engine's leading silence was trimmed
    assert read_subtitles(result.vtt_path).lines == srt_lines
    # frames without new speech are the original's (re-encoded); frames with it were changed at the mouth
    src, dub = probe(clip / "clip.mp4"), probe(result.path)
    a = np.stack(list(read_frames(src))).astype(np.float32)
    b = np.stack(list(read_frames(dub))).astype(np.float32)
    keep = slice(int(spans[1]["start"] * 25), int(spans[1]["end"] * 25))
    assert np.abs(a[keep] - b[keep]).mean() < 1.5
    assert np.abs(a[:30] - b[:30]).max() > 40
    # speech where the lines are, loudness near the target
    audio, sr = load_audio(result.path, 16000)
    import pyloudnorm

    assert pyloudnorm.Meter(sr).integrated_loudness(audio.astype(np.float64)) == pytest.approx(-16.0, abs=1.5)
    # sealed like every output: C2PA manifest and signed record, with the voice's consent
    from studio.trust.verify import verify

    check = verify(result.path)
    assert check.manifest and check.signature_valid and check.content_matches and check.kind == "dub"
    assert "base voice" in check.consents["voice"]


def test_rerun_of_a_finished_job_does_no_work(dubbed, clip):
    from studio.dubbing.job import run_dub

    before = dubbed["out"].stat().st_mtime_ns
    result = run_dub(clip / "clip.mp4", clip / "clip.srt", dubbed["out"], _options())
    assert result.work == {**result.work, "translated": 0, "synthesized": 0, "spans_rendered": 0, "mixed": False,
                           "assembled": False}
    assert dubbed["out"].stat().st_mtime_ns == before


def test_studio_dub_api_reuses_the_job(dubbed, clip):
    from studio import Studio
    from studio.types import LipSyncOptions

    result = Studio(device="cpu").dub(clip / "clip.mp4", subs=clip / "clip.srt", out=dubbed["out"],
                                      lipsync=LipSyncOptions(engine="visemes"), audio_mark=False)
    assert result.path == dubbed["out"] and result.work["synthesized"] == 0 and result.work["spans_rendered"] == 0
    with pytest.raises(TypeError, match="unknown option"):
        Studio().dub(clip / "clip.mp4", subs=clip / "clip.srt", out=dubbed["out"], colour="red")


def test_editing_one_line_resynthesizes_only_that_line(dubbed, clip, tmp_path, monkeypatch):
    from studio.dubbing.job import run_dub

    shutil.copy(clip / "clip.mp4", tmp_path / "clip.mp4")
    shutil.copytree(clip / "clip.dub.dubjob", tmp_path / "job")
    edited = [LINES[0], (LINES[1][0], LINES[1][1], "See you again tomorrow.")]
    (tmp_path / "clip.srt").write_text(_srt(edited), encoding="utf-8")
    texts = _counting(monkeypatch)
    result = run_dub(tmp_path / "clip.mp4", tmp_path / "clip.srt", tmp_path / "out.mp4",
                     _options(job_dir=str(tmp_path / "job")))
    assert set(texts) == {"See you again tomorrow."}  # one line (one or two calls: the rate step may re-speak it)
    assert result.work["synthesized"] == 1 and result.work["spans_rendered"] == 1
    assert result.lines[1]["dubbed_text"] == "See you again tomorrow."


def test_dub_refuses_bad_inputs_before_work(clip, tmp_path):
    from studio.dubbing.job import run_dub

    with pytest.raises(InputError, match="same file as the input"):
        run_dub(clip / "clip.mp4", clip / "clip.srt", clip / "clip.mp4", _options())
    with pytest.raises(InputError, match="needs their consent"):
        run_dub(clip / "clip.mp4", clip / "clip.srt", tmp_path / "o.mp4", _options(voice="auto"))
    with pytest.raises(InputError, match="German"):
        run_dub(clip / "clip.mp4", clip / "clip.srt", tmp_path / "o.mp4", _options(target_language="de"))
    (tmp_path / "late.srt").write_text(_srt([(5.0, 6.0, "Too late.")]), encoding="utf-8")
    with pytest.raises(InputError, match="after the video ends"):
        run_dub(clip / "clip.mp4", tmp_path / "late.srt", tmp_path / "o.mp4", _options())
    assert not (tmp_path / "o.mp4").exists()


def test_video_without_sound_is_dubbed_over_silence(tmp_path, astronaut):
    from studio.dubbing.job import run_dub
    from studio.video.io import probe

    video = write_video(tmp_path / "mute.mp4", [astronaut[::4, ::4].copy()] * 50, 25.0)
    (tmp_path / "mute.srt").write_text(_srt([(0.3, 1.5, "Hello.")]), encoding="utf-8")
    result = run_dub(video, tmp_path / "mute.srt", tmp_path / "mute.dub.mp4", replace(_options(), lip_sync=False))
    assert probe(result.path).has_audio and json.loads(result.report_path.read_text())["mix"]["background"] == "none"
    with pytest.raises(InputError, match="no sound track to clone"):
        run_dub(video, tmp_path / "mute.srt", tmp_path / "x.mp4", _options(voice="auto", consent="Anna agreed today."))


def test_words_are_grouped_into_lines_at_pauses_and_sentence_ends():
    from studio.dubbing.transcribe import group_words

    words = [(0.0, 0.3, " Hello"), (0.35, 0.8, " there."), (0.9, 1.3, " It"), (1.35, 1.6, " is"), (2.5, 2.9, " late")]
    lines = group_words(words)
    assert [(s.start, s.end, s.text) for s in lines] == [(0.0, 1.6, "Hello there. It is"), (2.5, 2.9, "late")]
    long = [(k * 0.5, k * 0.5 + 0.4, f" w{k}.") for k in range(6)]  # sentence ends close lines of 1.2 s or more
    assert [s.text for s in group_words(long)] == ["w0. w1. w2.", "w3. w4. w5."]


def test_line_times_snap_to_the_sound():
    from studio.dubbing.transcribe import snap_to_speech

    sr = 16000
    audio = np.zeros(3 * sr, np.float32)
    audio[int(0.55 * sr):int(1.9 * sr)] = tone(1.35, sr) + 0.05
    (line,) = snap_to_speech([SubtitleLine(1, 0.14, 1.7, "x")], audio, sr)
    assert line.start == pytest.approx(0.55, abs=0.011) and line.end == pytest.approx(1.9, abs=0.011)


def test_dub_without_subtitles_transcribes_the_speech_once(tmp_path, astronaut, monkeypatch):
    import studio.dubbing.transcribe as tr
    from studio.dubbing.job import run_dub
    from studio.voice.tts import synthesize

    speech = synthesize("It is good to see you again.")
    audio = np.concatenate([np.zeros(int(0.5 * speech.sample_rate), np.float32), speech.audio,
                            np.zeros(int(0.5 * speech.sample_rate), np.float32)])
    n = int(len(audio) / speech.sample_rate * 25)
    video = write_video(tmp_path / "talk.mp4", [astronaut[::4, ::4].copy()] * n, 25.0, audio=audio,
                        sr=speech.sample_rate)
    calls = []
    real = tr._words
    monkeypatch.setattr(tr, "_words", lambda *a: calls.append(1) or real(*a))
    options = replace(_options(), lip_sync=False)
    result = run_dub(video, None, tmp_path / "talk.dub.mp4", options)
    report = json.loads(result.report_path.read_text())
    assert report["transcribed"] and "good to see you" in " ".join(x["text"].lower() for x in report["lines"])
    assert 0.45 <= report["lines"][0]["slot_start"] <= 0.75  # the speech starts at 0.5 s (plus Piper's lead-in)
    assert report["lines"][-1]["slot_end"] <= 0.5 + speech.duration + 0.1
    again = run_dub(video, None, tmp_path / "talk.dub.mp4", options)
    assert calls == [1] and again.work["synthesized"] == 0


def test_batch_runs_jobs_apart_and_skips_finished_ones(clip, tmp_path):
    from studio.dubbing.batch import run_batch

    shutil.copy(clip / "clip.mp4", tmp_path / "a.mp4")
    (tmp_path / "a.srt").write_text(_srt(LINES[:1]), encoding="utf-8")
    (tmp_path / "jobs.csv").write_text("video,subs,name\na.mp4,a.srt,good\nmissing.mp4,a.srt,bad\n", encoding="utf-8")
    options = replace(_options(), lip_sync=False)
    result = run_batch(tmp_path / "jobs.csv", tmp_path / "jobs", options, workers=1)
    status = {o.name: o for o in result.outcomes}
    assert status["good"].status == "done" and Path(status["good"].out).is_file()
    assert status["bad"].status == "failed" and "does not exist" in status["bad"].error
    again = run_batch(tmp_path / "jobs.csv", tmp_path / "jobs", options, workers=1)
    assert {o.name: o.status for o in again.outcomes} == {"good": "skipped", "bad": "failed"}


def test_cli_dub_needs_video_and_subs(capsys):
    from studio.cli import main

    assert main(["dub", "--subs", "x.srt"]) == 2
    assert "needs --video" in capsys.readouterr().err


@pytest.mark.skipif(not (DATA / "grid-s1" / "clips").is_dir(), reason="../shared/data/grid-s1 is not present")
def test_real_clip_dub_fits_its_line(tmp_path):
    from studio.dubbing.job import run_dub
    from studio.video.io import probe

    clip = sorted((DATA / "grid-s1" / "clips").glob("*.mp*"))[0]
    duration = probe(clip).duration
    (tmp_path / "c.srt").write_text(_srt([(0.3, duration - 0.3, "Place blue at the end now.")]), encoding="utf-8")
    result = run_dub(clip, tmp_path / "c.srt", tmp_path / "c.dub.mp4", replace(_options(), lip_sync=False))
    assert result.fit["fit"] == 1 and probe(result.path).has_audio


def test_spanish_speech_is_detected_transcribed_and_dubbed_into_english(tmp_path, astronaut):
    from studio.dubbing.job import run_dub
    from studio.voice.tts import synthesize

    speech = synthesize("Me alegra verte otra vez.", language="es")
    sr = speech.sample_rate
    audio = np.concatenate([np.zeros(int(0.4 * sr), np.float32), speech.audio, np.zeros(int(0.4 * sr), np.float32)])
    video = write_video(tmp_path / "es_clip.mp4", [astronaut[::4, ::4].copy()] * int(len(audio) / sr * 25), 25.0,
                        audio=audio, sr=sr)
    result = run_dub(video, None, tmp_path / "en.mp4", replace(_options(target_language="en"), lip_sync=False))
    report = json.loads(result.report_path.read_text())
    assert report["transcribed"] and report["source_language"] == "es" and report["language"] == "en"
    heard = " ".join(x["text"].lower() for x in report["lines"])
    assert "alegra" in heard and "verte" in heard
    assert "glad" in " ".join(x["dubbed_text"].lower() for x in report["lines"])  # apertium: "Me alegra" -> glad
    assert 0.3 <= report["lines"][0]["slot_start"] <= 0.7


FACES_DEV = DATA / "faces-dev" / "videos"
needs_scene = pytest.mark.skipif(not (FACES_DEV.is_dir() and (DATA / "grid-s1" / "clips").is_dir()),
                                 reason="../shared/data/grid-s1 and faces-dev are not present")


def _frames(path, seconds, fps=25.0, size=192):
    """``seconds`` (start, end) of a video as square frames at ``fps`` (centre crop) and its sound at 16 kHz."""
    import cv2

    from studio.audio.io import load_audio
    from studio.video.io import probe, read_frames

    info = probe(path)
    frames = list(read_frames(info, max_frames=int(seconds[1] * info.fps) + 2))
    h, w = frames[0].shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    pick = [frames[min(len(frames) - 1, int(round(t / fps * info.fps)))]
            for t in range(int(seconds[0] * fps), int(seconds[1] * fps))]
    out = [cv2.resize(f[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA) for f in pick]
    audio = load_audio(path, 16000)[0][int(seconds[0] * 16000):int(seconds[1] * 16000)]
    return out, audio


@pytest.fixture(scope="module")
def two_speakers(tmp_path_factory):
    """Two faces side by side: a GRID man on the left, a faces-dev woman on the right; each of the 4 lines (3 s)
    is one of them speaking with their own sound while the other's mouth moves silently (other footage)."""
    folder = tmp_path_factory.mktemp("two")
    grid = sorted((DATA / "grid-s1" / "clips").glob("*.mp4"))
    woman = FACES_DEV / "styletalk_KristiNoem.mp4"
    frames, audio, lines = [], [], []
    for i in range(4):
        left, left_audio = _frames(grid[i], (0.0, 3.0))
        right, right_audio = _frames(woman, (3.0 * i, 3.0 * i + 3.0))
        frames += [np.concatenate([a, b], axis=1) for a, b in zip(left, right)]
        audio.append(left_audio if i % 2 == 0 else right_audio)
        lines.append((3.0 * i + 0.2, 3.0 * i + 2.8, ["Bin blue at F two now.", "We talked about it."][i % 2]))
    video = write_video(folder / "two.mp4", frames, 25.0, audio=np.concatenate(audio), sr=16000)
    return video, lines


@needs_scene
def test_diarization_and_the_speaking_face_follow_who_talks(two_speakers, tmp_path, monkeypatch):
    from studio.audio.io import load_audio
    from studio.dubbing.speakers import diarize_lines, speaking_faces
    from studio.face import active_speaker
    from studio.progress import Progress
    from studio.video.io import probe

    made = []  # every face-mesh tracker made: one per line, not one per frame (each holds ~25 MB until closed)
    original_init = active_speaker.FaceTracks.__init__

    def counting_init(self, *args, **kwargs):
        made.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(active_speaker.FaceTracks, "__init__", counting_init)

    video, timed = two_speakers
    lines = [SubtitleLine(k, a, b, t) for k, (a, b, t) in enumerate(timed, 1)]
    audio = load_audio(video, 16000)[0]
    named = diarize_lines(lines, audio, 16000, "v", tmp_path, threshold=0.3)
    assert [s.speaker for s in named] == ["Speaker 1", "Speaker 2", "Speaker 1", "Speaker 2"]
    points = speaking_faces(probe(video), named, audio, 16000, "v", tmp_path, "mediapipe", Progress.of(None))
    assert all(p is not None for p in points)
    assert [p[0] < 192 for p in points] == [True, False, True, False]  # left face, right face, ...
    scores = json.loads((tmp_path / "faces.json").read_text())["scores"]
    assert all(len(s) == 2 for s in scores)
    assert len(made) == len(lines)


def test_clustering_finds_the_number_of_speakers():
    from studio.audio.diarize import cluster

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 256))
    rows = np.concatenate([c + 0.25 * rng.normal(size=(4, 256)) for c in centres])
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    order = rng.permutation(len(rows))
    labels = cluster(rows[order], threshold=0.5)
    truth = (order // 4)
    assert len(set(labels)) == 3 and all(len({l for l, t in zip(labels, truth) if t == k}) == 1 for k in range(3))
    assert cluster(rows[:4], threshold=0.5) == [0, 0, 0, 0] and cluster(rows[:1]) == [0]


def test_line_edits_and_the_saved_request_round_trip():
    from studio.dubbing.job import DubOptions, apply_line_edits, options_from_dict, options_to_dict
    from studio.dubbing.speakers import speaker_reference
    from studio.types import LipSyncOptions

    lines = parse(SRT, "srt")
    assert apply_line_edits(["a", "b"], lines, [(2, "  Hola   amigo ")]) == ["a", "Hola amigo"]
    with pytest.raises(InputError, match="line 3 does not exist"):
        apply_line_edits(["a", "b"], lines, [(3, "x")])
    with pytest.raises(InputError, match="empty"):
        apply_line_edits(["a", "b"], lines, [(1, " ")])
    options = DubOptions(voice="auto", speaker_voices=(("Anna", "base"),), line_edits=((2, "Hola."),),
                         lipsync=LipSyncOptions(engine="visemes", face_point=(10.0, 20.0)))
    assert options_from_dict(json.loads(json.dumps(options_to_dict(options)))) == options
    # a speaker's reference: their lines' sound, minus what another speaker's line overlaps
    audio = np.arange(16000 * 5, dtype=np.float32)
    named = [SubtitleLine(1, 0.5, 2.0, "a", "A"), SubtitleLine(2, 1.5, 3.0, "b", "B"), SubtitleLine(3, 4.0, 4.5, "c", "A")]
    ref = speaker_reference(named, "A", audio, 16000)
    assert len(ref) == 16000 * 1.5 and ref[0] == 8000 and ref[-1] == 16000 * 4.5 - 1


def test_untimed_script_is_aligned_to_recognised_words(tmp_path):
    from studio.dubbing.script import align, read_script

    path = tmp_path / "scene.txt"
    path.write_bytes("ANNA: Good morning, everyone.\n\nBob: Café first, then the meeting.\nSee you at noon!\n"
                     .encode("cp1252"))
    cues = read_script(path)
    assert cues == [("Anna", "Good morning, everyone."), ("Bob", "Café first, then the meeting."),
                    (None, "See you at noon!")]
    heard = [(0.5, 0.8, " good"), (0.8, 1.2, " morning"), (1.3, 1.9, " everyone."),  # then a misheard word
             (2.5, 2.9, " cafe"), (3.0, 3.3, " fürst,"), (3.4, 3.6, " then"), (3.6, 3.7, " the"), (3.7, 4.2, " meeting")]
    lines = align(cues, heard, duration=6.0)
    assert [(s.start, s.end, s.speaker) for s in lines[:2]] == [(0.5, 1.9, "Anna"), (2.5, 4.2, "Bob")]
    assert lines[2].start == 4.2 and lines[2].end == 6.0  # nothing heard: the gap after the last timed line
    with pytest.raises(InputError, match="none of the script's words"):
        align(cues, [(0.0, 1.0, "xyz")], duration=6.0)
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(InputError, match="has no lines"):
        read_script(tmp_path / "empty.txt")


@pytest.mark.slow
def test_batch_on_a_local_ray_cluster(clip, tmp_path, monkeypatch):
    """A Ray head started here (2 CPUs, no dashboard), the batch connected to it by address, then stopped."""
    import os
    import socket
    import subprocess
    import sys

    pytest.importorskip("ray")
    from studio.dubbing.batch import run_batch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_bin = Path(sys.executable).parent / "ray"
    repo = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": repo, "RAY_USAGE_STATS_ENABLED": "0"}
    monkeypatch.setenv("PYTHONPATH", repo)  # the tasks import this checkout's studio
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # a short path: Ray's sockets live under it
    # --block: the command stays in the foreground and ends the processes it started when it is terminated, so
    # the test stops this head only (never `ray stop`, which ends every Ray process on the machine)
    head = subprocess.Popen([str(ray_bin), "start", "--head", "--block", "--num-cpus=2", "--num-gpus=0",
                             f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}",
                             "--disable-usage-stats"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time

        deadline = time.monotonic() + 90
        while True:  # the head's control service listens on the port once it is up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < deadline, "the Ray head did not start"
                time.sleep(0.5)
        shutil.copy(clip / "clip.mp4", tmp_path / "a.mp4")
        (tmp_path / "a.srt").write_text(_srt(LINES[:1]), encoding="utf-8")
        (tmp_path / "jobs.csv").write_text("video,subs,name\na.mp4,a.srt,good\nmissing.mp4,a.srt,bad\n",
                                           encoding="utf-8")
        result = run_batch(tmp_path / "jobs.csv", tmp_path / "jobs", replace(_options(), lip_sync=False),
                           ray=f"127.0.0.1:{port}")
        status = {o.name: o for o in result.outcomes}
        assert status["good"].status == "done" and Path(status["good"].out).is_file()
        assert (tmp_path / "jobs" / "good" / "report.json").is_file()  # the same job folders as local workers
        assert status["bad"].status == "failed" and "does not exist" in status["bad"].error
    finally:
        import ray

        ray.shutdown()
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        shutil.rmtree(temp, ignore_errors=True)


def test_auto_voice_engine_follows_the_dub_language():
    from studio.dubbing.speech import auto_engine

    assert auto_engine("en") == "knn" and auto_engine("es") == "kokoro" and auto_engine("es", "hybrid") == "hybrid"
    with pytest.raises(InputError, match="speaks English only"):
        auto_engine("es", "knn")
