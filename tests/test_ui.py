"""The browser app: served on loopback, driven through gradio_client and through a real Chromium."""
from __future__ import annotations

import re
import shutil
import tempfile
import socket
from pathlib import Path

import pytest

from studio.video.io import probe

CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from studio.ui.app import launch

    workdir = tmp_path_factory.mktemp("app")
    port = _free_port()
    demo = launch(host="127.0.0.1", port=port, device="cpu", prevent_thread_lock=True, workdir=workdir)
    yield f"http://127.0.0.1:{port}/", workdir
    demo.close()


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served[0], verbose=False)


def _launch_chromium(playwright):
    """Debian's Chromium, headless, with nothing reaching out to the network."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"])


def _video_path(value) -> str:
    return value["video"] if isinstance(value, dict) else value


def test_lipsync_endpoint_returns_a_video(client, served):
    from gradio_client import handle_file

    from studio.paths import REPO_ROOT

    samples = REPO_ROOT / "samples"
    video, download, summary = client.predict(handle_file(str(samples / "face.png")),
                                              handle_file(str(samples / "line.wav")), "visemes", "", 0,
                                              api_name="/lipsync")
    info = probe(_video_path(video))
    assert info.has_audio and info.frames > 50
    assert "visemes" in summary


def test_speak_and_detect_endpoints(client):
    from gradio_client import handle_file

    from studio.paths import REPO_ROOT

    wav = client.predict("Testing the app.", "base", 1.0, api_name="/speak")
    assert probe(wav).has_audio
    gallery, note = client.predict(handle_file(str(REPO_ROOT / "samples" / "face.png")), api_name="/detect_faces")
    assert len(gallery) == 1 and "1 face" in note


def test_errors_reach_the_client_with_the_api_message(client, tmp_path):
    from gradio_client import handle_file

    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    from studio.paths import REPO_ROOT

    with pytest.raises(Exception, match="cannot be read") as e:
        client.predict(handle_file(str(bad)), handle_file(str(REPO_ROOT / "samples" / "line.wav")), "visemes", "", 0,
                       api_name="/lipsync")
    # the user's file name, never the server's upload path
    assert "notes.png" in str(e.value) and "/gradio" not in str(e.value) and "/tmp" not in str(e.value)
    with pytest.raises(Exception, match="text is empty"):
        client.predict("   ", "base", 1.0, api_name="/speak")


def test_user_errors_log_one_line_not_a_traceback(client, tmp_path, capfd):
    from gradio_client import handle_file

    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    capfd.readouterr()
    with pytest.raises(Exception, match="cannot be read"):
        client.predict(handle_file(str(bad)), handle_file(str(bad)), "visemes", "", 0, api_name="/lipsync")
    assert "Traceback" not in "".join(capfd.readouterr())


def test_an_uploaded_pickle_cannot_be_used_as_a_model(client, served, tmp_path):
    import httpx
    from gradio_client import handle_file

    from studio.paths import REPO_ROOT
    from test_hardening import write_malicious_checkpoint

    marker = tmp_path / "ran"
    evil = write_malicious_checkpoint(tmp_path / "wav2lip.pth", marker)
    with open(evil, "rb") as f:  # the upload endpoint answers with the file's server path
        server_path = httpx.post(served[0] + "gradio_api/upload", files={"files": f}).json()[0]
    samples = REPO_ROOT / "samples"
    for model in (server_path, str(evil)):
        with pytest.raises(Exception) as e:
            client.predict(handle_file(str(samples / "face.png")), handle_file(str(samples / "line.wav")), "wav2lip",
                           model, 0, api_name="/lipsync")
        assert server_path not in str(e.value) and str(tmp_path) not in str(e.value)
    assert not marker.exists()


def test_app_takes_models_by_name_from_an_installed_list(served):
    from studio.ui.app import StudioApp

    app = StudioApp(workdir=served[1] / "names")
    assert ("s1", "s1") in app.model_choices() and app.model_choices()[0][1] == ""
    assert app.studio.model_paths is False


def test_redact_paths_keeps_file_names_only():
    from studio.ui.app import redact_paths

    text = "face file /tmp/gradio/3f2a/holiday clip.png cannot be read; see /home/u/.cache/x.log (or ./rel/a.png)"
    out = redact_paths(text, uploads=["/tmp/gradio/3f2a/holiday clip.png"])
    assert out == "face file holiday clip.png cannot be read; see x.log (or ./rel/a.png)"


def test_detected_faces_are_shown_whole(astronaut):
    from studio.face import detect_faces
    from studio.ui.app import face_thumbnail

    face = detect_faces(astronaut)[0]
    thumb = face_thumbnail(astronaut, face, 0)
    assert thumb.shape == (160, 160, 3)
    again = detect_faces(thumb)  # an eye band alone would not be found as a face
    assert len(again) == 1
    lm = again[0].landmarks
    assert lm[:, 1].min() > 0.05 * 160 and lm[:, 1].max() < 0.97 * 160  # forehead to chin inside the crop


def test_failed_jobs_mark_only_their_status_line(served):
    """Progress and error badges go on a status line, not on the result panels or the voice menus."""
    import httpx

    config = httpx.get(served[0] + "config").json()
    by_id = {c["id"]: c for c in config["components"]}
    deps = {d.get("api_name"): d for d in config["dependencies"] if d.get("api_name")}
    for api in ("lipsync", "say", "create_voice", "delete_voice"):
        targets = deps[api]["show_progress_on"]
        assert targets and all(by_id[t]["type"] == "markdown" for t in targets), (api, targets)
    delete_menu = next(c for c in config["components"] if c["props"].get("label") == "Voice to delete")
    assert delete_menu["props"].get("value") in (None, "", []) and "base" not in str(delete_menu["props"]["choices"])


def test_session_outputs_stay_in_the_app_folder(served):
    workdir = served[1]
    outputs = list((workdir / "sessions").rglob("*.mp4"))
    assert outputs and all(workdir in p.parents for p in outputs)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (scripts/setup.sh --browser)")
def test_browser_runs_the_example_by_clicking(served, tmp_path):
    from playwright.sync_api import sync_playwright

    url = served[0]
    with sync_playwright() as p:
        browser = _launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url, wait_until="load")
            page.get_by_text("Examples: click one").wait_for(timeout=30_000)
            page.locator("tr.tr-body").first.click()  # the first example: the sample photo + line
            page.locator("table.file-preview").first.wait_for(timeout=30_000)  # the example's files are loaded
            page.wait_for_timeout(1000)
            page.get_by_role("button", name="Lip-sync", exact=True).click()
            page.locator("video").first.wait_for(timeout=120_000)
            page.wait_for_function("document.querySelector('video') && document.querySelector('video').src")
            shot = tmp_path / "app.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            keep = Path(tempfile.gettempdir()) / "studio-ui-screenshot.png"
            shutil.copy(shot, keep)  # for a person to look at after the run
            page.get_by_role("tab", name="Actor models").click()
            page.get_by_text("s1: ").wait_for(timeout=30_000)  # the list is there without clicking "List models"
        finally:
            browser.close()


def test_train_and_models_endpoints(client, tmp_path, astronaut):
    import cv2
    import numpy as np
    from gradio_client import handle_file

    from conftest import tone, write_video

    clips = []
    for k in range(2):
        frames = [cv2.resize(astronaut, (192, 192))] * 25
        audio = tone(1.0, freq=170 + 40 * k)  # different content: identical clips count once
        clips.append(handle_file(str(write_video(tmp_path / f"c{k}.mp4", frames, fps=25, audio=audio))))
    with pytest.raises(Exception, match="consent statement is required"):
        client.predict(clips, "ui-actor", 1, "debug", False, "", False, api_name="/train")
    consent = "Anna Novak agreed on 2026-11-20"
    summary = client.predict(clips, "ui-actor", 1, "debug", False, consent, False, api_name="/train")
    assert "model ui-actor" in summary and "generator step 4" in summary
    assert "ui-actor" in client.predict(api_name="/models")
    with pytest.raises(Exception, match="already exists"):
        client.predict(clips, "ui-actor", 1, "debug", False, consent, False, api_name="/train")
    del np


def test_voices_tab_endpoints_create_list_speak_delete(client, tmp_path):
    import librosa
    import soundfile as sf
    from gradio_client import handle_file

    from studio.voice.tts import synthesize

    s = synthesize("The old lighthouse keeper climbed the stairs every evening. He lit the lamp and watched the "
                   "ships pass the rocks. In winter the wind was cold, but he never missed a night.")
    ref = tmp_path / "ref.wav"
    sf.write(str(ref), librosa.effects.pitch_shift(s.audio, sr=s.sample_rate, n_steps=4.0), s.sample_rate)
    with pytest.raises(Exception, match="consent"):
        client.predict(handle_file(str(ref)), "keeper", "", "knn", False, api_name="/create_voice")
    from studio.trust.audio_mark import embed

    marked = tmp_path / "marked.wav"  # synthesized (watermarked) speech: refused unless the consent covers it
    sf.write(str(marked), embed(s.audio, s.sample_rate), s.sample_rate)
    with pytest.raises(Exception, match="carries a watermark"):
        client.predict(handle_file(str(marked)), "keeper", "The test suite made this voice", "knn", False,
                       api_name="/create_voice")
    status, listing, *_ = client.predict(handle_file(str(ref)), "keeper", "The test suite made this voice",
                                         "knn", False, api_name="/create_voice")
    assert "keeper" in status and "keeper" in listing
    assert "keeper" in client.predict(api_name="/list_voices")
    wav = client.predict("Welcome back.", "keeper", 1.0, api_name="/speak")
    assert Path(wav).stat().st_size > 10_000
    status, listing, *_ = client.predict("keeper", api_name="/delete_voice")
    assert "Deleted" in status and "keeper" not in listing
    with pytest.raises(Exception, match="unknown voice"):
        client.predict("Welcome back.", "keeper", 1.0, api_name="/speak")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (scripts/setup.sh --browser)")
def test_browser_creates_a_voice_in_the_voices_tab(served, tmp_path):
    import librosa
    import soundfile as sf
    from playwright.sync_api import sync_playwright

    from studio.voice.tts import synthesize

    s = synthesize("The old lighthouse keeper climbed the stairs every evening. He lit the lamp and watched the "
                   "ships pass the rocks. In winter the wind was cold, but he never missed a night.")
    ref = tmp_path / "reference.wav"
    sf.write(str(ref), librosa.effects.pitch_shift(s.audio, sr=s.sample_rate, n_steps=4.0), s.sample_rate)
    with sync_playwright() as p:
        browser = _launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(served[0], wait_until="load")
            page.get_by_role("tab", name="Voices").click()
            page.get_by_text("Clone a voice from a recording").wait_for(timeout=30_000)
            page.locator("#voice-reference input[type=file]").set_input_files(str(ref))
            page.get_by_label("Voice name").fill("keeper")
            page.get_by_label("Consent statement (required)").fill("The test suite made this voice from Piper")
            page.wait_for_timeout(1500)  # the upload finishes
            page.get_by_role("button", name="Create voice").click()
            page.get_by_text("Created voice keeper").wait_for(timeout=120_000)
            shot = tmp_path / "voices.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            shutil.copy(shot, Path(tempfile.gettempdir()) / "studio-ui-voices.png")  # for a person to look at
        finally:
            browser.close()


def test_dub_endpoint_reports_lines_and_rerenders_one_edited_line(client, tmp_path, astronaut):
    import cv2
    from gradio_client import handle_file

    from conftest import tone, write_video

    face = cv2.resize(astronaut, (192, 192), interpolation=cv2.INTER_AREA)
    video = write_video(tmp_path / "clip.mp4", [face] * 75, 25.0, audio=tone(3.0, 16000, freq=150.0), sr=16000)
    srt = tmp_path / "clip.srt"
    srt.write_text("1\n00:00:00,200 --> 00:00:01,300\nHello there.\n\n2\n00:00:01,700 --> 00:00:02,900\n"
                   "Good to see you.\n", encoding="utf-8")
    result, files, table, summary = client.predict(handle_file(str(video)), handle_file(str(srt)), "", "base", "",
                                                   "visemes", api_name="/dub")
    assert probe(_video_path(result)).frames == 75
    assert sorted(Path(f).suffix for f in files) == [".mp4", ".srt", ".vtt"]
    rows = table["data"]
    assert [r[0] for r in rows] == [1, 2] and rows[1][-1] == "Good to see you." and rows[0][3] == pytest.approx(1.1)
    assert "synthesized 2 line(s)" in summary
    result, files, table, summary = client.predict(2, "See you soon.", api_name="/dub_line")
    assert [r[-1] for r in table["data"]] == ["Hello there.", "See you soon."]
    # only the edited line is spoken again; the picture is redone around it only (its span and the silent one
    # after it, whose start moves with the new line's end), never the first line's span
    assert "synthesized 1 line(s)" in summary and re.search(r"re-rendered [12] span", summary)
    srt_out = next(f for f in files if f.endswith(".srt"))
    assert "See you soon." in Path(srt_out).read_text(encoding="utf-8")
