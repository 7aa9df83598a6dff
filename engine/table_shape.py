"""A stored table's grid, checked and bounded before anything is built from it.

A result's tables come back from the store as JSON (``engine.types``' shape: a table's ``rows``,
``cols`` and ``cells``, each cell's ``row``, ``col``, ``rowspan`` and ``colspan``): data from
outside, so the files made from them (``engine.table_files``, ``engine.markdown``) lay them out
through :func:`shape_of`, which cuts the grid to where its cells reach, leaves out cells outside
it, refuses positions that are not whole numbers and grids over :data:`MAX_CELLS` positions, and
names the table in its errors. :func:`merges` picks the merged cells that do not overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import TableError

# The most positions (rows x cols) a table's grid may have: it is built in memory, a list of texts
# or a sheet's cells, and a real table has hundreds.
MAX_CELLS = 1_000_000


@dataclass(frozen=True)
class Placed:
    """A cell inside a table's grid: its top-left ``row`` and ``col`` and its spans, cut at the
    grid's edge."""

    row: int
    col: int
    rowspan: int
    colspan: int
    cell: dict[str, Any]


@dataclass(frozen=True)
class Shape:
    """A stored table checked (:func:`shape_of`): ``rows`` x ``cols`` as far as its cells reach, and
    the cells inside it."""

    rows: int
    cols: int
    cells: tuple[Placed, ...]


def shape_of(table: dict[str, Any], name: str = "table") -> Shape:
    """``table`` (stored JSON: data from outside) checked and bounded: its ``rows`` and ``cols``
    cut to where its cells reach, cells that start outside them left out, spans cut at the edge.
    A missing count is 0, a missing span 1, a cell with no position is left out.

    Raises :class:`TableError` (a ``ValueError``) naming the table (``name``) for a count, position
    or span that is not a whole number, a negative count, or a grid over :data:`MAX_CELLS`."""
    declared_rows, declared_cols = _whole(table, "rows", 0, name), _whole(table, "cols", 0, name)
    if declared_rows < 0 or declared_cols < 0:
        raise TableError(name, f"rows and cols must be 0 or more, got {declared_rows} x {declared_cols}")
    cells = table.get("cells") or []
    if not isinstance(cells, list):
        raise TableError(name, f"its cells must be a list, got {type(cells).__name__}")
    placed: list[Placed] = []
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict):
            raise TableError(name, f"cell {number} must be an object, got {type(cell).__name__}")
        whose = f"cell {number}'s "
        row, col = _whole(cell, "row", -1, name, whose), _whole(cell, "col", -1, name, whose)
        rowspan, colspan = _whole(cell, "rowspan", 1, name, whose), _whole(cell, "colspan", 1, name, whose)
        if 0 <= row < declared_rows and 0 <= col < declared_cols:
            rowspan = min(max(1, rowspan), declared_rows - row)
            colspan = min(max(1, colspan), declared_cols - col)
            placed.append(Placed(row, col, rowspan, colspan, cell))
    rows = max((p.row + p.rowspan for p in placed), default=0)
    cols = max((p.col + p.colspan for p in placed), default=0)
    if rows * cols > MAX_CELLS:
        raise TableError(name, f"its grid of {rows:,} x {cols:,} positions is over the {MAX_CELLS:,} a table may have")
    return Shape(rows, cols, tuple(placed))


def _whole(obj: dict[str, Any], key: str, default: int, name: str, whose: str = "") -> int:
    """``obj[key]`` (``default`` when absent), which must be a whole number: TableError naming the
    table (``name``) and what holds it (``whose``: "cell 3's ") otherwise."""
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TableError(name, f"{whose}{key} must be a whole number, got {value!r:.40}")
    return value


def merges(shape: Shape) -> list[Placed]:
    """The merged cells of ``shape`` (those spanning more than one position) that cover no position
    an earlier one covers, in the table's order: a spreadsheet refuses overlapping merges."""
    covered = np.zeros((shape.rows, shape.cols), dtype=bool)
    out: list[Placed] = []
    for placed in shape.cells:
        if placed.rowspan == 1 and placed.colspan == 1:
            continue
        area = covered[placed.row : placed.row + placed.rowspan, placed.col : placed.col + placed.colspan]
        if not area.any():
            area[...] = True
            out.append(placed)
    return out
