"""The differentiable PyTorch Kokoro (weights de-quantised from the int8 ONNX) and the gradient style fit.

The model must speak as the ONNX model does (same frames per token within a frame, same voice by both speaker
encoders), be different from it when given another voice, and give gradients that move a style toward a target.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.voice import kokoro_torch
from studio.voice.kokoro import _session, _styles, _tokenizer, phonemize
from studio.voice.similarity import encoder

TEXT = "Hello there."


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return kokoro_torch.kokoro_model()


def _ids(text: str):
    tok = _tokenizer()
    tokens = tok.tokenize(tok.known(phonemize(text, "en")), limit=None)
    return tokens, np.array([[0, *tokens, 0]], np.int64)


def test_module_paths_of_the_exported_graph():
    assert kokoro_torch.module_path("/encoder/F0.1/conv1/Conv_quant") == "predictor.F0.1.conv1"
    assert kokoro_torch.module_path("/encoder/text_encoder/cnn.2/cnn.2.0/Conv_quant") == "text_encoder.cnn.2.0"
    assert kokoro_torch.module_path("/decoder/decoder/generator/resblocks.4/adain2.2/fc/Gemm_MatMul_quant") \
        == "decoder.generator.resblocks.4.adain2.2.fc"
    assert kokoro_torch.module_path(
        "/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0/ffn_output_9/MatMul_quant") \
        == "bert.encoder.albert_layer_groups.0.albert_layers.0.ffn_output"
    assert kokoro_torch.module_path("/encoder/shared/LSTM_quant") == "predictor.shared"


def test_torch_kokoro_speaks_as_the_onnx_model(model):
    tokens, ids = _ids(TEXT)
    styles = _styles()
    style = styles["jm_kumo"][len(tokens) - 1].reshape(1, 256)
    audio, frames = _session().run(None, {"tokens": ids, "style": style, "speed": np.array([1.0], np.float32)})
    audio, frames = np.asarray(audio, np.float32).ravel(), np.asarray(frames).ravel()
    with torch.no_grad():
        ids_t, style_t = torch.from_numpy(ids), torch.from_numpy(style)
        d_en, _ = model.text_features(ids_t)
        our_frames = model.durations(model.predictor.text_encoder(d_en, style_t[:, 128:]))
        same_frames, _ = model(ids_t, style_t, frames=torch.from_numpy(frames))
    # the activations are float here (8-bit in ONNX): a rounding may move a token by one frame, not more
    assert len(our_frames) == len(frames) and np.abs(our_frames.numpy() - frames).max() <= 1
    assert len(same_frames) == len(audio)
    for name in ("resemblyzer", "voicefilter"):
        enc = encoder(name)
        same = float(enc.embed(audio, 24000) @ enc.embed(same_frames.numpy(), 24000))
        assert same > 0.95, (name, same)  # two different shipped voices score 0.6-0.85


def test_gradient_fit_moves_the_style_toward_the_speaker(model, monkeypatch):
    from studio.voice import kokoro_fit
    from studio.voice.kokoro_gradfit import fit_style_gradient, torch_resemblyzer
    from studio.voice.tts import synthesize

    # a speaker Kokoro does not ship: the piper voice
    speaker = synthesize("Could you send me the report before noon, please?", engine="piper")
    # the torch embedding is resemblyzer's own, within its VAD trimming
    ours = torch_resemblyzer()(torch.from_numpy(speaker.audio), speaker.sample_rate).detach().numpy()
    assert float(ours @ encoder("resemblyzer").embed(speaker.audio, speaker.sample_rate)) > 0.95
    # the fit says, and is scored on, one short line
    monkeypatch.setattr(kokoro_fit, "FIT_SENTENCE", TEXT)
    fit = fit_style_gradient(speaker.audio, speaker.sample_rate, budget_s=1e9, max_steps=3, sentences=(TEXT,),
                             learning_rate=0.15, start="jf_alpha")
    start = _styles()[fit.base_voice]
    assert fit.evaluations == 3 and fit.style.shape == start.shape and np.isfinite(fit.style).all()
    assert np.abs(fit.style - start).max() > 1e-3
    assert fit.score > fit.base_score + 0.04, (fit.base_score, fit.score)
