"""The Wav2Lip networks, mel features, checkpoint formats and the neural engine."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from studio import checkpoints
from studio.audio import mel as melmod
from studio.errors import InputError, MissingCheckpointError
from studio.lipsync.wav2lip.models import SyncNetColor, Wav2Lip, Wav2LipDiscQual


def _trainable(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("cls, params, tensors", [
    (Wav2Lip, 36_298_035, 352), (SyncNetColor, 16_435_072, 217), (Wav2LipDiscQual, 14_113_793, 28)])
def test_published_architectures(cls, params, tensors):
    m = cls()
    assert _trainable(m) == params
    assert len(m.state_dict()) == tensors


def test_published_key_names_and_shapes():
    sd = Wav2Lip().state_dict()
    assert sd["face_encoder_blocks.0.0.conv_block.0.weight"].shape == (16, 6, 7, 7)
    assert sd["audio_encoder.12.conv_block.0.weight"].shape == (512, 512, 1, 1)
    assert sd["face_decoder_blocks.1.0.conv_block.0.weight"].shape == (1024, 512, 3, 3)
    assert sd["output_block.1.weight"].shape == (3, 32, 1, 1)


@pytest.mark.parametrize("size", [96, 192])
def test_forward_shapes(size):
    g = Wav2Lip(size, width=0.25).eval()
    with torch.no_grad():
        assert g(torch.randn(2, 1, 80, 16), torch.randn(2, 6, size, size)).shape == (2, 3, size, size)
        out = g(torch.randn(1, 5, 1, 80, 16), torch.randn(1, 6, 5, size, size))
        assert out.shape == (1, 3, 5, size, size) and 0 <= out.min() and out.max() <= 1
        a, f = SyncNetColor(size, 0.25).eval()(torch.randn(2, 1, 80, 16), torch.randn(2, 15, size // 2, size))
        assert a.shape == f.shape and torch.allclose(a.norm(dim=1), torch.ones(2))
        assert Wav2LipDiscQual(size, 0.25).eval()(torch.randn(2, 3, size, size)).shape == (2, 1)


def test_mel_matches_the_closed_form():
    import librosa

    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16000) * 0.1).astype(np.float32)
    ours = melmod.wav2lip_mel(audio)
    # closed form with librosa's own STFT (centred, reflect padding as librosa 0.7 did)
    from scipy.signal import lfilter

    emph = lfilter([1, -0.97], [1], audio)
    spec = np.abs(librosa.stft(emph, n_fft=800, hop_length=200, win_length=800, center=True, pad_mode="reflect"))
    fb = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    expected = np.clip(1.6 * np.log10(np.maximum(1e-5, fb @ spec)) + 2.4, -4, 4)
    assert ours.shape == (80, 81) == expected.shape
    np.testing.assert_allclose(ours, expected, atol=2e-3)


def test_mel_of_a_sine_peaks_in_its_band():
    t = np.arange(16000) / 16000
    m = melmod.wav2lip_mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    band = int(np.argmax(m[:, 40]))
    centres = np.linspace(0, 1, 82)  # check the band's centre frequency is near 1 kHz via the filter bank
    fb = melmod.mel_basis()
    freqs = np.linspace(0, 8000, fb.shape[1])
    assert abs(freqs[np.argmax(fb[band])] - 1000) < 80, centres[0]
    assert m.min() >= -4 and m.max() <= 4


def test_mel_windows_follow_the_frame_rate():
    mel = np.arange(80 * 100, dtype=np.float32).reshape(80, 100) % 100
    w = melmod.mel_windows(mel, fps=25, n_frames=40)
    assert w.shape == (40, 80, 16)
    assert w[1, 0, 0] == 3 and w[10, 0, 0] == 32  # int(i * 80 / 25)
    assert w[-1, 0, -1] == 99  # past the end: the last window
    assert melmod.mel_windows(mel, fps=30, n_frames=3)[2, 0, 0] == 5  # int(2 * 80 / 30)


def _official(tmp_path, model, name):
    path = tmp_path / name
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "optimizer": {},
                "global_step": 7, "global_epoch": 1}, path)
    return path


def test_official_format_loads_unchanged(tmp_path):
    torch.manual_seed(0)
    for cls, kind in ((Wav2Lip, "wav2lip"), (SyncNetColor, "syncnet"), (Wav2LipDiscQual, "disc")):
        src = cls()
        loaded = checkpoints.load_checkpoint(_official(tmp_path, src, f"{kind}.pth"))
        assert loaded.kind == kind and loaded.source_format == "wav2lip-official"
        model = checkpoints.build_model(loaded)
        for k, v in src.state_dict().items():
            assert torch.equal(model.state_dict()[k], v)


def test_torchscript_release_loads_from_the_models_folder_only(tmp_path):
    from studio.paths import models_dir

    src = Wav2Lip(width=0.25).eval()
    scripted = torch.jit.trace(src, (torch.randn(1, 1, 80, 16), torch.randn(1, 6, 96, 96)))
    outside = tmp_path / "Wav2Lip-SD-GAN.pt"
    scripted.save(str(outside))
    # TorchScript is a program: from an arbitrary path it is refused, with where to put it instead
    with pytest.raises(InputError, match="TorchScript.*copy it into"):
        checkpoints.load_checkpoint(outside)
    models_dir().mkdir(parents=True)
    path = models_dir() / "Wav2Lip-SD-GAN.pt"
    scripted.save(str(path))
    loaded = checkpoints.load_checkpoint("wav2lip_sd_gan")
    assert loaded.source_format == "torchscript" and loaded.kind == "wav2lip"
    model = checkpoints.build_model(loaded)
    x, m = torch.rand(2, 6, 96, 96), torch.randn(2, 1, 80, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(m, x), src(m, x))


@pytest.mark.parametrize("half", [False, True])
def test_studio_format_round_trip(tmp_path, half):
    src = Wav2Lip(192, width=0.25)
    path = checkpoints.save_checkpoint(tmp_path / "actor.pt", kind="wav2lip", arch=src.config,
                                       state_dict=src.state_dict(), meta={"step": 12, "licence": "CC BY 4.0"},
                                       half=half)
    loaded = checkpoints.load_checkpoint(path)
    assert loaded.arch == {"img_size": 192, "width": 0.25} and loaded.meta["step"] == 12
    model = checkpoints.build_model(loaded)
    for k, v in src.state_dict().items():
        got = model.state_dict()[k]
        assert torch.allclose(got.float(), v.float(), atol=1e-3 if half else 0)
    assert [p.name for p in tmp_path.iterdir()] == ["actor.pt"]  # no temp file left


def test_names_resolve_and_missing_files_say_where_to_put_them(tmp_path, monkeypatch):
    with pytest.raises(MissingCheckpointError, match=r"put it at .*wav2lip_gan\.pth"):
        checkpoints.resolve("wav2lip_gan")
    with pytest.raises(InputError, match="unknown model 'no_such_model'; installed models: "):
        checkpoints.resolve("no_such_model")
    with pytest.raises(MissingCheckpointError, match="does not exist"):
        checkpoints.resolve(tmp_path / "x.pt")
    from studio.paths import models_dir

    models_dir().mkdir(parents=True)
    _official(models_dir(), Wav2Lip(width=0.25), "wav2lip_gan.pth")
    assert checkpoints.resolve("wav2lip_gan") == models_dir() / "wav2lip_gan.pth"
    assert checkpoints.is_available("wav2lip_gan")


def test_checksum_mismatch_is_reported(tmp_path, monkeypatch):
    path = _official(tmp_path, Wav2Lip(width=0.25), "wav2lip.pth")
    info = checkpoints.REGISTRY["wav2lip"]
    monkeypatch.setitem(checkpoints.REGISTRY, "wav2lip",
                        checkpoints.CheckpointInfo(**{**info.__dict__, "sha256": "0" * 64}))
    with pytest.raises(InputError, match="does not match"):
        checkpoints.load_checkpoint(path)
    assert checkpoints.sha256_of(path) == checkpoints.sha256_of(path)  # cached and stable


def test_garbage_file_is_rejected(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError):
        checkpoints.load_checkpoint(tmp_path / "bad.pt")


def test_wrong_kind_for_the_engine(tmp_path):
    from studio.lipsync.neural import Wav2LipEngine

    path = _official(tmp_path, SyncNetColor(), "lipsync_expert.pth")
    with pytest.raises(InputError, match="not a Wav2Lip generator"):
        Wav2LipEngine(str(path))
