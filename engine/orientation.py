"""Pages turned 90, 180 or 270 degrees: find the turn, read the page upright, map boxes back.

The classifier is the four-way document orientation network the weights package ships
(``models/orientation/rapid_orientation.onnx``), run on ONNX Runtime like the other networks on
that backend. It sees one 224 x 224 view of the page: the page scaled so that its short side is
256 pixels, cut to its centre, RGB, ImageNet-normalised. Its four classes name how far the page's
content is turned clockwise, 0, 90, 180 or 270 degrees (measured: a page turned a quarter
counter-clockwise, ``cv2.ROTATE_90_COUNTERCLOCKWISE``, is class 270); turning it back the other way
makes it upright.

The network proposes; the recogniser decides. A page it gives a turn to (at least
``engine.orientation_min_score``) is read both as it came and turned, and the pipeline keeps the
reading the recogniser is surest of (:func:`candidate_turns`, ``engine.pipeline``): an upright page
wrongly proposed for a turn costs a second reading, never its text. Boxes found on the turned copy
are mapped back into the pixels of the image as it came, so drawings and overlays stay on the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.backends import Runner

SIZE = 224
SHORT_SIDE = 256
# per class (content turned 0, 90, 180, 270 clockwise): the clockwise degrees that make it upright
TURNS = (0, 270, 180, 90)
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)
_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass(frozen=True)
class Turn:
    """The clockwise ``degrees`` that make a page upright (0: it is), and the network's ``score``."""

    degrees: int
    score: float


class OrientationClassifier:
    """Which way each page must be turned to be upright."""

    def __init__(self, runner: Runner, min_score: float) -> None:
        self.runner = runner
        self.min_score = min_score

    def turns(self, images: Sequence[np.ndarray]) -> list[Turn]:
        """One :class:`Turn` per BGR image, in one batch; a guess below ``min_score`` is 0 degrees."""
        if not images:
            return []
        probs = _softmax(self.runner(np.stack([view(image) for image in images])))
        out = []
        for row in probs:
            best = int(np.argmax(row))
            score = float(row[best])
            out.append(Turn(TURNS[best] if score >= self.min_score else 0, score))
        return out


def candidate_turns(proposed: int) -> tuple[int, ...]:
    """The turns a page is read with when the classifier proposes ``proposed``: as it came first,
    then the proposal, and for a quarter turn the other quarter too (the network tells the axis
    better than the direction)."""
    if proposed == 0:
        return (0,)
    if proposed == 180:
        return (0, 180)
    return (0, proposed, 360 - proposed)


def view(image: np.ndarray) -> np.ndarray:
    """The network's 3 x 224 x 224 float32 view of a BGR page: short side to 256, centre crop."""
    h, w = image.shape[:2]
    scale = max(SHORT_SIDE / min(h, w), SIZE / min(h, w))
    size = (max(SIZE, round(w * scale)), max(SIZE, round(h * scale)))
    shrinking = scale < 1
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    top, left = (size[1] - SIZE) // 2, (size[0] - SIZE) // 2
    crop = resized[top : top + SIZE, left : left + SIZE, ::-1]  # BGR -> RGB
    return ((crop.astype(np.float32) / 255.0 - _MEAN) / _STD).transpose(2, 0, 1)


def upright(image: np.ndarray, degrees: int) -> np.ndarray:
    """``image`` turned ``degrees`` clockwise (0: itself)."""
    return image if degrees == 0 else cv2.rotate(image, _ROTATE[degrees])


def to_source(points: np.ndarray, degrees: int, width: int, height: int) -> np.ndarray:
    """Points ``(n, 2)`` on the upright copy, in the pixels of the ``width`` x ``height`` image
    that was turned ``degrees`` clockwise to make it."""
    x, y = points[:, 0], points[:, 1]
    if degrees == 90:  # upright (x, y) came from source (y, height - x)
        return np.stack([y, height - x], axis=1)
    if degrees == 180:
        return np.stack([width - x, height - y], axis=1)
    if degrees == 270:  # upright (x, y) came from source (width - y, x)
        return np.stack([width - y, x], axis=1)
    return points


def to_upright(points: np.ndarray, degrees: int, width: int, height: int) -> np.ndarray:
    """The inverse of :func:`to_source`: source pixels to the upright copy's."""
    x, y = points[:, 0], points[:, 1]
    if degrees == 90:
        return np.stack([height - y, x], axis=1)
    if degrees == 180:
        return np.stack([width - x, height - y], axis=1)
    if degrees == 270:
        return np.stack([y, width - x], axis=1)
    return points


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Rows of probabilities (the graph may end in a softmax already)."""
    logits = logits.astype(np.float32)
    if np.all(logits >= 0) and np.allclose(logits.sum(axis=1), 1.0, atol=1e-3):
        return logits
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
