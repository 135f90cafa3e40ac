"""What a hostile or careless user must not be able to do: run code from a checkpoint file, overwrite an input,
or leave partial files and running ffmpeg processes behind by stopping a job with a signal."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from studio.errors import InputError

REPO = Path(__file__).resolve().parent.parent


class _Payload:
    """Pickles to a call of open(marker, "w"): unpickling it with plain pickle creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def write_malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A file shaped like an official Wav2Lip checkpoint, whose pickle would create ``marker`` when loaded."""
    import torch

    torch.save({"state_dict": {"face_decoder_blocks.0.weight": torch.zeros(1)}, "payload": _Payload(marker)}, path)
    return path


def test_the_payload_is_live_so_the_refusal_tests_can_fail(tmp_path):
    import torch

    marker = tmp_path / "ran"
    path = write_malicious_checkpoint(tmp_path / "evil.pth", marker)
    torch.load(path, weights_only=False)  # what the studio did before: the payload runs
    assert marker.exists()


def test_a_pickle_that_runs_code_is_refused_by_the_library_and_the_api(tmp_path, face_png, speech_wav):
    from studio import checkpoints
    from studio.api import Studio

    marker = tmp_path / "ran"
    evil = write_malicious_checkpoint(tmp_path / "wav2lip.pth", marker)
    with pytest.raises(InputError, match="could run code, so it is refused"):
        checkpoints.load_checkpoint(evil)
    with pytest.raises(InputError, match="refused"):
        Studio(device="cpu").lipsync(face_png, speech_wav, tmp_path / "out.mp4", engine="wav2lip", model=str(evil))
    assert not marker.exists()
    assert not (tmp_path / "out.mp4").exists()


def test_a_pickle_that_runs_code_is_refused_by_the_cli(tmp_path, face_png, speech_wav, capsys):
    from studio.cli import main

    marker = tmp_path / "ran"
    evil = write_malicious_checkpoint(tmp_path / "model.pt", marker)
    rc = main(["lipsync", "--engine", "wav2lip", "--model", str(evil), "--face", str(face_png), "--audio",
               str(speech_wav), "-o", str(tmp_path / "out.mp4")])
    assert rc == 2 and "refused" in capsys.readouterr().err
    rc = main(["train", "--name", "t", "--footage", str(tmp_path), "--init", str(evil)])
    assert rc == 2
    assert not marker.exists()


def test_names_only_mode_accepts_no_path_and_tells_nothing_about_the_filesystem(tmp_path, face_png, speech_wav):
    from studio import checkpoints
    from studio.api import Studio

    marker = tmp_path / "ran"
    evil = write_malicious_checkpoint(tmp_path / "evil.pt", marker)
    studio = Studio(device="cpu", model_paths=False)
    messages = []
    for model in (str(evil), str(tmp_path), str(tmp_path / "missing.pt"), "/etc/passwd"):
        with pytest.raises(InputError) as e:
            studio.lipsync(face_png, speech_wav, tmp_path / "out.mp4", engine="wav2lip", model=model)
        messages.append(str(e.value).replace(model, "MODEL"))
    assert len(set(messages)) == 1, messages  # existing file, folder, missing file: the same answer
    assert "installed models" in messages[0] and str(tmp_path) not in messages[0]
    assert not marker.exists()
    assert checkpoints.resolve("s1", allow_paths=False).name == "s1.pt"  # names still work


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_output_equal_to_an_input_is_refused_before_any_work(tmp_path, face_png, speech_wav, capsys):
    import shutil

    from studio.api import Studio
    from studio.cli import main

    work = tmp_path / "out"
    work.mkdir()
    video = work / "same.mp4"
    from conftest import write_video

    write_video(video, [np.zeros((64, 64, 3), np.uint8)] * 5, 25.0, audio=np.zeros(3200, np.float32))
    shutil.copy(speech_wav, work / "line.wav")
    (work / "link.mp4").symlink_to(video)
    before = _sha(video)
    studio = Studio(device="cpu")
    spellings = [str(video), str(work / "." / "same.mp4"), str(work / ".." / "out" / "same.mp4"), str(work / "link.mp4")]
    for out in spellings:
        with pytest.raises(InputError, match="same file as the input"):
            studio.lipsync(video, speech_wav, out)  # the face video
        with pytest.raises(InputError, match="same file as the input"):
            studio.lipsync(face_png, video, out)  # the audio input (a video's sound track)
        with pytest.raises(InputError, match="same file as the input"):
            studio.say(video, "Hello.", out)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        assert main(["lipsync", "--face", "same.mp4", "--audio", "line.wav", "-o", "./same.mp4"]) == 2
        assert "same file as the input" in capsys.readouterr().err
        assert main(["say", "--face", str(face_png), "--text", "Hi.", "-o", "x.mp4", "--save-audio", "x.mp4"]) == 2
        assert "same file as the input" in capsys.readouterr().err
    finally:
        os.chdir(cwd)
    assert _sha(video) == before
    assert sorted(p.name for p in work.iterdir() if p.name.startswith(".")) == []  # no partial files


def _long_speech(path: Path, seconds: float) -> Path:
    import soundfile as sf

    from conftest import tone

    sf.write(path, tone(seconds, 16000), 16000)
    return path


def _group_is_gone(pgid: int, wait: float = 10.0) -> bool:
    """No process of the job's process group is left (ffmpeg children included)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _wait_for(predicate, timeout: float, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended early (rc {proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_stops_the_cli_like_ctrl_c(tmp_path, face_png, signum, code):
    audio = _long_speech(tmp_path / "long.wav", 40.0)
    out_dir = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "studio", "lipsync", "--engine", "visemes", "--face",
                             str(face_png), "--audio", str(audio), "-o", str(out_dir / "x.mp4")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        _wait_for(lambda: list(out_dir.glob(".x.*.partial.mp4")), 180, proc)  # encoding has started
        time.sleep(0.5)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, err.decode()[-2000:]
    assert "nothing was written" in err.decode()
    # mediapipe's native log lines stay out of the progress bars (they show with -v)
    assert "W0000" not in err.decode() and "XNNPACK" not in err.decode()
    assert list(out_dir.iterdir()) == []  # neither the output nor a partial file
    assert _group_is_gone(proc.pid), "an ffmpeg child is still running"


@pytest.mark.slow
def test_sigterm_stops_the_app_and_its_running_job(tmp_path, face_png):
    import socket

    from gradio_client import Client, handle_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    audio = _long_speech(tmp_path / "long.wav", 60.0)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp), GRADIO_TEMP_DIR=str(tmp / "gradio"))
    proc = subprocess.Popen([sys.executable, "-m", "studio", "app", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        def up():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        _wait_for(up, 120, proc)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.submit(handle_file(str(face_png)), handle_file(str(audio)), "visemes", "", 0, api_name="/lipsync")
        partial = _wait_for(lambda: list(tmp.glob("studio-app-*/sessions/*/.*.partial.mp4")), 180, proc)
        workdir = partial[0].parents[2]
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err.decode()[-2000:]
    assert not workdir.exists()  # the app's folder, partial output included, is gone
    assert _group_is_gone(proc.pid), "an ffmpeg child is still running"
