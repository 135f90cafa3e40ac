"""Wav2Lip's generator, SyncNet_color expert and visual-quality discriminator, rebuilt from the published layer
table so the official checkpoints load unchanged (same module names and shapes).

Options beyond the published models (used by actor models trained with `studio train`):
- ``width``: multiplies every channel count (0.5 gives a model a quarter the size);
- ``img_size``: 96 (published) or 192: one extra stride-2 stage at the full-resolution end of each encoder and
  decoder, so the published 96 px core is unchanged.
With ``width=1, img_size=96`` (the defaults) the models are exactly the published ones.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SUPPORTED_SIZES = (96, 192)


class ConvBlock(nn.Module):
    """Conv2d + BatchNorm + ReLU, optionally adding the input before the ReLU (``conv_block``/``act`` names
    match the published checkpoints)."""

    def __init__(self, cin, cout, kernel_size, stride, padding, residual=False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x):
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class NoNormConvBlock(nn.Module):
    """Conv2d + LeakyReLU(0.01), no normalisation (the discriminator's block)."""

    def __init__(self, cin, cout, kernel_size, stride, padding):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x):
        return self.act(self.conv_block(x))


class TransposeBlock(nn.Module):
    """ConvTranspose2d + BatchNorm + ReLU."""

    def __init__(self, cin, cout, kernel_size, stride, padding, output_padding=0):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv_block(x))


def _ch(c: int, width: float) -> int:
    return max(4, int(round(c * width)))


def _res(c, n):
    return [ConvBlock(c, c, 3, 1, 1, residual=True) for _ in range(n)]


def audio_encoder(width: float = 1.0, extra_256: bool = False) -> nn.Sequential:
    """Mel window (1, 80, 16) -> (512w, 1, 1). SyncNet has one more 256-channel residual block."""
    c = lambda n: _ch(n, width)  # noqa: E731
    return nn.Sequential(
        ConvBlock(1, c(32), 3, 1, 1), *_res(c(32), 2),
        ConvBlock(c(32), c(64), 3, (3, 1), 1), *_res(c(64), 2),
        ConvBlock(c(64), c(128), 3, 3, 1), *_res(c(128), 2),
        ConvBlock(c(128), c(256), 3, (3, 2), 1), *_res(c(256), 2 if extra_256 else 1),
        ConvBlock(c(256), c(512), 3, 1, 0), ConvBlock(c(512), c(512), 1, 1, 0),
    )


def _check_size(img_size: int) -> None:
    if img_size not in SUPPORTED_SIZES:
        raise ValueError(f"img_size {img_size} is not supported; use one of {SUPPORTED_SIZES}")


class Wav2Lip(nn.Module):
    """The generator: (masked target + reference) face and a mel window -> the face with a new lower half."""

    def __init__(self, img_size: int = 96, width: float = 1.0):
        super().__init__()
        _check_size(img_size)
        self.config = dict(img_size=img_size, width=width)
        self.img_size = img_size
        c = lambda n: _ch(n, width)  # noqa: E731
        big = img_size == 192
        stem = [nn.Sequential(ConvBlock(6, c(16), 7, 1, 3))]
        if big:  # 192 -> 96, then the published stack
            stem.append(nn.Sequential(ConvBlock(c(16), c(16), 3, 2, 1), *_res(c(16), 1)))
        self.face_encoder_blocks = nn.ModuleList(stem + [
            nn.Sequential(ConvBlock(c(16), c(32), 3, 2, 1), *_res(c(32), 2)),
            nn.Sequential(ConvBlock(c(32), c(64), 3, 2, 1), *_res(c(64), 3)),
            nn.Sequential(ConvBlock(c(64), c(128), 3, 2, 1), *_res(c(128), 2)),
            nn.Sequential(ConvBlock(c(128), c(256), 3, 2, 1), *_res(c(256), 2)),
            nn.Sequential(ConvBlock(c(256), c(512), 3, 2, 1), *_res(c(512), 1)),
            nn.Sequential(ConvBlock(c(512), c(512), 3, 1, 0), ConvBlock(c(512), c(512), 1, 1, 0)),
        ])
        self.audio_encoder = audio_encoder(width)

        def up(cin, cout, n_res):
            return nn.Sequential(TransposeBlock(cin, cout, 3, 2, 1, output_padding=1), *_res(cout, n_res))

        decoder = [
            nn.Sequential(ConvBlock(c(512), c(512), 1, 1, 0)),
            nn.Sequential(TransposeBlock(2 * c(512), c(512), 3, 1, 0), *_res(c(512), 1)),
            up(2 * c(512), c(512), 2),
            up(c(512) + c(256), c(384), 2),
            up(c(384) + c(128), c(256), 2),
            up(c(256) + c(64), c(128), 2),
            up(c(128) + c(32), c(64), 2),
        ]
        out_in = c(64) + c(16)
        if big:
            decoder.append(up(c(64) + c(16), c(32), 1))
            out_in = c(32) + c(16)
        self.face_decoder_blocks = nn.ModuleList(decoder)
        self.output_block = nn.Sequential(ConvBlock(out_in, c(32), 3, 1, 1), nn.Conv2d(c(32), 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, audio_sequences, face_sequences):
        # time is folded into the batch: (B, T, 1, 80, 16) and (B, 6, T, H, W) -> (B*T, ...)
        batch = audio_sequences.size(0)
        timed = face_sequences.dim() > 4
        if timed:
            audio_sequences = torch.cat([audio_sequences[:, i] for i in range(audio_sequences.size(1))], dim=0)
            face_sequences = torch.cat([face_sequences[:, :, i] for i in range(face_sequences.size(2))], dim=0)
        x = self.audio_encoder(audio_sequences)
        feats = []
        f = face_sequences
        for block in self.face_encoder_blocks:
            f = block(f)
            feats.append(f)
        for block in self.face_decoder_blocks:
            x = block(x)
            x = torch.cat((x, feats.pop()), dim=1)
        x = self.output_block(x)
        if timed:
            x = torch.stack(torch.split(x, batch, dim=0), dim=2)
        return x


class SyncNetColor(nn.Module):
    """The lip-sync expert: 5 lower-half face crops (15 channels) and a mel window -> two unit embeddings."""

    def __init__(self, img_size: int = 96, width: float = 1.0):
        super().__init__()
        _check_size(img_size)
        self.config = dict(img_size=img_size, width=width)
        c = lambda n: _ch(n, width)  # noqa: E731
        stem = [ConvBlock(15, c(32), 7, 1, 3)]
        if img_size == 192:  # (96, 192) lower halves -> (48, 96)
            stem.append(ConvBlock(c(32), c(32), 3, 2, 1))
        self.face_encoder = nn.Sequential(
            *stem,
            ConvBlock(c(32), c(64), 5, (1, 2), 1), *_res(c(64), 2),
            ConvBlock(c(64), c(128), 3, 2, 1), *_res(c(128), 3),
            ConvBlock(c(128), c(256), 3, 2, 1), *_res(c(256), 2),
            ConvBlock(c(256), c(512), 3, 2, 1), *_res(c(512), 2),
            ConvBlock(c(512), c(512), 3, 2, 1), ConvBlock(c(512), c(512), 3, 1, 0), ConvBlock(c(512), c(512), 1, 1, 0),
        )
        self.audio_encoder = audio_encoder(width, extra_256=True)

    def embed_audio(self, audio_sequences):
        return F.normalize(self.audio_encoder(audio_sequences).flatten(1), p=2, dim=1)

    def embed_faces(self, face_sequences):
        return F.normalize(self.face_encoder(face_sequences).flatten(1), p=2, dim=1)

    def forward(self, audio_sequences, face_sequences):
        return self.embed_audio(audio_sequences), self.embed_faces(face_sequences)


class Wav2LipDiscQual(nn.Module):
    """The visual-quality discriminator: is this lower half of a face real or generated?"""

    def __init__(self, img_size: int = 96, width: float = 1.0):
        super().__init__()
        _check_size(img_size)
        self.config = dict(img_size=img_size, width=width)
        c = lambda n: _ch(n, width)  # noqa: E731
        stem = [nn.Sequential(NoNormConvBlock(3, c(32), 7, 1, 3))]
        if img_size == 192:
            stem.append(nn.Sequential(NoNormConvBlock(c(32), c(32), 3, 2, 1)))
        self.face_encoder_blocks = nn.ModuleList(stem + [
            nn.Sequential(NoNormConvBlock(c(32), c(64), 5, (1, 2), 2), NoNormConvBlock(c(64), c(64), 5, 1, 2)),
            nn.Sequential(NoNormConvBlock(c(64), c(128), 5, 2, 2), NoNormConvBlock(c(128), c(128), 5, 1, 2)),
            nn.Sequential(NoNormConvBlock(c(128), c(256), 5, 2, 2), NoNormConvBlock(c(256), c(256), 5, 1, 2)),
            nn.Sequential(NoNormConvBlock(c(256), c(512), 3, 2, 1), NoNormConvBlock(c(512), c(512), 3, 1, 1)),
            nn.Sequential(NoNormConvBlock(c(512), c(512), 3, 2, 1), NoNormConvBlock(c(512), c(512), 3, 1, 1)),
            nn.Sequential(NoNormConvBlock(c(512), c(512), 3, 1, 0), NoNormConvBlock(c(512), c(512), 1, 1, 0)),
        ])
        self.binary_pred = nn.Sequential(nn.Conv2d(c(512), 1, 1, 1, 0), nn.Sigmoid())

    def forward(self, face_sequences):
        if face_sequences.dim() > 4:  # (B, 3, T, H, W) -> (B*T, 3, H, W)
            face_sequences = torch.cat([face_sequences[:, :, i] for i in range(face_sequences.size(2))], dim=0)
        x = face_sequences[:, :, face_sequences.size(2) // 2:]  # the lower half
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).view(len(x), -1)


MODEL_KINDS = {"wav2lip": Wav2Lip, "syncnet": SyncNetColor, "disc": Wav2LipDiscQual}


def build(kind: str, **config) -> nn.Module:
    try:
        cls = MODEL_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(MODEL_KINDS)}") from None
    return cls(**config)
