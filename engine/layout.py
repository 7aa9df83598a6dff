"""Reading order: rows from top to bottom, left to right within a row."""
from __future__ import annotations

import numpy as np


def reading_order(quads: list[np.ndarray]) -> list[int]:
    """Indices of ``quads`` in reading order.

    Boxes join a row when their vertical centre lies within the row's current span;
    rows are read top to bottom, boxes in a row left to right.
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
    return [i for row in rows for i in sorted(row, key=lambda j: lefts[j])]
