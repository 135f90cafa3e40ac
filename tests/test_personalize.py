"""Personalisation from the face video's own footage: trains and caches a model, renders with it, reuses the cache,
falls back (saying why) on too little footage, refuses without consent. Tiny debug models and budgets."""
from __future__ import annotations

import json
import numpy as np
import pytest

from conftest import tone, write_video
from studio.errors import InputError

CONSENT = "Test Person agreed on 2026-12-02 to a model of their face"


def _talking(path, astronaut, seconds: float, fps: int = 25):
    """The photo's face moving a little, with a voice-like tone (speech on the track)."""
    import cv2

    face = cv2.resize(astronaut, (160, 160))
    frames = []
    for i in range(int(seconds * fps)):
        m = np.float32([[1, 0, 2 * np.sin(i / 4)], [0, 1, np.cos(i / 5)]])
        frames.append(cv2.warpAffine(face, m, (160, 160), borderMode=cv2.BORDER_REPLICATE))
    return write_video(path, frames, fps=fps, audio=tone(seconds))


@pytest.fixture(scope="module")
def clips(tmp_path_factory, astronaut):
    folder = tmp_path_factory.mktemp("personal")
    return dict(long=_talking(folder / "long.mp4", astronaut, 4.0), short=_talking(folder / "short.mp4", astronaut, 1.6))


@pytest.fixture
def debug_base(tmp_path, monkeypatch):
    """A tiny random generator + expert as the base, the debug training preset, small thresholds."""
    import torch

    from studio.checkpoints import save_checkpoint
    from studio.lipsync import personalize
    from studio.lipsync.wav2lip.models import SyncNetColor, Wav2Lip

    torch.manual_seed(0)
    g, e = Wav2Lip(96, width=0.125), SyncNetColor(96, width=0.125)
    base = save_checkpoint(tmp_path / "gen.pt", kind="wav2lip", arch=g.config, state_dict=g.state_dict(),
                           meta={"attribution": "random test model"}, half=True)
    expert = save_checkpoint(tmp_path / "exp.pt", kind="syncnet", arch=e.config, state_dict=e.state_dict(), half=True)
    monkeypatch.setattr(personalize, "DEFAULT_SETTINGS", personalize.PersonalizeSettings(
        preset="debug", base_expert=str(expert), min_seconds=2.0, min_train_minutes=0.01, compare_base=False,
        piece_seconds=1.5, max_steps=3))
    return str(base)


def test_personalize_trains_caches_and_renders(clips, debug_base, tmp_path, monkeypatch):
    from studio import Studio
    from studio.lipsync.training.train import Trainer

    audio = clips["short"]
    s = Studio(device="cpu")
    kw = dict(personalize=True, budget_minutes=1, consent=CONSENT, personalize_from=debug_base, batch_size=8)
    first = s.lipsync(clips["long"], audio, tmp_path / "a.mp4", **kw)
    report = first.personalization
    assert report.model is not None and report.model.exists() and not report.cached and report.steps > 0
    assert first.engine == "wav2lip" and first.model == str(report.model)
    assert report.usable_seconds >= 2.0 and report.heldout_seconds == pytest.approx(1.2, abs=0.1)
    assert "mouth_psnr" in report.heldout and report.heldout["frames"] >= 25
    assert report.heldout["references"] == "training part"  # never the scored frame itself
    record = json.loads((tmp_path / "a.mp4.provenance.json").read_text())
    assert CONSENT in json.dumps(record)  # the consent stored with the model reaches the render's provenance

    def no_training(*a, **k):
        raise AssertionError("the cached model should have been used")

    monkeypatch.setattr(Trainer, "run", no_training)
    second = s.lipsync(clips["long"], audio, tmp_path / "b.mp4", **kw)
    assert second.personalization.cached and second.personalization.model == report.model
    assert second.personalization.heldout == report.heldout and (tmp_path / "b.mp4").exists()


def test_too_little_footage_falls_back_with_a_reason(clips, debug_base, tmp_path):
    from studio import Studio

    result = Studio(device="cpu").lipsync(clips["short"], clips["short"], tmp_path / "o.mp4", personalize=True,
                                          budget_minutes=1, consent=CONSENT, personalize_from=debug_base)
    assert result.engine == "visemes" and result.personalization.model is None
    assert "too little usable footage" in result.personalization.fallback_reason
    record = json.loads((tmp_path / "o.mp4.provenance.json").read_text())
    assert "fell back" in json.dumps(record)


def test_personalize_needs_consent(clips, debug_base, tmp_path):
    from studio import Studio

    with pytest.raises(InputError, match="consent"):
        Studio(device="cpu").lipsync(clips["long"], clips["short"], tmp_path / "o.mp4", personalize=True,
                                     personalize_from=debug_base)
    assert not (tmp_path / "o.mp4").exists()


def test_voiced_frames_follow_the_speech():
    from studio.lipsync.personalize import voiced

    sr = 16000
    audio = np.concatenate([np.zeros(sr), tone(1.0, sr), np.zeros(sr)]).astype(np.float32)
    v = voiced(audio + np.random.default_rng(0).normal(0, 1e-4, len(audio)).astype(np.float32), sr)
    assert v[:50].mean() < 0.05 and v[50:100].mean() > 0.5 and v[100:].mean() < 0.05


def test_augmentation_keeps_masks_binary_and_moves_frames(tmp_path):
    import torch

    from studio.lipsync.training.sampler import WindowSampler

    s = WindowSampler.__new__(WindowSampler)
    s.torch, s.device, s.augment, s.rng = torch, torch.device("cpu"), True, np.random.default_rng(0)
    video = torch.rand(4, 3, 5, 32, 32)
    mask = torch.zeros(4, 1, 5, 32, 32)
    mask[..., 20:26, 10:22] = 1
    out, out_mask = s._augmented(video, mask)
    assert out.shape == video.shape and not torch.allclose(out, video)
    assert set(out_mask.unique().tolist()) <= {0.0, 1.0} and out_mask.sum() > 0
    s.augment = False
    assert s._augmented(video)[0] is video
