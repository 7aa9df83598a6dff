"""A recognition cascade: every line read by a fast recogniser, the unsure ones again by an accurate one.

The first reader (the tiny set's recogniser) reads every crop; a crop whose gate signal (see
:class:`~engine.recognition.ctc.Reading`) is below the gate is read again by the second (the
engine's own recogniser) and takes that reading. Each reader decodes with its own charset, so
the two sets' dictionaries may differ (tiny's 6,904 characters are a subset of small's 18,708).
The detector is the engine's: the cascade is about recognition alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.recognition.ctc import Reading
from engine.recognition.predictor import TextRecognizerPredictor

log = logging.getLogger(__name__)

SIGNALS: dict[str, Callable[[Reading], float]] = {
    "mean": lambda r: r.confidence,  # mean probability of the kept characters
    "min_char": lambda r: r.min_char,  # the least probable character
    "margin": lambda r: r.margin,  # the least best-minus-second-best over the kept characters
}


@dataclass(frozen=True)
class Gate:
    """Which signal of the first reading is compared, and below what it is read again
    (0: never; above 1: always). From ``engine.rec_cascade_signal`` and ``rec_cascade_gate``."""

    signal: str
    threshold: float

    def __post_init__(self) -> None:
        if self.signal not in SIGNALS:
            raise ValueError(f"cascade signal must be one of {sorted(SIGNALS)}, got {self.signal!r}")
        if not self.threshold >= 0:
            raise ValueError(f"cascade gate must be 0 or more, got {self.threshold!r}")

    def passes(self, reading: Reading) -> bool:
        """True when ``reading`` is kept (its signal is at least the threshold)."""
        return SIGNALS[self.signal](reading) >= self.threshold


@dataclass(frozen=True)
class CascadeReading:
    """One cascade call's answer: a reading per crop, and which crops the second reader read."""

    readings: tuple[Reading, ...]
    reread: tuple[int, ...]


class CascadeRecognizer:
    """Crops in, (text, confidence) out, as :class:`TextRecognizerPredictor`; ``first`` reads
    every crop, ``second`` those whose first reading the gate does not pass."""

    def __init__(self, first: TextRecognizerPredictor, second: TextRecognizerPredictor, gate: Gate) -> None:
        self.first = first
        self.second = second
        self.gate = gate

    def __call__(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """One (text, confidence) per crop, in order; a blank crop reads ("", 0.0)."""
        return [(r.text, r.confidence) for r in self.read(crops).readings]

    def read(self, crops: list[np.ndarray]) -> CascadeReading:
        """Every crop's reading, and the indices of the crops read again."""
        readings = self.first.readings(crops)
        again = tuple(i for i, reading in enumerate(readings) if not self.gate.passes(reading))
        if again:
            for i, reading in zip(again, self.second.readings([crops[i] for i in again])):
                readings[i] = reading
        log.debug("%d crops: %d read again", len(crops), len(again))
        return CascadeReading(tuple(readings), again)
