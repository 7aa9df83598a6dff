"""Tables on a page: the cell grid, with row and column spans, and each cell's text.

Two kinds are found, both on the upright page:

- ruled tables: the grids of rule lines :mod:`engine.table_lines` finds on the page image; a cell
  whose inner rule is missing spans its neighbours; each text line goes to the cell holding the
  centre of its box;
- unruled tables: a run of blocks the layout read row by row (:mod:`engine.layout`: ``table``
  blocks, and rows of several lines it cut apart where they lie far apart or under a header)
  whose lines share whitespace gutters (the columns); a line that runs across a gutter spans
  those columns. Such a table needs three rows and two columns filled in most rows; where there
  are only two, most of the right one must be numbers (a receipt's items and prices), so that a
  form of labels and values, or code beside its line numbers, is no table.

A table has at least two rows and two columns, text in three cells or more. The blocks that hold
exactly a table's lines are made one ``table`` block (:func:`table_blocks`). Everything here is
geometry on the boxes and the page image (no model).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from engine.layout import Block, boxes_of, cores, group_rows, join_texts
from engine.orientation import to_source, to_upright, upright
from engine.table_lines import Grid, find_grids

if TYPE_CHECKING:  # engine.types holds Table: only its annotations are wanted here
    from engine.types import TextLine

MIN_ROWS = 3  # an unruled table has at least this many rows (two aligned rows are a toolbar as often)
ROW_GAP = 3.0  # rows of one unruled table are at most this many line heights apart
HEADER_GAP = 3.0  # a header row is at most this many line heights above the table's rows
MIN_GUTTER = 0.8  # the narrowest gutter between unruled columns, in line heights
SPANNING = 0.2  # gutters may be crossed by lines of at most this share of a block's rows
NUMERIC = 0.6  # share of a two-column block's right cells that must be numbers
DENSE = 0.5  # a column with text in at least this share of the rows is one of the table's own
MIN_FILLED = 3  # a table has text in at least this many cells
MERGED = 0.5  # at most this share of a ruled grid's positions lie in merged cells (else: a frame)
_NUMBER = re.compile(r"^[\s$€£¥￥%+\-−–.,:/()#xX\d]*\d[\s$€£¥￥%+\-−–.,:/()#xX\dA-Za-z]{0,4}$")


@dataclass(frozen=True)
class Cell:
    """One cell: its top-left grid position, the rows and columns it spans, the page's lines in
    it (indices into the page's lines, in reading order) and their text (a row's lines joined by
    a space, rows by a newline)."""

    row: int
    col: int
    rowspan: int
    colspan: int
    lines: tuple[int, ...]
    text: str


@dataclass(frozen=True)
class Table:
    """A table: its grid of ``rows`` x ``cols``, its cells (row by row, left to right; every grid
    position is in exactly one cell), its ``bbox`` (x0, y0, x1, y1) and whether it is ``ruled``."""

    rows: int
    cols: int
    cells: tuple[Cell, ...]
    bbox: tuple[float, float, float, float]
    ruled: bool


def page_tables(
    lines: Sequence[TextLine],
    blocks: Sequence[Block],
    width: int,
    height: int,
    rotation: int = 0,
    image: np.ndarray | None = None,
) -> tuple[tuple[Table, ...], tuple[Block, ...]]:
    """The tables of a read page and its blocks with each table's lines one ``table`` block
    (:func:`table_blocks`): ``lines`` and ``blocks`` are the page's in reading order
    (``engine.reading.arrange``), boxes in the pixels of the ``width`` x ``height`` image that was
    turned ``rotation`` degrees clockwise to read it; ``image`` is that BGR image as it came (None:
    no ruled tables are looked for, as on a PDF text-layer page). Cells index ``lines``; bboxes
    are in the image's pixels."""
    if not lines:
        return (), tuple(blocks)
    quads = [to_upright(np.asarray(line.points, dtype=np.float64), rotation, width, height) for line in lines]
    boxes = cores(boxes_of(quads), [line.source == "ocr" for line in lines])
    grids: list[Grid] = []
    if image is not None:
        grids = find_grids(cv2.cvtColor(upright(image, rotation), cv2.COLOR_BGR2GRAY))
    found = find_tables(boxes, [line.text for line in lines], blocks, grids)
    tables = tuple(replace(t, bbox=_to_image(t.bbox, rotation, width, height)) for t in found)
    return tables, table_blocks(blocks, tables)


def table_blocks(blocks: Sequence[Block], tables: Sequence[Table]) -> tuple[Block, ...]:
    """``blocks`` with the consecutive blocks that hold exactly a table's lines made one block of
    kind ``table`` (the layout may cut a table's header or ruled rows apart). The blocks' lines,
    and so the reading order, stay as they were; a table whose lines are not such a run of
    blocks leaves the blocks alone."""
    out = list(blocks)
    for table in tables:
        want = {i for cell in table.cells for i in cell.lines}
        start = next((k for k, block in enumerate(out) if want & set(block.lines)), None)
        if start is None:
            continue
        end, have = start, set(out[start].lines)
        while have < want and end + 1 < len(out):
            end += 1
            have |= set(out[end].lines)
        if have != want:
            continue
        run = out[start : end + 1]
        bbox = (
            min(b.bbox[0] for b in run),
            min(b.bbox[1] for b in run),
            max(b.bbox[2] for b in run),
            max(b.bbox[3] for b in run),
        )
        lines = tuple(i for b in run for i in b.lines)
        out[start : end + 1] = [Block("table", lines, tuple(r for b in run for r in b.rows), bbox)]
    return tuple(out)


def _to_image(
    bbox: tuple[float, float, float, float], rotation: int, width: int, height: int
) -> tuple[float, float, float, float]:
    corners = to_source(np.array([bbox[:2], bbox[2:]], dtype=np.float64), rotation, width, height)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def find_tables(
    boxes: np.ndarray,
    texts: Sequence[str],
    blocks: Sequence[Block],
    grids: Sequence[Grid] = (),
    unit: float | None = None,
) -> list[Table]:
    """The tables of a page: ``boxes`` ``(n, 4)`` are its lines' boxes on the upright page (their
    cores, see ``engine.layout.cores``), ``texts`` their texts, ``blocks`` its blocks in reading
    order, ``grids`` its ruled grids (in the same pixels); ``unit``: the page's line height
    (default: the median box height). Tables are in reading order, their bboxes upright."""
    if len(boxes) == 0:
        return []
    unit = unit or float(np.median(boxes[:, 3] - boxes[:, 1])) or 1.0
    tables: list[tuple[int, Table]] = []  # (first line, table): ordered by where they are read
    taken = np.zeros(len(boxes), dtype=bool)
    for grid in grids:
        table = ruled_table(grid, boxes, texts, taken)
        if table is not None:
            tables.append((min(i for c in table.cells for i in c.lines), table))
            taken[[i for c in table.cells for i in c.lines]] = True
    free = [b for b in blocks if not taken[list(b.lines)].any()]
    for ks in _row_runs(free, boxes, unit):
        run = [free[k] for k in ks]
        after = free[ks[-1] + 1] if ks[-1] + 1 < len(free) else None
        whole = Block(
            "table", tuple(i for b in run for i in b.lines), tuple(r for b in run for r in b.rows), run[0].bbox
        )
        found = [unruled_table(whole, boxes, texts, unit, after=after)]
        if found[0] is None:  # rows that do not share their gutters: the layout's tables alone
            found = [unruled_table(b, boxes, texts, unit, run[k - 1] if k else None) for k, b in enumerate(run)]
        for table in found:
            if table is not None and not taken[[i for c in table.cells for i in c.lines]].any():
                tables.append((min(i for c in table.cells for i in c.lines), table))
                taken[[i for c in table.cells for i in c.lines]] = True
    return [t for _, t in sorted(tables, key=lambda pair: pair[0])]


def _row_runs(blocks: Sequence[Block], boxes: np.ndarray, unit: float) -> list[list[int]]:
    """Runs of consecutive blocks that may be one table's rows: ``table`` blocks and single rows
    of two or more lines (the layout cuts a table's rows apart where they are far apart, and its
    header off at a wider gap), each at most ``ROW_GAP`` line heights below the one before, as
    indices into ``blocks``; runs of fewer than ``MIN_ROWS`` rows are left out."""
    runs: list[list[int]] = []
    bottom = -np.inf
    for k, block in enumerate(blocks):
        rowlike = block.kind == "table" or (block.kind != "heading" and len(block.rows) == 1 and len(block.rows[0]) > 1)
        if not rowlike:
            bottom = -np.inf
            continue
        b = boxes[list(block.lines)]
        if runs and b[:, 1].min() - bottom <= ROW_GAP * unit and b[:, 1].min() > bottom - unit:
            runs[-1].append(k)
        else:
            runs.append([k])
        bottom = float(b[:, 3].max())
    return [run for run in runs if sum(len(blocks[k].rows) for k in run) >= MIN_ROWS]


def ruled_table(grid: Grid, boxes: np.ndarray, texts: Sequence[str], taken: np.ndarray) -> Table | None:
    """The table of a ruled ``grid``: its cells (merged where an inner rule is missing) and the
    lines (not yet ``taken``) whose box centres lie in them; None when fewer than
    ``MIN_FILLED`` cells, two rows or two columns have text."""
    rows, cols = len(grid.ys) - 1, len(grid.xs) - 1
    parent = list(range(rows * cols))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols and not grid.vertical[r][c + 1]:
                parent[find(r * cols + c + 1)] = find(r * cols + c)
            if r + 1 < rows and not grid.horizontal[r + 1][c]:
                parent[find((r + 1) * cols + c)] = find(r * cols + c)
    groups: dict[int, list[int]] = {}
    for k in range(rows * cols):
        groups.setdefault(find(k), []).append(k)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    col_of = np.searchsorted(np.asarray(grid.xs), cx) - 1
    row_of = np.searchsorted(np.asarray(grid.ys), cy) - 1
    inside = (~taken) & (col_of >= 0) & (col_of < cols) & (row_of >= 0) & (row_of < rows)
    owner = {k: min(g) for g in groups.values() for k in g}
    members: dict[int, list[int]] = {}
    for i in np.nonzero(inside)[0]:
        members.setdefault(owner[int(row_of[i]) * cols + int(col_of[i])], []).append(int(i))
    cells = []
    for group in sorted(groups.values(), key=min):
        rs = [k // cols for k in group]
        cs = [k % cols for k in group]
        lines = members.get(min(group), [])
        cells.append(_cell(min(rs), min(cs), max(rs) - min(rs) + 1, max(cs) - min(cs) + 1, lines, boxes, texts))
    filled = [c for c in cells if c.lines]
    merged = sum(c.rowspan * c.colspan for c in cells if c.rowspan * c.colspan > 1)
    if (
        merged > MERGED * rows * cols
        or len(filled) < MIN_FILLED
        or len({c.row for c in filled}) < 2
        or len({c.col for c in filled}) < 2
    ):
        return None
    bbox = (grid.xs[0], grid.ys[0], grid.xs[-1], grid.ys[-1])
    return Table(rows, cols, tuple(sorted(cells, key=lambda c: (c.row, c.col))), bbox, ruled=True)


def unruled_table(
    block: Block,
    boxes: np.ndarray,
    texts: Sequence[str],
    unit: float,
    before: Block | None = None,
    after: Block | None = None,
) -> Table | None:
    """The table of a ``table`` block: columns between the whitespace gutters its rows share,
    one table row per row of the block; the block ``before`` it is its header where that is a
    row or two of cells just above it, each in one of its columns (the layout cuts a header off
    at the wider gap under it). None where it has fewer than two rows or columns, or is a
    two-column form (see the module's docstring)."""
    rows = [list(row) for row in block.rows]
    if len(rows) < MIN_ROWS:
        return None
    b = boxes[list(block.lines)]
    lo, hi = float(b[:, 0].min()), float(b[:, 2].max())
    edges = np.arange(np.floor(lo), np.ceil(hi) + 1)
    cover = np.zeros(len(edges), dtype=np.int64)
    for row in rows:
        hit = np.zeros(len(edges), dtype=bool)
        for i in row:
            hit |= (edges >= boxes[i, 0]) & (edges <= boxes[i, 2])
        cover += hit
    free = cover <= int(SPANNING * len(rows))
    gutters = _runs(free, edges, MIN_GUTTER * unit)
    if not gutters:
        return None
    bounds = [lo, *[(a + b) / 2 for a, b in gutters], hi]
    cols = len(bounds) - 1
    if before is not None and _header(before, boxes, bounds, unit, float(b[:, 1].min())):
        rows = [list(row) for row in before.rows] + rows
        lo, hi = min(lo, float(boxes[list(before.lines), 0].min())), max(hi, float(boxes[list(before.lines), 2].max()))
        bounds[0], bounds[-1] = lo, hi
        b = boxes[[i for row in rows for i in row]]
    if after is not None and _below(after, rows, boxes) <= 0 and _fits(after, boxes, bounds, unit, 0.0):
        rows = rows + [list(row) for row in after.rows]  # a last row of one cell, cut off as a paragraph
        b = boxes[[i for row in rows for i in row]]
    placed: list[tuple[int, int, int, list[int]]] = []  # row, col, colspan, lines
    for r, row in enumerate(rows):
        for i in row:
            first = int(np.searchsorted(bounds, boxes[i, 0], side="right")) - 1
            last = int(np.searchsorted(bounds, boxes[i, 2], side="left")) - 1
            first, last = min(max(first, 0), cols - 1), min(max(last, first), cols - 1)
            if placed and placed[-1][0] == r and placed[-1][1] + placed[-1][2] - 1 >= first:
                # in a cell already begun on this row (a cell of two pieces): it widens that cell
                prev = placed[-1]
                placed[-1] = (r, prev[1], max(prev[1] + prev[2] - 1, last) - prev[1] + 1, prev[3] + [i])
            else:
                placed.append((r, first, last - first + 1, [i]))
    dense = [c for c in range(cols) if sum(p[1] == c for p in placed) >= DENSE * len(rows)]
    if len(dense) < 2 or (len(dense) == 2 and not _numeric(placed, texts, dense[1])):
        return None
    if len(placed) < MIN_FILLED or sum(1 for r in range(len(rows)) if sum(p[0] == r for p in placed) > 1) < 2:
        return None
    cells = []
    for r in range(len(rows)):
        mine = {p[1]: p for p in placed if p[0] == r}
        c = 0
        while c < cols:
            if c in mine:
                _, col, span, lines = mine[c]
                cells.append(_cell(r, col, 1, span, lines, boxes, texts))
                c += span
            else:
                cells.append(Cell(r, c, 1, 1, (), ""))
                c += 1
    bbox = (lo, float(b[:, 1].min()), hi, float(b[:, 3].max()))
    return Table(len(rows), cols, tuple(cells), bbox, ruled=False)


def _header(block: Block, boxes: np.ndarray, bounds: list[float], unit: float, top: float) -> bool:
    """Whether ``block`` is a header over a table whose columns lie between ``bounds`` and whose
    first row starts at ``top``: one or two rows of two or more cells, at most ``HEADER_GAP``
    line heights above, every line inside one column."""
    b = boxes[list(block.lines)]
    if any(len(row) < 2 for row in block.rows):
        return False
    return _fits(block, boxes, bounds, unit, top - float(b[:, 3].max()))


def _below(after: Block, rows: list[list[int]], boxes: np.ndarray) -> float:
    """How far ``after`` lies below the last of ``rows``, past the rows' own spacing (a note a
    paragraph's gap under a table is no last row of it): its gap less 1.5 times their median
    gap (at most 0 for a row of the table)."""
    tops = [float(boxes[row, 1].min()) for row in rows]
    bottoms = [float(boxes[row, 3].max()) for row in rows]
    spacing = float(np.median([t - b for t, b in zip(tops[1:], bottoms[:-1])]))
    return float(boxes[list(after.lines), 1].min()) - bottoms[-1] - 1.5 * max(spacing, 0.0)


def _fits(block: Block, boxes: np.ndarray, bounds: list[float], unit: float, gap: float) -> bool:
    """Whether ``block``, ``gap`` away from a table whose columns lie between ``bounds``, is a
    row or two of it: at most ``HEADER_GAP`` line heights away, every line inside one column."""
    b = boxes[list(block.lines)]
    if len(block.rows) > 2 or gap > HEADER_GAP * unit or gap < -0.5 * unit:
        return False
    if b[:, 0].min() < bounds[0] - unit or b[:, 2].max() > bounds[-1] + unit:
        return False
    inner = np.asarray(bounds[1:-1])
    return not bool(((b[:, 0:1] < inner[None, :]) & (b[:, 2:3] > inner[None, :])).any())


def _runs(free: np.ndarray, edges: np.ndarray, min_width: float) -> list[tuple[float, float]]:
    """The inner runs of ``free`` positions at least ``min_width`` wide, as (start, end)."""
    out = []
    k, n = 0, len(free)
    while k < n:
        if not free[k]:
            k += 1
            continue
        start = k
        while k < n and free[k]:
            k += 1
        if start > 0 and k < n and edges[k - 1] - edges[start] >= min_width:
            out.append((float(edges[start]), float(edges[k - 1])))
    return out


def _numeric(placed: list[tuple[int, int, int, list[int]]], texts: Sequence[str], col: int) -> bool:
    """Whether ``NUMERIC`` of the cells of column ``col`` are numbers (and there are two)."""
    right = [p for p in placed if p[1] == col and p[2] == 1]
    numbers = sum(all(_NUMBER.match(texts[i].strip()) for i in p[3]) for p in right)
    return len(right) >= 2 and numbers >= NUMERIC * len(right)


def _cell(
    row: int, col: int, rowspan: int, colspan: int, lines: list[int], boxes: np.ndarray, texts: Sequence[str]
) -> Cell:
    """A cell with its lines in reading order: visual rows top to bottom, left to right in a row."""
    if not lines:
        return Cell(row, col, rowspan, colspan, (), "")
    quads = [np.array([[boxes[i, 0], boxes[i, 1]], [boxes[i, 2], boxes[i, 3]]]) for i in lines]
    visual = [[lines[j] for j in r] for r in group_rows(quads)]
    text = "\n".join(join_texts([texts[i] for i in r]) for r in visual)
    return Cell(row, col, rowspan, colspan, tuple(i for r in visual for i in r), text)
