"""Who speaks when: speaker labels for timed segments of one recording.

Each segment gets a resemblyzer (GE2E, 256-d) embedding; agglomerative clustering (cosine distance, average
linkage) merges segments until the closest two groups are further apart than ``threshold``, so the number of
speakers is found, not given. Same-speaker embeddings of clean speech sit 0.1-0.2 apart (cosine distance), two
people 0.3-0.7 (shared/notes/offline-assets.md); short segments are noisier, hence the default 0.3.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..log import get_logger

log = get_logger("audio.diarize")

THRESHOLD = 0.3
MIN_SECONDS = 0.6  # a segment shorter than this is widened (centred) before its embedding is taken


def segment_embeddings(audio: np.ndarray, sample_rate: int, segments: Sequence[tuple[float, float]]) -> np.ndarray:
    """(len(segments), 256) unit-length embeddings of ``audio`` inside each (start, end) in seconds."""
    from resemblyzer import preprocess_wav

    from ..voice.profiles import _speaker_encoder
    from .io import resample

    x = resample(np.asarray(audio, np.float32), sample_rate, 16000)
    out = []
    for a, b in segments:
        if b - a < MIN_SECONDS:
            c = (a + b) / 2
            a, b = c - MIN_SECONDS / 2, c + MIN_SECONDS / 2
        piece = x[max(0, int(a * 16000)):max(0, int(b * 16000))]
        wav = preprocess_wav(piece, 16000) if len(piece) else piece
        if len(wav) < 1600:  # silence only: trimming removed it; use the raw piece
            wav = piece if len(piece) >= 1600 else np.pad(piece, (0, 1600 - len(piece)))
        out.append(_speaker_encoder().embed_utterance(wav.astype(np.float32)))
    return np.asarray(out, np.float32).reshape(len(out), -1)


def cluster(embeddings: np.ndarray, threshold: float = THRESHOLD) -> list[int]:
    """Speaker numbers (0, 1, ... in order of first appearance) for rows of unit-length embeddings."""
    n = len(embeddings)
    if n == 0:
        return []
    if n == 1:
        return [0]
    from sklearn.cluster import AgglomerativeClustering

    raw = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="cosine",
                                  linkage="average").fit_predict(embeddings)
    order: dict[int, int] = {}
    return [order.setdefault(int(r), len(order)) for r in raw]


def speaker_labels(audio: np.ndarray, sample_rate: int, segments: Sequence[tuple[float, float]],
                   threshold: float = THRESHOLD) -> list[int]:
    """A speaker number per segment (0 = whoever speaks first)."""
    labels = cluster(segment_embeddings(audio, sample_rate, segments), threshold)
    log.info("diarization: %d segment(s), %d speaker(s)", len(labels), len(set(labels)))
    return labels
