"""Greedy CTC decoding, vectorised over the batch."""

from __future__ import annotations

import numpy as np


def ctc_greedy(probs: np.ndarray, charset: list[str], lengths: np.ndarray | None = None) -> list[tuple[str, float]]:
    """N x T x C probabilities -> (text, mean probability of the kept characters) per row.

    ``lengths`` (time steps that belong to each row's own image, before padding) keeps the
    padded tail from adding characters.
    """
    if probs.ndim != 3:
        raise ValueError(f"CTC input must be N x T x C, got shape {probs.shape}")
    idx = probs.argmax(axis=2)
    conf = probs.max(axis=2)
    n, t = idx.shape
    keep = idx != 0
    keep[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    if lengths is not None:
        keep &= np.arange(t)[None, :] < lengths[:, None]
    out = []
    for i in range(n):
        sel = keep[i]
        chars = idx[i][sel]
        text = "".join(charset[c] for c in chars)
        score = float(conf[i][sel].mean()) if chars.size else 0.0
        out.append((text, score))
    return out
