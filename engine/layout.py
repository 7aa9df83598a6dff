"""Reading order: rows from top to bottom, left to right within a row."""

from __future__ import annotations

import numpy as np


def group_rows(quads: list[np.ndarray]) -> list[list[int]]:
    """Indices of ``quads`` grouped into rows, top to bottom, each row left to right.

    A box joins a row when its vertical centre lies within the span of the row's first box.
    """
    if not quads:
        return []
    tops = np.array([q[:, 1].min() for q in quads])
    bottoms = np.array([q[:, 1].max() for q in quads])
    centres = (tops + bottoms) / 2
    rows: list[list[int]] = []
    spans: list[tuple[float, float]] = []
    for i in np.argsort(centres, kind="stable"):
        i = int(i)
        if rows and spans[-1][0] <= centres[i] <= spans[-1][1]:
            rows[-1].append(i)
        else:
            rows.append([i])
            spans.append((float(tops[i]), float(bottoms[i])))
    lefts = [float(q[:, 0].min()) for q in quads]
    return [sorted(row, key=lambda j: lefts[j]) for row in rows]


def reading_order(quads: list[np.ndarray]) -> list[int]:
    """Indices of ``quads`` in reading order: rows top to bottom, left to right in a row."""
    return [i for row in group_rows(quads) for i in row]
