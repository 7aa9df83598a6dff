"""Helpers for checking OCR output against tests/images/golden.json.

Texts are compared after :func:`normalise`; boxes as axis-aligned rectangles ``[left, top,
right, bottom]`` in image pixels.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

IMAGES = Path(__file__).resolve().parents[1] / "images"

Rect = tuple[float, float, float, float]


def normalise(text: str) -> str:
    """NFKC (full-width punctuation -> ASCII), every whitespace character removed, case kept."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def char_error_rate(expected: str, got: str) -> float:
    return edit_distance(expected, got) / max(1, len(expected))


def rect_of(points: Sequence[Sequence[float]]) -> Rect:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def iou(a: Rect, b: Rect) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def contains(outer: Rect, inner: Rect) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def boxes_match(golden: Rect, predicted: Rect) -> bool:
    """IoU of at least 0.5, or one box inside the other."""
    return iou(golden, predicted) >= 0.5 or contains(predicted, golden) or contains(golden, predicted)


class CountingRunner:
    """The real recogniser, counting the crops (batch rows) it is given."""

    def __init__(self, runner: object) -> None:
        self.runner = runner
        self.name = getattr(runner, "name", "counting")
        self.rows = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.rows += batch.shape[0]
        return self.runner(batch)  # type: ignore[operator]
