"""Greedy CTC decoding, vectorised over the batch.

:func:`ctc_greedy` gives each line's text and mean character probability; :func:`ctc_readings`
adds the signals a recognition cascade gates on (:mod:`engine.recognition.cascade`).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    keep = _kept(idx, lengths)
    out = []
    for i in range(idx.shape[0]):
        sel = keep[i]
        chars = idx[i][sel]
        text = "".join(charset[c] for c in chars)
        score = float(conf[i][sel].mean()) if chars.size else 0.0
        out.append((text, score))
    return out


def _kept(idx: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """N x T: the time steps whose best class is a character kept by the collapse (not blank, not
    a repeat of the step before, inside the row's own length)."""
    keep: np.ndarray = idx != 0
    keep[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    if lengths is not None:
        keep &= np.arange(idx.shape[1])[None, :] < lengths[:, None]
    return keep


@dataclass(frozen=True)
class Reading:
    """One line's greedy CTC reading with the signals of how sure the network is of it.

    ``confidence``: the mean probability of the kept characters (what :func:`ctc_greedy` gives);
    ``min_char``: the least of them; ``margin``: the least, over the kept characters' time steps,
    of the best minus the second-best class probability. All three are 0.0 for an empty reading.
    """

    text: str
    confidence: float
    min_char: float
    margin: float


def ctc_readings(probs: np.ndarray, charset: list[str], lengths: np.ndarray | None = None) -> list[Reading]:
    """As :func:`ctc_greedy` (the same texts and confidences), each row a :class:`Reading`."""
    if probs.ndim != 3:
        raise ValueError(f"CTC input must be N x T x C, got shape {probs.shape}")
    idx = probs.argmax(axis=2)
    keep = _kept(idx, lengths)
    out = []
    for i in range(idx.shape[0]):
        chars = idx[i][keep[i]]
        text = "".join(charset[c] for c in chars)
        if not chars.size:
            out.append(Reading(text, 0.0, 0.0, 0.0))
            continue
        top2 = np.partition(probs[i][keep[i]], -2, axis=1)[:, -2:]  # K x 2: second best, best
        best = top2[:, 1]
        out.append(Reading(text, float(best.mean()), float(best.min()), float((best - top2[:, 0]).min())))
    return out
