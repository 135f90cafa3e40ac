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
        other_style = styles["jf_nezumi"][len(tokens) - 1].reshape(1, 256)
        other, _ = model(torch.from_numpy(ids), torch.from_numpy(other_style), frames=torch.from_numpy(frames))
    # the activations are float here (8-bit in ONNX): a rounding may move a token by one frame, not more
    assert len(our_frames) == len(frames) and np.abs(our_frames.numpy() - frames).max() <= 1
    assert len(same_frames) == len(audio)
    for name in ("resemblyzer", "voicefilter"):
        enc = encoder(name)
        e_onnx = enc.embed(audio, 24000)
        same = float(e_onnx @ enc.embed(same_frames.numpy(), 24000))
        different = float(e_onnx @ enc.embed(other.numpy(), 24000))
        assert same > 0.95 and same > different + 0.1, (name, same, different)


def test_gradient_moves_the_style_toward_a_target(model):
    from studio.voice.kokoro_gradfit import torch_resemblyzer

    tokens, ids = _ids(TEXT)
    styles = _styles()
    embed = torch_resemblyzer()
    ids_t = torch.from_numpy(ids)
    with torch.no_grad():
        text = model.text_features(ids_t)
        target_audio, _ = model(ids_t, torch.from_numpy(styles["jm_kumo"][len(tokens) - 1][None]), text=text)
        goal = embed(target_audio, 24000)
    # the torch embedding is resemblyzer's own, within its VAD trimming
    assert float(goal.numpy() @ encoder("resemblyzer").embed(target_audio.numpy(), 24000)) > 0.95
    start = torch.from_numpy(styles["jf_alpha"][len(tokens) - 1][None])
    z = torch.zeros(1, 256, requires_grad=True)
    opt = torch.optim.Adam([z], lr=0.08)
    cosines = []
    for _ in range(2):
        audio, _ = model(ids_t, start + z, text=text)
        cos = embed(audio, 24000) @ goal
        opt.zero_grad()
        (1 - cos).backward()
        assert torch.isfinite(z.grad).all() and float(z.grad.abs().sum()) > 0
        opt.step()
        cosines.append(float(cos.detach()))
    with torch.no_grad():
        final = float(embed(model(ids_t, start + z, text=text)[0], 24000) @ goal)
    assert final > cosines[0] + 0.02, cosines + [final]
