"""Which line crops need the recogniser: blank crops and exact repeats do not.

A crop whose pixels span fewer than ``blank_levels`` grey levels in every channel holds no
legible text: it is given no line. A crop equal, pixel for pixel, to an earlier one of the same
call takes that crop's reading (a UI repeats its labels, a table its values).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def is_blank(crop: np.ndarray, blank_levels: int) -> bool:
    """True when every channel of ``crop`` spans fewer than ``blank_levels`` levels (0: never)."""
    if blank_levels <= 0:
        return False
    if crop.size == 0:
        return True
    pixels = crop.reshape(-1, crop.shape[2]) if crop.ndim == 3 else crop.reshape(-1, 1)
    spread = pixels.max(axis=0).astype(np.int32) - pixels.min(axis=0)
    return bool(spread.max() < blank_levels)


@dataclass(frozen=True)
class Plan:
    """``run``: the crops to recognise, in call order; ``source[i]``: the crop whose reading crop
    ``i`` takes (itself when it runs), or None for a blank crop."""

    run: tuple[int, ...]
    source: tuple[int | None, ...]

    @property
    def blank(self) -> int:
        return sum(1 for s in self.source if s is None)

    @property
    def repeats(self) -> int:
        return len(self.source) - len(self.run) - self.blank


def plan(crops: list[np.ndarray], blank_levels: int) -> Plan:
    """The crops of one recogniser call that must run, and where each other crop's reading comes from."""
    first: dict[tuple[tuple[int, ...], str, bytes], int] = {}
    run: list[int] = []
    source: list[int | None] = []
    for i, crop in enumerate(crops):
        if is_blank(crop, blank_levels):
            source.append(None)
            continue
        key = (crop.shape, crop.dtype.str, crop.tobytes())
        known = first.setdefault(key, i)
        if known == i:
            run.append(i)
        source.append(known)
    return Plan(tuple(run), tuple(source))
