"""Trust by default (issue 17): audio mark, signed provenance + C2PA, verify, consent for actor models, no laundering.

CPU only, no ../shared/data needed. The Perth model loads once for the whole file (a few seconds).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from studio.errors import InputError, MissingDependencyError

from conftest import tone, write_video

TEXT = "Hello, I never said this, but now I do."


@pytest.fixture(scope="module")
def studio():
    from studio import Studio

    return Studio(device="cpu")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, face_png, studio):
    """One `say` render (visemes engine) with its saved audio, made in its own studio home."""
    home = tmp_path_factory.mktemp("trust-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("STUDIO_HOME", str(home))
    mp.setenv("STUDIO_CACHE", str(home / "cache"))
    try:
        folder = tmp_path_factory.mktemp("trust-out")
        out = folder / "said.mp4"
        result = studio.say(face_png, TEXT, out, engine="visemes", save_audio=folder / "said.wav")
        yield result, home
    finally:
        mp.undo()


@pytest.fixture
def in_render_home(rendered, monkeypatch):
    """Verify with the keys of the installation that made the render."""
    monkeypatch.setenv("STUDIO_HOME", str(rendered[1]))


def test_speech_carries_the_audio_mark_and_detection_finds_it(studio):
    from studio.audio.io import resample
    from studio.trust.audio_mark import detect
    from studio.voice.service import SpeakOptions

    marked, sr = studio.speak(TEXT)
    plain, sr2 = studio.speak(TEXT, options=SpeakOptions(audio_mark=False))
    assert sr == sr2 and len(marked) == len(plain)
    assert detect(marked, sr) > 0.9
    assert detect(plain, sr) < 0.1
    assert detect(resample(marked, sr, 16000), 16000) > 0.9  # survives resampling
    # the mark is inaudible-ish but real: the audio changed, and not by much
    snr = 10 * np.log10(np.sum(plain ** 2) / np.sum((marked - plain) ** 2))
    assert 10 < snr < 40


def test_a_silently_missing_perth_watermarker_is_reported(monkeypatch):
    import perth

    from studio.trust import audio_mark

    monkeypatch.setattr(audio_mark, "_model", None)
    monkeypatch.setattr(perth, "PerthImplicitWatermarker", None)
    with pytest.raises(MissingDependencyError, match="PerthImplicitWatermarker.*scripts/setup.sh"):
        audio_mark.check_available()


def test_verify_a_rendered_output_marked_signed_and_valid(rendered, in_render_home, studio):
    from studio.trust.keys import keys_dir
    from studio.trust.verify import MADE

    result, home = rendered
    v = studio.verify(result.path)
    assert v.verdict == MADE and not v.tampered, v.summary()
    assert v.audio_marked and v.audio_mark > 0.9
    assert v.manifest and v.manifest_state in ("Valid", "Trusted")
    assert v.sidecar and v.signature_valid and v.signer_is_local and v.content_matches
    assert v.mismatches == () and v.kind == "say" and len(v.job_id) == 12
    assert v.job_id == result.job_id and result.frames_marked == result.frames_with_face > 0
    assert v.video_marked and v.video_mark.job == result.job_id[:6]  # the video mark carries the job id
    record = json.loads(result.path.with_name(result.path.name + ".provenance.json").read_text())
    claim = record["claim"]
    assert claim["inputs"]["face"]["name"] == "face.png" and len(claim["inputs"]["face"]["sha256"]) == 64
    assert "/" not in json.dumps(claim["inputs"])  # file names only, never folders
    assert claim["consents"]["voice"].startswith("the bundled base voice")
    assert claim["models"][0]["engine"] == "visemes" and claim["marks"]["audio"] is True
    assert claim["marks"]["video"] is True and claim["marks"]["video_mark"]["job"] == result.job_id[:6]
    assert claim["settings"]["lipsync"]["engine"] == "visemes" and claim["text"]["characters"] == len(TEXT)
    assert {"video", "audio"} <= set(claim["output"]["streams"])
    key = keys_dir() / "provenance-ed25519.pem"
    assert str(keys_dir()).startswith(str(home)) and (os.stat(key).st_mode & 0o777) == 0o600
    assert (os.stat(keys_dir() / "c2pa" / "signer.pem").st_mode & 0o777) == 0o600
    # the saved audio of `say` has its own record and mark
    audio = studio.verify(result.audio_path)
    assert audio.verdict == MADE and audio.audio_marked and audio.signature_valid and audio.content_matches
    assert audio.manifest_state in ("Valid", "Trusted")


def test_a_tampered_copy_is_reported_naming_what_changed(rendered, in_render_home, studio, tmp_path):
    from studio.trust.verify import TAMPERED

    src = rendered[0].path
    sidecar = src.with_name(src.name + ".provenance.json")

    flipped = tmp_path / "flipped.mp4"
    data = bytearray(src.read_bytes())
    start = data.find(b"mdat") + 4000
    data[start:start + 16] = bytes(b ^ 0xFF for b in data[start:start + 16])
    flipped.write_bytes(bytes(data))
    shutil.copy(sidecar, tmp_path / "flipped.mp4.provenance.json")
    v = studio.verify(flipped)
    assert v.verdict == TAMPERED and v.tampered and v.content_matches is False
    assert v.manifest_state == "Invalid"
    assert any("video stream" in m for m in v.mismatches) and any("C2PA" in m for m in v.mismatches)
    assert not any("audio stream" in m for m in v.mismatches)

    reencoded = tmp_path / "reencoded.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(src), "-c:v", "libx264", "-crf", "28",
                    "-c:a", "aac", str(reencoded)], check=True)
    shutil.copy(sidecar, tmp_path / "reencoded.mp4.provenance.json")
    v = studio.verify(reencoded)
    assert v.verdict == TAMPERED and not v.manifest  # the re-encode dropped the manifest
    assert any("video stream" in m for m in v.mismatches) and any("audio stream" in m for m in v.mismatches)
    assert v.audio_marked  # the audio mark survives the re-encode (AAC)

    # an edited record: its signature no longer matches
    edited = tmp_path / "edited.mp4"
    shutil.copy(src, edited)
    record = json.loads(sidecar.read_text())
    record["claim"]["consents"]["voice"] = "someone else agreed"
    (tmp_path / "edited.mp4.provenance.json").write_text(json.dumps(record))
    v = studio.verify(edited)
    assert v.verdict == TAMPERED and v.signature_valid is False and v.content_matches is True
    assert any("signature" in m for m in v.mismatches)


def test_a_plain_file_has_no_studio_marks(tmp_path, astronaut, capsys):
    from studio.cli import main
    from studio.trust.verify import NOTHING

    frames = [astronaut[::2, ::2].copy() for _ in range(20)]
    plain = write_video(tmp_path / "plain.mp4", frames, fps=25, audio=tone(1.0))
    assert main(["verify", str(plain)]) == 0
    out = capsys.readouterr().out
    assert "plain.mp4: no studio marks found" in out and "C2PA manifest: none" in out
    from studio import Studio

    v = Studio(device="cpu").verify(plain)
    assert v.verdict == NOTHING and not v.audio_marked and v.audio_mark < 0.5 and not v.manifest and not v.sidecar
    assert v.video_mark is not None and not v.video_marked and "video mark: " in out


def test_cli_verify_exits_1_on_a_tampered_file(rendered, in_render_home, tmp_path, capsys):
    from studio.cli import main

    src = rendered[0].path
    copy = tmp_path / "copy.mp4"
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    shutil.copy(src.with_name(src.name + ".provenance.json"), tmp_path / "copy.mp4.provenance.json")
    assert main(["verify", str(copy)]) == 1
    assert "copy.mp4: tampered" in capsys.readouterr().out


@pytest.fixture(scope="module")
def footage(tmp_path_factory, astronaut):
    import cv2

    folder = tmp_path_factory.mktemp("trust-footage")
    for k in range(3):
        frames = [cv2.warpAffine(cv2.resize(astronaut, (256, 256)), np.float32([[1, 0, 2 * np.sin(i / 4 + k)],
                                                                                [0, 1, 0]]), (256, 256),
                                 borderMode=cv2.BORDER_REPLICATE) for i in range(25)]
        write_video(folder / f"clip{k}.mp4", frames, fps=25, audio=tone(1.0, freq=180 + 20 * k))
    return folder


def test_training_needs_consent_and_the_checkpoint_keeps_it(footage):
    from studio.checkpoints import load_checkpoint
    from studio.lipsync.training.service import TrainOptions, train
    from studio.paths import models_dir

    base = dict(name="consented", footage=(str(footage),), device="cpu", preset="debug")
    with pytest.raises(InputError, match="consent statement is required.*trained on their face"):
        train(TrainOptions(**base))
    with pytest.raises(InputError, match="too short"):
        train(TrainOptions(**base, consent="yes"))
    assert not (models_dir() / "consented").exists()  # refused before any work
    consent = "Anna Novak agreed on 2026-11-20 to a model of her face"
    train(TrainOptions(**base, consent=consent))
    folder = models_dir() / "consented"
    assert load_checkpoint(folder / "model.pt").meta["consent"] == consent
    assert json.loads((folder / "run.json").read_text())["consent"] == consent
    # resuming reuses the stored consent (none given now)
    train(TrainOptions(name="consented", resume=True, device="cpu", steps=5))
    assert load_checkpoint(folder / "model.pt").meta["consent"] == consent


def test_cli_train_has_a_consent_option():
    from studio.cli import build_parser
    from studio.lipsync.training.service import options_from_cli

    args = build_parser().parse_args(["train", "--name", "x", "--footage", "f", "--consent", "Anna agreed today"])
    assert options_from_cli(args).consent == "Anna agreed today"


def test_a_voice_is_not_made_from_marked_speech(studio, tmp_path):
    import soundfile as sf

    from studio.voice.profiles import _check_not_marked

    audio, sr = studio.speak("This is a line of synthesized speech that someone might try to clone as a voice. "
                             "It goes on for a while so that it would be long enough for a reference recording.")
    ref = tmp_path / "marked.wav"
    sf.write(ref, audio, sr)
    with pytest.raises(InputError, match="carries a watermark.*--consent-covers-marked"):
        studio.create_voice(ref, name="laundered", consent="Anna Novak agreed on 2026-11-20")
    assert "laundered" not in studio.voices()
    # the explicit statement that the consent covers it lets it through this check; unmarked audio passes anyway
    assert _check_not_marked(audio, sr, "marked.wav", covered=True) > 0.9
    assert _check_not_marked(tone(3.0, sr), sr, "tone.wav", covered=False) < 0.5
