"""Ruled tables on a page image: the rule lines found with OpenCV and grouped into grids.

On the grey upright page (turned so that dark ink is on a light ground), pixels darker than their
neighbourhood are ink (an adaptive threshold, so that light grey spreadsheet rules count); a
morphological opening with a long horizontal kernel keeps the horizontal rules and drops the
text, a long vertical one the vertical rules. Rules that touch form one grid; its rules' positions
(those that run along a good part of it) are its row and column boundaries. Where an inner rule
is missing between two neighbouring cells of the grid, they are one merged cell: each boundary is
checked on the raw ink, so that a rule only one cell long still counts.

A long page is shrunk first (``MAX_SIDE``): the pass costs a few milliseconds a page.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAX_SIDE = 2000  # a page whose longer side is over this is shrunk to it for the rule search
BLOCK = 15  # the adaptive threshold's neighbourhood (pixels)
CONTRAST = 8  # ink is at least this much darker than its neighbourhood's mean (grey levels)
FAINT = 3  # ... for a rule segment beside one cell, where the grid's other rules vouch for it (JPEG)
THICK = 10  # a rule is at most this thick (pixels); thicker runs are filled areas
SPAN = 0.3  # a rule position counts when its rules cover this share of the grid's extent
PRESENT = 0.85  # a boundary is ruled where some pixel column (row) of ink covers this share of it


@dataclass(frozen=True)
class Grid:
    """A ruled grid in page pixels: its rule positions ``xs`` (left to right) and ``ys`` (top to
    bottom); ``vertical[r][c]``: whether the rule at ``xs[c]`` is drawn beside row ``r``;
    ``horizontal[r][c]``: whether the rule at ``ys[r]`` is drawn over column ``c``."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    vertical: tuple[tuple[bool, ...], ...]  # len(ys) - 1 rows of len(xs) flags
    horizontal: tuple[tuple[bool, ...], ...]  # len(ys) rows of len(xs) - 1 flags


def ink_mask(grey: np.ndarray, contrast: float = CONTRAST) -> np.ndarray:
    """uint8 mask (255: ink) of a grey page: pixels darker than their neighbourhood by
    ``contrast``; a dark page (dark mode) is inverted first."""
    if float(np.median(grey[::4, ::4])) < 128:
        grey = 255 - grey
    return cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, BLOCK, contrast)


def find_grids(grey: np.ndarray) -> list[Grid]:
    """The ruled grids of a grey uint8 page (at least two rows and two columns of cells), in its
    pixels, top to bottom."""
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"expected an H x W uint8 grey page, got {grey.shape} {grey.dtype}")
    h, w = grey.shape
    scale = min(1.0, MAX_SIDE / max(h, w, 1))
    if scale < 1.0:
        grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ink = ink_mask(grey)
    length = max(25, min(grey.shape) // 30)  # longer than text strokes, shorter than a cell's rules
    horizontal = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1)))
    vertical = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, length)))
    h_segs = _segments(horizontal, axis=0)
    v_segs = _segments(vertical, axis=1)
    if len(h_segs) < 3 or len(v_segs) < 3:
        return []
    joined = cv2.dilate(cv2.bitwise_or(horizontal, vertical), np.ones((5, 5), np.uint8))
    grids = []
    faint: np.ndarray | None = None
    for x, y, gw, gh in _rects(joined).tolist():
        if gw < 2 * length or gh < length:
            continue
        faint = ink_mask(grey, FAINT) if faint is None else faint
        grid = _grid(faint, h_segs, v_segs, (x, y, x + gw, y + gh))
        if grid is not None:
            grids.append(_scaled(grid, 1.0 / scale))
    return sorted(grids, key=lambda g: (g.ys[0], g.xs[0]))


def _segments(mask: np.ndarray, axis: int) -> np.ndarray:
    """``(n, 3)`` rules of an opened mask: position across the rule, start and end along it
    (``axis`` 0: horizontal rules, position y; 1: vertical rules, position x)."""
    stats = _rects(mask)
    x, y, w, h = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    if axis == 0:
        keep = h <= THICK
        out = np.stack([y + h / 2, x, x + w], axis=1)[keep]
    else:
        keep = w <= THICK
        out = np.stack([x + w / 2, y, y + h], axis=1)[keep]
    return out.astype(np.float64)


def _rects(mask: np.ndarray) -> np.ndarray:
    """``(n, 4)`` x, y, w, h of the outer contours of a mask (its parts; contours are an order
    of magnitude faster than connected components on these sparse masks)."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 4), dtype=np.int64)
    return np.array([cv2.boundingRect(c) for c in contours], dtype=np.int64)


def _positions(segs: np.ndarray, lo: float, hi: float, across: tuple[float, float]) -> list[float]:
    """Rule positions of the segments lying in ``across`` (their position) and along ``lo..hi``,
    nearby ones clustered, kept where they cover ``SPAN`` of ``lo..hi``."""
    inside = segs[(segs[:, 0] >= across[0]) & (segs[:, 0] <= across[1]) & (segs[:, 2] > lo) & (segs[:, 1] < hi)]
    if len(inside) == 0:
        return []
    inside = inside[np.argsort(inside[:, 0])]
    out: list[float] = []
    group = [inside[0]]
    for seg in inside[1:]:
        if seg[0] - group[-1][0] <= THICK / 2:
            group.append(seg)
            continue
        out += _kept(group, lo, hi)
        group = [seg]
    out += _kept(group, lo, hi)
    return out


def _kept(group: list[np.ndarray], lo: float, hi: float) -> list[float]:
    covered = sum(min(hi, s[2]) - max(lo, s[1]) for s in group)
    if covered < SPAN * (hi - lo):
        return []
    weights = [s[2] - s[1] for s in group]
    return [float(np.average([s[0] for s in group], weights=weights))]


def _grid(ink: np.ndarray, h_segs: np.ndarray, v_segs: np.ndarray, box: tuple[int, int, int, int]) -> Grid | None:
    x0, y0, x1, y1 = box
    ys = _positions(h_segs, x0, x1, (y0, y1))
    xs = _positions(v_segs, y0, y1, (x0, x1))
    if len(xs) < 3 or len(ys) < 3:
        return None
    vertical = tuple(tuple(_ruled(ink, x, ys[r], ys[r + 1], axis=1) for x in xs) for r in range(len(ys) - 1))
    horizontal = tuple(tuple(_ruled(ink, y, xs[c], xs[c + 1], axis=0) for c in range(len(xs) - 1)) for y in ys)
    return _trimmed(Grid(tuple(xs), tuple(ys), vertical, horizontal))


def _trimmed(grid: Grid) -> Grid | None:
    """``grid`` without its edge columns that no row rule crosses and its edge rows that no
    column rule crosses (a window's or a card's frame around a list: the sidebar beside a
    settings card is no column of a table); None when fewer than two rows or columns are left."""
    xs, ys = list(grid.xs), list(grid.ys)
    vertical = [list(row) for row in grid.vertical]
    horizontal = [list(row) for row in grid.horizontal]
    while len(xs) >= 3 and len(ys) >= 3:
        inner_h, inner_v = horizontal[1:-1], [row[1:-1] for row in vertical]
        if not any(row[0] for row in inner_h):
            xs, vertical, horizontal = xs[1:], [row[1:] for row in vertical], [row[1:] for row in horizontal]
        elif not any(row[-1] for row in inner_h):
            xs, vertical, horizontal = xs[:-1], [row[:-1] for row in vertical], [row[:-1] for row in horizontal]
        elif not any(inner_v[0]):
            ys, vertical, horizontal = ys[1:], vertical[1:], horizontal[1:]
        elif not any(inner_v[-1]):
            ys, vertical, horizontal = ys[:-1], vertical[:-1], horizontal[:-1]
        else:
            return Grid(
                tuple(xs),
                tuple(ys),
                tuple(tuple(row) for row in vertical),
                tuple(tuple(row) for row in horizontal),
            )
    return None


def _ruled(ink: np.ndarray, at: float, lo: float, hi: float, axis: int) -> bool:
    """Whether a rule is drawn at ``at`` from ``lo`` to ``hi`` (axis 0: a horizontal rule at
    y = ``at``; 1: a vertical one at x = ``at``): the pixels within a few of ``at`` hold
    ink along ``PRESENT`` of it (the ends, where crossing rules are, left out; a rule that
    wavers by a pixel, as in a JPEG, still counts)."""
    margin = 3
    a, b = round(lo) + margin, round(hi) - margin
    if b <= a:
        return True
    c0, c1 = max(0, round(at) - margin), round(at) + margin + 1
    band = ink[c0:c1, a:b] if axis == 0 else ink[a:b, c0:c1].T
    if band.size == 0:
        return False
    return bool((band > 0).any(axis=0).mean() >= PRESENT)


def _scaled(grid: Grid, factor: float) -> Grid:
    if factor == 1.0:
        return grid
    return Grid(tuple(x * factor for x in grid.xs), tuple(y * factor for y in grid.ys), grid.vertical, grid.horizontal)
