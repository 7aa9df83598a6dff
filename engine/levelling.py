"""Boxes of a page read turned, brought into the frame where its text runs left to right.

A page read turned (``engine.orientation``) keeps its lines' quads in the pixels of the image as it
came, so a page turned 90 degrees has lines that run down the image. Whatever orders lines by
geometry (rows of a cell, blocks of a page) first turns the quads by the multiple of 90 degrees
that most of them run in; each quad's first edge is the direction its text runs.
"""

from __future__ import annotations

import math

import numpy as np


def level(quads: list[np.ndarray]) -> list[np.ndarray]:
    """``quads`` turned by a multiple of 90 degrees so that most run left to right (each quad's
    first edge is the direction its text runs)."""
    if not quads:
        return quads
    turns = [round(math.degrees(math.atan2(q[1][1] - q[0][1], q[1][0] - q[0][0])) / 90) % 4 for q in quads]
    turn = max(set(turns), key=turns.count)
    if turn == 0:
        return quads
    # (x, y) -> the frame where that direction is +x (image coordinates, y down)
    maps = {1: lambda x, y: (y, -x), 2: lambda x, y: (-x, -y), 3: lambda x, y: (-y, x)}
    turned = maps[turn]
    return [np.stack(turned(q[:, 0], q[:, 1]), axis=1) for q in quads]
