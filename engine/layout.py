"""Reading order: lines grouped into blocks (columns, panes, paragraphs, lists, tables, headings),
the blocks ordered as people read them; and lines the detector broke in pieces merged back.

Everything here is geometry on the boxes of the upright page (no image, no model):

- :func:`broken_groups` finds pieces of one visual line (same row, same height, a gap narrower than
  a word space allows for a column or a cell): the pipeline merges each group into one line.
- :func:`page_blocks` cuts the page recursively (an XY-cut): at gaps between rows wider than the
  region's widest gutter into sections (cards over a chart over a table), at the widest
  whitespace gutter that runs the whole height of a region into columns, read left to right, and
  at the whitespace between rows into bands, read top to bottom (the widest gaps first, so that a
  title over two columns is cut off before the columns are looked for). Where both are possible,
  a region whose bands are rows with text on both sides of the gutter is a table or form and is
  read row by row; otherwise it is columns (two prose columns whose lines happen to share
  baselines stay columns). The rows that come out
  are joined into paragraphs by line spacing, height and alignment, and each block is named: a
  ``heading`` (one or two rows of large text), a ``list`` (rows led by bullets or numbers), a
  ``table`` (rows of aligned cells) or a ``paragraph``.
- A page of vertical text (mostly tall boxes: Chinese columns read top to bottom, right to left)
  is laid out turned a quarter, so its columns are ordered right to left as rows.

:func:`group_rows` and :func:`reading_order` are the old order (rows across the whole page, left
to right in a row), kept for whoever wants it (``PageResult.row_text``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

INSET = 0.2  # the detector's boxes reach this share of their height past the ink on every side
# (DB unclip; measured on the bench's screens): their cores are laid out, so that gutters and
# gaps between rows are seen as wide as they are
# thresholds in units of the page's median line height
GUTTER = 1.0  # the narrowest whitespace between columns
BROKEN_GAP = 0.5  # the widest gap between two pieces of one broken line
PARAGRAPH_GAP = 1.5  # the widest gap between two rows of one paragraph (between cores, see INSET)
ALIGN = 0.3  # rows whose vertical centres differ by less than this are one row
SECTION = 3.0  # gaps between rows this wide (or as wide as the gutter) may end a section
HEADING = 1.3  # a heading's rows are at least this much taller than the page's
KINDS = ("paragraph", "table", "list", "heading")
_BULLET = re.compile(
    r"^\s*([\u2022\u00b7\u25cf\u25cb\u25aa\u25a0\u2023\u2043\u2013\u2014*+\-]|\(?\d{1,3}[.)\u3001]|[a-zA-Z][.)])(\s|$)"
)


@dataclass(frozen=True)
class Block:
    """Lines read together: ``lines`` (indices into the page's lines, in reading order), the
    visual ``rows`` they form (a row's lines left to right), the ``kind`` of block and its ``bbox``
    (x0, y0, x1, y1) in the frame the boxes were given in."""

    kind: str
    lines: tuple[int, ...]
    rows: tuple[tuple[int, ...], ...]
    bbox: tuple[float, float, float, float]


def group_rows(quads: list[np.ndarray]) -> list[list[int]]:
    """Indices of ``quads`` grouped into rows, top to bottom, each row left to right (the old order).

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
    """Indices of ``quads`` in the old row order: rows top to bottom, left to right in a row."""
    return [i for row in group_rows(quads) for i in row]


def boxes_of(quads: Sequence[np.ndarray]) -> np.ndarray:
    """``(n, 4)`` axis-aligned boxes x0, y0, x1, y1 of 4-point ``quads``."""
    if not quads:
        return np.zeros((0, 4))
    pts = np.stack([np.asarray(q, dtype=np.float64).reshape(-1, 2) for q in quads])
    return np.concatenate([pts.min(axis=1), pts.max(axis=1)], axis=1)


def is_vertical(boxes: np.ndarray, texts: Sequence[str]) -> bool:
    """Whether a page's text runs in vertical columns: most boxes of two or more characters are
    at least 1.5 times as tall as wide (the recogniser reads those turned)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    wordy = np.array([len(t.strip()) >= 2 for t in texts], dtype=bool)
    tall = wordy & (h >= 1.5 * w)
    return int(tall.sum()) >= 2 and tall.sum() > 0.5 * wordy.sum()


def _turned(boxes: np.ndarray) -> np.ndarray:
    """Boxes of a vertical page in a frame where its columns are rows: the rightmost column on
    top, each column's top at its left."""
    return np.stack([boxes[:, 1], -boxes[:, 2], boxes[:, 3], -boxes[:, 0]], axis=1)


def broken_groups(boxes: np.ndarray, texts: Sequence[str]) -> list[list[int]]:
    """Groups (left to right; vertical pages top to bottom) of boxes that are pieces of one visual
    line: on one row, of similar height, the gap between neighbours at most ``BROKEN_GAP`` line
    heights. Every index is in exactly one group; groups are in no particular order."""
    n = len(boxes)
    if n == 0:
        return []
    frame = _turned(boxes) if is_vertical(boxes, texts) else boxes
    x0, y0, x1, y1 = frame.T
    h = y1 - y0
    flat = (x1 - x0) >= h * 0.8  # pieces of a line are lines themselves, not single tall glyphs
    lo, hi = np.minimum.outer(h, h), np.maximum.outer(h, h)
    overlap = np.minimum.outer(y1, y1) - np.maximum.outer(y0, y0)
    gap = x0[None, :] - x1[:, None]  # [i, j]: from i's right edge to j's left edge
    near = (
        (overlap >= 0.6 * lo)
        & (hi <= 1.35 * lo)
        & (gap >= -0.3 * lo)
        & (gap <= BROKEN_GAP * lo)
        & (x0[:, None] < x0[None, :])
        & flat[:, None]
        & flat[None, :]
    )
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(near)):
        # only each box's nearest right neighbour, so that a row of cells stays cells
        if gap[i, j] == gap[i][near[i]].min():
            parent[find(int(j))] = find(int(i))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [sorted(g, key=lambda k: float(x0[k])) for g in groups.values()]


def join_texts(texts: Sequence[str]) -> str:
    """Pieces of one line joined: no space between two CJK characters, one space elsewhere."""
    out = texts[0].strip()
    for text in texts[1:]:
        text = text.strip()
        if out and text and _cjk(out[-1]) and _cjk(text[0]):
            out += text
        else:
            out = f"{out} {text}" if out else text
    return out


def _cjk(char: str) -> bool:
    code = ord(char)
    return 0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF or 0x3000 <= code <= 0x303F


def cores(boxes: np.ndarray, detected: Sequence[bool]) -> np.ndarray:
    """``boxes`` with the detector's margin taken off those ``detected`` (``INSET`` of the smaller
    side on every side; a PDF text layer's boxes are kept as they are)."""
    share = np.where(np.asarray(detected, dtype=bool), INSET, 0.0)
    d = share * np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return boxes + np.stack([d, d, -d, -d], axis=1)


def page_blocks(
    quads: Sequence[np.ndarray], texts: Sequence[str] | None = None, detected: Sequence[bool] | None = None
) -> list[Block]:
    """The blocks of a page in reading order; ``quads`` are its lines' 4-point boxes on the upright
    page (``texts`` their texts, for vertical pages and for naming lists; ``detected``: which boxes
    came from the detector and carry its margin, see :func:`cores`). Every index of ``quads`` is in
    exactly one block."""
    texts = list(texts) if texts is not None else [""] * len(quads)
    if not quads:
        return []
    boxes = boxes_of(quads)
    layout = cores(boxes, detected) if detected is not None else boxes
    frame = _turned(layout) if is_vertical(layout, texts) else layout
    heights = frame[:, 3] - frame[:, 1]
    unit = float(np.median(heights)) or 1.0
    cutter = _Cutter(frame, unit)
    raw = cutter.cut(np.arange(len(frame)))
    blocks = _paragraphs(raw, frame, unit)
    out = []
    for rows in blocks:
        flat = tuple(i for row in rows for i in row)
        sel = boxes[list(flat)]
        bbox = (float(sel[:, 0].min()), float(sel[:, 1].min()), float(sel[:, 2].max()), float(sel[:, 3].max()))
        out.append(Block(_kind(rows, frame, texts, unit), flat, tuple(tuple(r) for r in rows), bbox))
    return out


def blocks_text(texts: Sequence[str], blocks: Sequence[Block]) -> str:
    """A page's text from its blocks: a row's lines joined by a space, rows on lines of their own,
    a blank line between blocks."""
    return "\n\n".join("\n".join(" ".join(texts[i] for i in row) for row in block.rows) for block in blocks)


Rows = list[list[int]]


class _Cutter:
    """The recursive XY-cut over one page's boxes (x0, y0, x1, y1), in line-height ``unit``s."""

    def __init__(self, boxes: np.ndarray, unit: float) -> None:
        self.boxes = boxes
        self.unit = unit

    def cut(self, idx: np.ndarray) -> list[Rows]:
        """Blocks (each its rows) of the boxes ``idx``, in reading order.

        A gutter between columns and the gaps between rows both split a region; sections that are
        further apart than the widest gutter is wide are split first (a row of cards over a chart
        over a table), then a region is read row by row where its rows run across the gutter
        (:meth:`_rows`), column by column where they do not."""
        if len(idx) == 1:
            return [[[int(idx[0])]]]
        b = self.boxes[idx]
        columns, gutters = _split(b[:, 0], b[:, 2], GUTTER * self.unit)
        bands, spaces = _split(b[:, 1], b[:, 3], 0.0)
        if len(columns) > 1:
            sections = self._sections(idx, bands, spaces, max(gutters))
            if len(sections) > 1:
                return [block for part in sections for block in self.cut(idx[part])]
            if len(bands) > 1 and self._rows(idx, bands, columns):
                return [block for part in bands for block in self.cut(idx[part])]
            if len(bands) <= 1 and self._one_row(idx):
                return [[sorted(idx.tolist(), key=lambda i: float(self.boxes[i, 0]))]]
            # only at the widest gutter: what lies on either side is cut again on its own
            return [block for part in _join(columns, gutters, max(gutters)) for block in self.cut(idx[part])]
        if len(bands) > 1:
            # at the widest gaps first: a title over two columns is cut off before the columns
            # are looked for under it
            widest = _join(bands, spaces, max(spaces) - ALIGN * self.unit)
            return [block for part in widest for block in self.cut(idx[part])]
        return [[sorted(row, key=lambda i: float(self.boxes[i, 0])) for row in _rows_of(self.boxes, idx)]]

    def _sections(
        self, idx: np.ndarray, bands: list[np.ndarray], spaces: list[float], gutter: float
    ) -> list[np.ndarray]:
        """The region split at the gaps between rows that are as wide as its widest gutter or
        ``SECTION`` line heights, where the text below does not merely go on in one column of the
        text above (nor the text above in one column of the text below): a column that runs on
        past a shorter sidebar is not a new section."""
        b = self.boxes[idx]
        wide = min(gutter, SECTION * self.unit)
        out = [bands[0]]
        for part, gap in zip(bands[1:], spaces):
            if gap >= wide and not (_within(b[part], b[out[-1]], self.unit) or _within(b[out[-1]], b[part], self.unit)):
                out.append(part)
            else:
                out[-1] = np.concatenate([out[-1], part])
        return out

    def _one_row(self, idx: np.ndarray) -> bool:
        """Whether the boxes ``idx`` (no gap between rows) form one row: cells side by side."""
        b = self.boxes[idx]
        return bool(b[:, 3].min() - b[:, 1].max() >= -ALIGN * self.unit) or len(_rows_of(self.boxes, idx)) == 1

    def _rows(self, idx: np.ndarray, bands: list[np.ndarray], columns: list[np.ndarray]) -> bool:
        """Whether the region is read row by row (a table, a form, cells beside their labels) rather
        than column by column: most of its lines lie in bands of one row that have text on both
        sides of the widest gutter, unless both sides are prose columns."""
        b = self.boxes[idx]
        widest = max(range(len(columns) - 1), key=lambda k: b[columns[k + 1], 0].min() - b[columns[k], 2].max())
        edge = (b[columns[widest], 2].max() + b[columns[widest + 1], 0].min()) / 2
        in_rows = 0
        for band in bands:
            bb = b[band]
            single = len(_rows_of(self.boxes, idx[band])) == 1
            both = bool((bb[:, 2] < edge).any() and (bb[:, 0] > edge).any())
            if single and both:
                in_rows += len(band)
        if in_rows < 0.6 * len(idx):
            return False
        left = b[:, 2] < edge
        return not (_prose(b[left], self.unit) and _prose(b[~left], self.unit))


def _prose(b: np.ndarray, unit: float) -> bool:
    """Whether boxes look like columns of running text: each of their columns three or more
    lines, at least ten line heights wide, most lines filling most of it (headings, which may
    span the columns, left out)."""
    b = b[(b[:, 3] - b[:, 1]) < HEADING * unit]
    if len(b) < 3:
        return False
    for part in _split(b[:, 0], b[:, 2], GUTTER * unit)[0]:
        col = b[part]
        width = col[:, 2].max() - col[:, 0].min()
        if len(col) < 3 or width < 10 * unit or np.mean((col[:, 2] - col[:, 0]) >= 0.7 * width) < 0.6:
            return False
    return True


def _split(lo: np.ndarray, hi: np.ndarray, min_gap: float) -> tuple[list[np.ndarray], list[float]]:
    """Positions of intervals ``lo..hi`` grouped between gaps wider than ``min_gap`` in their
    projection, in order along the axis, and the widths of those gaps."""
    order = np.argsort(lo, kind="stable")
    parts: list[list[int]] = [[int(order[0])]]
    gaps: list[float] = []
    reach = hi[order[0]]
    for k in order[1:]:
        if lo[k] - reach > min_gap:
            parts.append([int(k)])
            gaps.append(float(lo[k] - reach))
        else:
            parts[-1].append(int(k))
        reach = max(reach, hi[k])
    return [np.array(p) for p in parts], gaps


def _within(inner: np.ndarray, outer: np.ndarray, unit: float) -> bool:
    """Whether boxes ``inner`` lie in the x-span of one column of boxes ``outer``, which has columns."""
    columns, _ = _split(outer[:, 0], outer[:, 2], GUTTER * unit)
    if len(columns) < 2:
        return False
    lo, hi = inner[:, 0].min(), inner[:, 2].max()
    for k, col in enumerate(columns):
        left = outer[columns[k - 1], 2].max() if k else -np.inf
        right = outer[columns[k + 1], 0].min() if k + 1 < len(columns) else np.inf
        if lo > left and hi < right and lo < outer[col, 2].max() and hi > outer[col, 0].min():
            return True
    return False


def _join(parts: list[np.ndarray], gaps: list[float], min_gap: float) -> list[np.ndarray]:
    """``parts`` rejoined across the gaps narrower than ``min_gap``."""
    out = [parts[0]]
    for part, gap in zip(parts[1:], gaps):
        if gap >= min_gap:
            out.append(part)
        else:
            out[-1] = np.concatenate([out[-1], part])
    return out


def _rows_of(boxes: np.ndarray, idx: np.ndarray) -> list[list[int]]:
    """Rows of overlapping boxes ``idx`` (no clean gap between them), top to bottom."""
    corners = [np.array([[boxes[i, 0], boxes[i, 1]], [boxes[i, 2], boxes[i, 3]]]) for i in idx.tolist()]
    return [[int(idx[j]) for j in row] for row in group_rows(corners)]


def _paragraphs(blocks: list[Rows], boxes: np.ndarray, unit: float) -> list[Rows]:
    """Consecutive blocks joined where they read as one: rows close together (``PARAGRAPH_GAP``,
    and no further apart than the paragraph's own rows), of similar height, the next starting
    near the left edge of the last (an indent allowed) and with the same number of cells."""
    out: list[Rows] = []
    for rows in blocks:
        if out and _continues(out[-1], rows, boxes, unit):
            out[-1] = out[-1] + rows
        else:
            out.append(list(rows))
    return out


def _continues(prev: Rows, rows: Rows, boxes: np.ndarray, unit: float) -> bool:
    a, b = boxes[prev[-1]], boxes[rows[0]]
    ha, hb = float((a[:, 3] - a[:, 1]).max()), float((b[:, 3] - b[:, 1]).max())
    small = min(ha, hb)
    gap = b[:, 1].min() - a[:, 3].max()
    limit = PARAGRAPH_GAP * small
    if len(prev) >= 2:  # a paragraph keeps its line spacing: a wider gap starts the next one
        before = boxes[prev[-2]]
        limit = min(limit, 1.3 * (a[:, 1].min() - before[:, 3].max()) + ALIGN * small)
    if gap < -ALIGN * small or gap > limit or max(ha, hb) > 1.25 * small:
        return False
    if len(prev[-1]) != len(rows[0]):
        return False
    if len(rows[0]) > 1:  # rows of cells: a table's rows start their cells at the same places
        return bool(np.all(np.abs(np.sort(a[:, 0]) - np.sort(b[:, 0])) <= 2 * small))
    ax0, ax1, bx0, bx1 = a[:, 0].min(), a[:, 2].max(), b[:, 0].min(), b[:, 2].max()
    return bool(-1.0 * small <= bx0 - ax0 <= 4 * small and min(ax1, bx1) > max(ax0, bx0))


def _kind(rows: Rows, boxes: np.ndarray, texts: Sequence[str], unit: float) -> str:
    flat = [i for row in rows for i in row]
    heights = boxes[flat, 3] - boxes[flat, 1]
    if len(rows) <= 2 and float(np.median(heights)) >= HEADING * unit:
        return "heading"
    if len(rows) >= 2 and sum(len(row) > 1 for row in rows) >= 2 / 3 * len(rows):
        return "table"
    if sum(bool(_BULLET.match(texts[row[0]])) for row in rows) >= max(1, len(rows) / 2):
        return "list"
    return "paragraph"
