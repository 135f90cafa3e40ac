"""Kokoro-82M as a differentiable PyTorch model, built from the int8 ONNX weights that install offline.

Why: fitting a speaker's style by gradient needs a model torch can differentiate; the ONNX graph cannot be, and the
``kokoro`` PyPI package (the reference PyTorch code) drags in ``transformers``, ``misaki``/spaCy and
``huggingface_hub`` downloads. So the module code is ported here, inference-only and batch-1 (no padding masks),
from ``kokoro`` 0.9.4 (``model.py``, ``modules.py``, ``istftnet.py``; Apache-2.0, hexgrad, itself adapted from
StyleTTS2, MIT, yl4579), with the ALBERT text encoder written out instead of imported from ``transformers``.

Weights: the joined ``kokoro-v1.0.int8.onnx`` (``kokoro.model_file()``). Its float initializers keep the PyTorch
names (``encoder.predictor.F0.0.conv1.bias`` ...); the int8/uint8 weights are de-quantised, ``w = (q - zero_point)
* scale`` (per output channel where the scale is a vector); weights whose names were lost in the export (the
ALBERT matrices, the LSTMs, the convolutions whose weight-norm was folded into one tensor) are found through the
node that uses them, whose name is the module's path (``/decoder/decoder/encode/conv1/Conv_quant`` ->
``decoder.encode.conv1``). Every parameter of the model must be filled exactly once, or loading fails.

The graph this mirrors (checked against the ONNX output, ``tests/test_kokoro_torch.py``): the harmonic source has no
random phase or noise (the export dropped them, so the audio is deterministic), the source spectrum is
``torch.stft`` (centre, reflect padding), and the inverse STFT is the export's transposed convolution with its own
basis and the same scaling (x4, the first 20 samples divided by its window sum; trimmed by 10 each side).
Activations are float here (the ONNX model quantises them to 8 bits at run time), so audio differs slightly.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import StudioError
from ..log import get_logger

log = get_logger("voice.kokoro_torch")

HIDDEN, STYLE, TOKENS, MAX_DUR = 512, 128, 178, 50
SAMPLE_RATE = 24000


# ---- ALBERT (the PL-BERT text encoder; what transformers.AlbertModel computes for Kokoro's config) ----------------
class _AlbertEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(TOKENS, 128)
        self.position_embeddings = nn.Embedding(512, 128)
        self.token_type_embeddings = nn.Embedding(2, 128)
        self.LayerNorm = nn.LayerNorm(128, eps=1e-12)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1])
        x = self.word_embeddings(ids) + self.position_embeddings(pos)[None] + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class _AlbertAttention(nn.Module):
    def __init__(self, dim=768, heads=12):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.dense = (nn.Linear(dim, dim) for _ in range(4))
        self.LayerNorm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x):
        b, t, d = x.shape
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        ctx = (a @ v).transpose(1, 2).reshape(b, t, d)
        return self.LayerNorm(x + self.dense(ctx))


class _AlbertLayer(nn.Module):
    def __init__(self, dim=768, ffn=2048):
        super().__init__()
        self.attention = _AlbertAttention(dim)
        self.ffn = nn.Linear(dim, ffn)
        self.ffn_output = nn.Linear(ffn, dim)
        self.full_layer_layer_norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x):
        x = self.attention(x)
        return self.full_layer_layer_norm(x + self.ffn_output(F.gelu(self.ffn(x), approximate="tanh")))


class _AlbertGroup(nn.Module):
    def __init__(self):
        super().__init__()
        self.albert_layers = nn.ModuleList([_AlbertLayer()])


class _AlbertEncoder(nn.Module):
    def __init__(self, layers=12):
        super().__init__()
        self.layers = layers
        self.embedding_hidden_mapping_in = nn.Linear(128, 768)
        self.albert_layer_groups = nn.ModuleList([_AlbertGroup()])

    def forward(self, x):
        x = self.embedding_hidden_mapping_in(x)
        layer = self.albert_layer_groups[0].albert_layers[0]
        for _ in range(self.layers):  # ALBERT shares one layer's weights across all 12
            x = layer(x)
        return x


class Albert(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = _AlbertEmbeddings()
        self.encoder = _AlbertEncoder()

    def forward(self, ids):
        return self.encoder(self.embeddings(ids))


# ---- StyleTTS2 / Kokoro modules -------------------------------------------------------------------------------
class LayerNormC(nn.Module):
    """Layer norm over the channel axis of (B, C, T)."""

    def __init__(self, channels, eps=1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        return F.layer_norm(x.transpose(1, -1), (x.shape[1],), self.gamma, self.beta, self.eps).transpose(1, -1)


class TextEncoder(nn.Module):
    def __init__(self, channels=HIDDEN, kernel=5, depth=3):
        super().__init__()
        self.embedding = nn.Embedding(TOKENS, channels)
        self.cnn = nn.ModuleList([nn.Sequential(nn.Conv1d(channels, channels, kernel, padding=kernel // 2),
                                                LayerNormC(channels), nn.LeakyReLU(0.2)) for _ in range(depth)])
        self.lstm = nn.LSTM(channels, channels // 2, 1, batch_first=True, bidirectional=True)

    def forward(self, ids):
        x = self.embedding(ids).transpose(1, 2)
        for c in self.cnn:
            x = c(x)
        return self.lstm(x.transpose(1, 2))[0].transpose(1, 2)  # (1, C, T)


class AdaLayerNorm(nn.Module):
    def __init__(self, style_dim, channels, eps=1e-5):
        super().__init__()
        self.channels, self.eps = channels, eps
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x, s):  # x (B, T, C)
        gamma, beta = self.fc(s)[:, None].chunk(2, dim=-1)
        return (1 + gamma) * F.layer_norm(x, (self.channels,), eps=self.eps) + beta


class DurationEncoder(nn.Module):
    def __init__(self, sty_dim=STYLE, d_model=HIDDEN, nlayers=3):
        super().__init__()
        self.lstms = nn.ModuleList()
        for _ in range(nlayers):
            self.lstms.append(nn.LSTM(d_model + sty_dim, d_model // 2, 1, batch_first=True, bidirectional=True))
            self.lstms.append(AdaLayerNorm(sty_dim, d_model))

    def forward(self, x, s):  # x (1, C, T) -> (1, T, C + style)
        style = s[:, None].expand(-1, x.shape[2], -1)
        x = torch.cat([x.transpose(1, 2), style], dim=-1)
        for block in self.lstms:
            if isinstance(block, AdaLayerNorm):
                x = torch.cat([block(x, s), style], dim=-1)
            else:
                x = block(x)[0]
        return x


class AdaIN1d(nn.Module):
    def __init__(self, style_dim, features):
        super().__init__()
        self.fc = nn.Linear(style_dim, features * 2)

    def forward(self, x, s):
        gamma, beta = self.fc(s)[:, :, None].chunk(2, dim=1)
        return (1 + gamma) * F.instance_norm(x, eps=1e-5) + beta


class AdainResBlk1d(nn.Module):
    def __init__(self, dim_in, dim_out, style_dim=STYLE, upsample=False):
        super().__init__()
        self.upsample_type = "half" if upsample else "none"
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv1d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv1d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN1d(style_dim, dim_in)
        self.norm2 = AdaIN1d(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = nn.Conv1d(dim_in, dim_out, 1, 1, 0, bias=False)
        self.pool = (nn.ConvTranspose1d(dim_in, dim_in, 3, stride=2, groups=dim_in, padding=1, output_padding=1)
                     if upsample else nn.Identity())

    def forward(self, x, s):
        r = self.pool(F.leaky_relu(self.norm1(x, s), 0.2))
        r = self.conv2(F.leaky_relu(self.norm2(self.conv1(r), s), 0.2))
        sc = F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample_type != "none" else x
        if self.learned_sc:
            sc = self.conv1x1(sc)
        return (r + sc) / math.sqrt(2)


class ProsodyPredictor(nn.Module):
    def __init__(self, style_dim=STYLE, d_hid=HIDDEN, nlayers=3):
        super().__init__()
        self.text_encoder = DurationEncoder(style_dim, d_hid, nlayers)
        self.lstm = nn.LSTM(d_hid + style_dim, d_hid // 2, 1, batch_first=True, bidirectional=True)
        self.duration_proj = nn.Module()
        self.duration_proj.linear_layer = nn.Linear(d_hid, MAX_DUR)
        self.shared = nn.LSTM(d_hid + style_dim, d_hid // 2, 1, batch_first=True, bidirectional=True)
        self.F0 = nn.ModuleList([AdainResBlk1d(d_hid, d_hid, style_dim),
                                 AdainResBlk1d(d_hid, d_hid // 2, style_dim, upsample=True),
                                 AdainResBlk1d(d_hid // 2, d_hid // 2, style_dim)])
        self.N = nn.ModuleList([AdainResBlk1d(d_hid, d_hid, style_dim),
                                AdainResBlk1d(d_hid, d_hid // 2, style_dim, upsample=True),
                                AdainResBlk1d(d_hid // 2, d_hid // 2, style_dim)])
        self.F0_proj = nn.Conv1d(d_hid // 2, 1, 1)
        self.N_proj = nn.Conv1d(d_hid // 2, 1, 1)

    def F0Ntrain(self, x, s):  # x (1, C, frames)
        x = self.shared(x.transpose(1, 2))[0].transpose(1, 2)
        f0, n = x, x
        for block in self.F0:
            f0 = block(f0, s)
        for block in self.N:
            n = block(n, s)
        return self.F0_proj(f0)[:, 0], self.N_proj(n)[:, 0]


class AdaINResBlock1(nn.Module):
    def __init__(self, channels, kernel=3, dilation=(1, 3, 5), style_dim=STYLE):
        super().__init__()
        pad = lambda d: (kernel * d - d) // 2  # noqa: E731
        self.convs1 = nn.ModuleList([nn.Conv1d(channels, channels, kernel, dilation=d, padding=pad(d))
                                     for d in dilation])
        self.convs2 = nn.ModuleList([nn.Conv1d(channels, channels, kernel, padding=pad(1)) for _ in dilation])
        self.adain1 = nn.ModuleList([AdaIN1d(style_dim, channels) for _ in dilation])
        self.adain2 = nn.ModuleList([AdaIN1d(style_dim, channels) for _ in dilation])
        self.alpha1 = nn.ParameterList([nn.Parameter(torch.ones(1, channels, 1)) for _ in dilation])
        self.alpha2 = nn.ParameterList([nn.Parameter(torch.ones(1, channels, 1)) for _ in dilation])

    def forward(self, x, s):
        for c1, c2, n1, n2, a1, a2 in zip(self.convs1, self.convs2, self.adain1, self.adain2, self.alpha1,
                                          self.alpha2):
            xt = n1(x, s)
            xt = xt + (1 / a1) * torch.sin(a1 * xt) ** 2  # Snake
            xt = n2(c1(xt), s)
            xt = xt + (1 / a2) * torch.sin(a2 * xt) ** 2
            x = c2(xt) + x
        return x


def _checkpointed(block: nn.Module, x, s):
    """The block, its activations recomputed in the backward pass when gradients are taken: the generator's
    residual blocks run at 4800 frames per second of audio, and keeping their activations would take gigabytes."""
    if torch.is_grad_enabled() and (x.requires_grad or s.requires_grad):
        from torch.utils.checkpoint import checkpoint

        return checkpoint(block, x, s, use_reentrant=False)
    return block(x, s)


class SourceModule(nn.Module):
    """Harmonic source from F0 (8 overtones), as the ONNX export computes it: no random phase, no noise."""

    def __init__(self, upsample_scale=300, harmonics=8):
        super().__init__()
        self.scale = upsample_scale
        self.register_buffer("harmonics", torch.arange(1, harmonics + 2, dtype=torch.float32)[None, None])
        self.l_linear = nn.Linear(harmonics + 1, 1)

    def forward(self, f0):  # f0 (1, samples, 1) in Hz
        fn = f0 * self.harmonics
        rad = (fn / SAMPLE_RATE) % 1
        rad = F.interpolate(rad.transpose(1, 2), scale_factor=1 / self.scale, mode="linear")
        phase = torch.cumsum(rad, dim=2) * 2 * math.pi
        phase = F.interpolate(phase * self.scale, scale_factor=self.scale, mode="linear").transpose(1, 2)
        sines = torch.sin(phase) * 0.1 * (f0 > 10).float()
        return torch.tanh(self.l_linear(sines))


class Generator(nn.Module):
    def __init__(self, style_dim=STYLE, kernels=(3, 7, 11), rates=(10, 6), channels=512, up_kernels=(20, 12),
                 n_fft=20, hop=5):
        super().__init__()
        self.n_fft, self.hop, self.num_kernels = n_fft, hop, len(kernels)
        self.m_source = SourceModule(math.prod(rates) * hop)
        self.ups = nn.ModuleList([nn.ConvTranspose1d(channels // 2 ** i, channels // 2 ** (i + 1), k, u,
                                                     padding=(k - u) // 2)
                                  for i, (u, k) in enumerate(zip(rates, up_kernels))])
        self.resblocks = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.noise_res = nn.ModuleList()
        for i in range(len(rates)):
            ch = channels // 2 ** (i + 1)
            for k in kernels:
                self.resblocks.append(AdaINResBlock1(ch, k, (1, 3, 5), style_dim))
            if i + 1 < len(rates):
                stride = math.prod(rates[i + 1:])
                self.noise_convs.append(nn.Conv1d(n_fft + 2, ch, stride * 2, stride=stride, padding=(stride + 1) // 2))
                self.noise_res.append(AdaINResBlock1(ch, 7, (1, 3, 5), style_dim))
            else:
                self.noise_convs.append(nn.Conv1d(n_fft + 2, ch, 1))
                self.noise_res.append(AdaINResBlock1(ch, 11, (1, 3, 5), style_dim))
        self.conv_post = nn.Conv1d(ch, n_fft + 2, 7, 1, padding=3)
        self.register_buffer("window", torch.hann_window(n_fft))
        self.register_buffer("inverse_basis", torch.zeros(n_fft + 2, 1, n_fft))  # from the ONNX graph
        self.register_buffer("window_sum", torch.ones(n_fft))

    def forward(self, x, s, f0):
        with torch.no_grad():  # as in Kokoro: the source is not differentiated (F0 still reaches the decoder)
            f0 = F.interpolate(f0[:, None], scale_factor=self.m_source.scale, mode="nearest").transpose(1, 2)
            har = self.m_source(f0)[:, :, 0]
            spec = torch.stft(har, self.n_fft, self.hop, self.n_fft, window=self.window, center=True,
                              pad_mode="reflect", return_complex=True)
            har = torch.cat([spec.abs(), spec.angle()], dim=1)
        for i in range(len(self.ups)):
            x = F.leaky_relu(x, 0.1)
            x_source = _checkpointed(self.noise_res[i], self.noise_convs[i](har), s)
            x = self.ups[i](x)
            if i == len(self.ups) - 1:
                x = F.pad(x, (1, 0), mode="reflect")
            x = x + x_source
            xs = sum(_checkpointed(self.resblocks[i * self.num_kernels + j], x, s) for j in range(self.num_kernels))
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))
        bins = self.n_fft // 2 + 1
        mag, phase = torch.exp(x[:, :bins]), torch.sin(x[:, bins:])
        return self._inverse(mag, phase)

    def _inverse(self, mag, phase):
        y = F.conv_transpose1d(torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=1),
                               self.inverse_basis, stride=self.hop)[:, 0]
        n = min(y.shape[1], len(self.window_sum))  # the export divides only its first n_fft samples
        ws = self.window_sum[:n]
        ws = torch.where(ws > 1.1754943508222875e-38, ws, torch.ones_like(ws))  # (a 0/0 would poison gradients)
        head = y[:, :n] / ws
        y = torch.cat([head, y[:, n:]], dim=1) * (self.n_fft / self.hop)
        return y[:, self.n_fft // 2: -(self.n_fft // 2)]


class Decoder(nn.Module):
    def __init__(self, dim_in=HIDDEN, style_dim=STYLE):
        super().__init__()
        self.encode = AdainResBlk1d(dim_in + 2, 1024, style_dim)
        self.decode = nn.ModuleList([AdainResBlk1d(1024 + 2 + 64, 1024, style_dim) for _ in range(3)]
                                    + [AdainResBlk1d(1024 + 2 + 64, 512, style_dim, upsample=True)])
        self.F0_conv = nn.Conv1d(1, 1, 3, stride=2, padding=1)
        self.N_conv = nn.Conv1d(1, 1, 3, stride=2, padding=1)
        self.asr_res = nn.Sequential(nn.Conv1d(512, 64, 1))
        self.generator = Generator(style_dim)

    def forward(self, asr, f0_curve, n, s):
        f0, n = self.F0_conv(f0_curve[:, None]), self.N_conv(n[:, None])
        x = self.encode(torch.cat([asr, f0, n], dim=1), s)
        asr_res = self.asr_res(asr)
        res = True
        for block in self.decode:
            if res:
                x = torch.cat([x, asr_res, f0, n], dim=1)
            x = block(x, s)
            if block.upsample_type != "none":
                res = False
        return self.generator(x, s, f0_curve)


class KokoroModel(nn.Module):
    """Kokoro-82M: tokens (with the 0 pads) and a (1, 256) style -> 24 kHz audio and frames per token."""

    def __init__(self):
        super().__init__()
        self.bert = Albert()
        self.bert_encoder = nn.Linear(768, HIDDEN)
        self.predictor = ProsodyPredictor()
        self.text_encoder = TextEncoder()
        self.decoder = Decoder()

    def text_features(self, ids: torch.Tensor):
        """What does not depend on the style: the duration encoder's input and the aligned-text features."""
        return self.bert_encoder(self.bert(ids)).transpose(1, 2), self.text_encoder(ids)

    def durations(self, d: torch.Tensor, speed: float = 1.0) -> torch.Tensor:
        x = self.predictor.lstm(d)[0]
        dur = torch.sigmoid(self.predictor.duration_proj.linear_layer(x)).sum(dim=-1) / speed
        return torch.round(dur).clamp(min=1).long()[0]

    def forward(self, ids: torch.Tensor, style: torch.Tensor, speed: float = 1.0, frames=None, text=None):
        """``frames``: fixed frames per token (the fit keeps them while the style moves; None = predicted).
        ``text``: ``text_features(ids)``, when already computed."""
        d_en, t_en = text if text is not None else self.text_features(ids)
        s = style[:, STYLE:]
        d = self.predictor.text_encoder(d_en, s)
        if frames is None:
            with torch.no_grad():
                frames = self.durations(d, speed)
        en = torch.repeat_interleave(d, frames, dim=1).transpose(1, 2)
        f0, n = self.predictor.F0Ntrain(en, s)
        asr = torch.repeat_interleave(t_en, frames, dim=2)
        return self.decoder(asr, f0, n, style[:, :STYLE])[0], frames


# ---- loading the ONNX weights ---------------------------------------------------------------------------------
_STRIP = re.compile(r"_\d+$")
_PREDICTOR_SCOPES = re.compile(r"^((F0|N)(\.\d+|_proj)|shared)$")


def module_path(node_name: str) -> str:
    """The PyTorch module a node of the exported graph belongs to ('/encoder/F0.1/conv1/Conv_quant' ->
    'predictor.F0.1.conv1'; the export scoped the predictor's F0/N/shared directly under /encoder)."""
    parts = node_name.strip("/").split("/")[:-1]
    if not parts:
        return ""
    root, rest = parts[0], parts[1:]
    prefix = []
    if root == "decoder":
        rest = rest[1:] if rest[:1] == ["decoder"] else rest
        prefix = ["decoder"]
    elif rest and _PREDICTOR_SCOPES.match(rest[0]):
        prefix = ["predictor"]
    out: list[str] = []
    for p in rest:
        p = _STRIP.sub("", p)  # repeated calls of a shared module: ffn_output_9 -> ffn_output
        if out and p.startswith(out[-1] + "."):
            out[-1] = p  # 'cnn.0/cnn.0.0' -> 'cnn.0.0'
        else:
            out.append(p)
    return ".".join(prefix + out)


def _torch_name(onnx_name: str) -> str:
    """'encoder.predictor.F0.0.conv1.bias' -> 'predictor.F0.0.conv1.bias'; 'decoder.decoder.X' -> 'decoder.X'."""
    if onnx_name.startswith("decoder.decoder."):
        return onnx_name[len("decoder."):]
    if onnx_name.startswith("encoder."):
        return onnx_name[len("encoder."):]
    return onnx_name


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int) -> np.ndarray:
    """(q - zero_point) * scale, with a per-channel scale/zero point along ``axis`` when they are vectors."""
    shape = [1] * q.ndim
    scale, zero = np.asarray(scale, np.float32), np.asarray(zero).astype(np.float32)
    if scale.size > 1:
        shape[axis] = -1
    s = scale.reshape(shape) if scale.size > 1 else scale.reshape(())
    z = zero.reshape(shape) if zero.size > 1 else zero.reshape(())
    return (q.astype(np.float32) - z) * s


def _lstm_weights(prefix: str, w: np.ndarray, r: np.ndarray, b: np.ndarray) -> dict:
    """ONNX LSTM (W (dirs, in, 4H) transposed, gates i,o,f,c; B = [Wb, Rb]) -> torch (gates i,f,g,o)."""
    hidden = r.shape[1]
    order = np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in (0, 2, 3, 1)])
    out = {}
    for d, suffix in enumerate(("", "_reverse")):
        out[f"{prefix}.weight_ih_l0{suffix}"] = w[d].T[order]
        out[f"{prefix}.weight_hh_l0{suffix}"] = r[d].T[order]
        out[f"{prefix}.bias_ih_l0{suffix}"] = b[d, :4 * hidden][order]
        out[f"{prefix}.bias_hh_l0{suffix}"] = b[d, 4 * hidden:][order]
    return out


def onnx_state_dict(model_path) -> dict[str, np.ndarray]:
    """The float weights of the ONNX model, keyed by the PyTorch names of ``KokoroModel``."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(model_path))
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    state: dict[str, np.ndarray] = {}

    def put(name: str, value: np.ndarray):
        if name in state and not np.array_equal(state[name], value):
            raise StudioError(f"two different ONNX tensors map to the Kokoro weight {name}")
        state[name] = np.asarray(value, np.float32)

    def deq(name: str, zero_name: str, axis: int) -> np.ndarray:
        if name not in init:
            return None
        base = name[: -len("_quantized")] if name.endswith("_quantized") else name
        return _dequantize(init[name], init[base + "_scale"], init[zero_name], axis)

    for name, value in init.items():  # float tensors that kept their PyTorch names
        if value.dtype == np.float32 and (name.startswith("encoder.") or name.startswith("decoder.decoder.")):
            put(_torch_name(name), value)
    for n in m.graph.node:
        mod = module_path(n.name)
        if n.op_type == "ConvInteger":
            put(mod + ".weight", deq(n.input[1], n.input[3], axis=0))
        elif n.op_type == "MatMulInteger" and n.input[1] in init:
            put(mod + ".weight", deq(n.input[1], n.input[3], axis=1).T)
        elif n.op_type in ("ConvTranspose", "Conv") and n.input[1] in init:
            if mod.endswith("istft.stft") or "istft" in n.name:
                continue
            put(mod + ".weight", init[n.input[1]])
        elif n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in init:  # the source's l_linear
            put(mod + ".weight", init[n.input[1]].T)
        elif n.op_type == "DynamicQuantizeLSTM":
            w = _dequantize(init[n.input[1]], init[n.input[8]], init[n.input[9]], axis=0)
            r = _dequantize(init[n.input[2]], init[n.input[10]], init[n.input[11]], axis=0)
            for k, v in _lstm_weights(mod, w, r, init[n.input[3]]).items():
                put(k, v)
        elif n.op_type == "DequantizeLinear" and n.input[0].endswith("Gather_output_0_quantized"):
            table = mod  # '/encoder/bert/embeddings/word_embeddings/Gather_quant_...' -> its embedding table
            q = "encoder." + table + ".weight_quantized"
            put(table + ".weight", _dequantize(init[q], init[n.input[1]], init[n.input[2]], axis=0))
    basis = init.get("decoder.decoder.generator.stft.istft.stft.inverse_basis")
    window_sum = init.get("decoder.decoder.generator.stft.istft.stft.window_sum")
    if basis is None or window_sum is None:
        raise StudioError("the Kokoro ONNX model has no inverse STFT basis; this model file is not the one the "
                          "studio knows")
    put("decoder.generator.inverse_basis", basis)
    put("decoder.generator.window_sum", window_sum)
    return state


def load_onnx_weights(model: KokoroModel, model_path) -> KokoroModel:
    """Fill every parameter and buffer of ``model`` from the ONNX file; StudioError when any is left out."""
    state = onnx_state_dict(model_path)
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith(".window") and not k.endswith(".harmonics")]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        raise StudioError(f"the Kokoro ONNX weights do not fit the PyTorch model: {len(missing)} missing "
                          f"({', '.join(missing[:5])}), {len(wrong)} of another shape ({', '.join(wrong[:5])})")
    model.load_state_dict({k: torch.from_numpy(np.array(state[k])) if k in state else v for k, v in own.items()})
    return model


@lru_cache(maxsize=1)
def kokoro_model() -> KokoroModel:
    """The shared, frozen PyTorch Kokoro (eval mode, no parameter gradients; about 330 MB of float weights)."""
    from .kokoro import model_file

    model = load_onnx_weights(KokoroModel(), model_file()).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
