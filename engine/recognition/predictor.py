"""Recognition predictor: line crops in, (text, confidence) out, batched by width.

Blank crops and exact repeats within a call skip the network (:mod:`engine.recognition.skip`).
:meth:`TextRecognizerPredictor.readings` gives each crop's :class:`~engine.recognition.ctc.Reading`
(the signals a cascade gates on) instead of its (text, confidence).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import cv2
import numpy as np

from engine.backends import Runner
from engine.recognition.ctc import Reading, ctc_greedy, ctc_readings
from engine.recognition.skip import plan

log = logging.getLogger(__name__)

HEIGHT = 48
STRIDE = 8  # input columns per output time step

T = TypeVar("T")
Decoder = Callable[[np.ndarray, list[str], np.ndarray], list[T]]  # probabilities, charset, lengths


@dataclass(frozen=True)
class RecParams:
    """Batching of recognition (from config)."""

    batch_size: int = 4
    min_width: int = 0  # narrower crops are padded to this (0: only to the batch's widest)
    max_width: int = 3200  # longer lines are squeezed to this
    blank_levels: int = 8  # a crop spanning fewer grey levels in every channel is blank (0: none is)


def prepare(crop: np.ndarray, max_width: int) -> np.ndarray:
    """Resize a crop to height 48 keeping its aspect ratio; float32 3x48xW in [-1, 1]."""
    h, w = crop.shape[:2]
    width = min(max_width, max(STRIDE, int(math.ceil(HEIGHT * w / max(h, 1)))))
    resized = cv2.resize(crop, (width, HEIGHT), interpolation=cv2.INTER_LINEAR)
    x = resized.astype(np.float32)
    x *= 1.0 / 127.5
    x -= 1.0
    return x.transpose(2, 0, 1)


class Recognizer(Protocol):
    """What the engine recognises line crops with (this predictor, or a cascade of two)."""

    def __call__(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """One (text, confidence) per crop, in order."""
        ...


class TextRecognizerPredictor:
    """Runs the recogniser on many crops, sorted by width so each batch pads little."""

    def __init__(self, runner: Runner, charset: list[str], params: RecParams) -> None:
        self.runner = runner
        self.charset = charset
        self.params = params

    def __call__(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """One (text, confidence) per crop, in order; a blank crop reads ("", 0.0)."""
        return self._plan(crops, ctc_greedy, ("", 0.0))

    def readings(self, crops: list[np.ndarray]) -> list[Reading]:
        """One :class:`Reading` per crop, in order (texts and confidences as :meth:`__call__`'s);
        a blank crop reads empty, its signals 0."""
        return self._plan(crops, ctc_readings, Reading("", 0.0, 0.0, 0.0))

    def _plan(self, crops: list[np.ndarray], decode: Decoder[T], empty: T) -> list[T]:
        """Blank crops read ``empty``, repeats their first copy's reading, the rest the network's."""
        if not crops:
            return []
        todo = plan(crops, self.params.blank_levels)
        log.debug("%d crops: %d blank, %d repeats not read", len(crops), todo.blank, todo.repeats)
        read = self._read([crops[i] for i in todo.run], decode, empty)
        by_crop = dict(zip(todo.run, read))
        return [empty if s is None else by_crop[s] for s in todo.source]

    def _read(self, crops: list[np.ndarray], decode: Decoder[T], empty: T) -> list[T]:
        """The network's reading of every crop, in width-sorted batches."""
        if not crops:
            return []
        inputs = [prepare(c, self.params.max_width) for c in crops]
        order = sorted(range(len(inputs)), key=lambda i: inputs[i].shape[2])
        results: list[T] = [empty] * len(inputs)
        size = max(1, self.params.batch_size)
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            width = max(self.params.min_width, max(inputs[i].shape[2] for i in idx))
            width = int(math.ceil(width / STRIDE)) * STRIDE
            batch = np.zeros((len(idx), 3, HEIGHT, width), dtype=np.float32)
            for row, i in enumerate(idx):
                batch[row, :, :, : inputs[i].shape[2]] = inputs[i]
            probs = self.runner(batch)
            # time steps past a crop's own width come from padding: never read them
            lengths = np.array([math.ceil(inputs[i].shape[2] / STRIDE) for i in idx])
            for i, decoded in zip(idx, decode(probs, self.charset, lengths)):
                results[i] = decoded
        return results
