"""What the engine returns: frozen, JSON-ready results."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine.layout import Block, blocks_text, group_rows, page_blocks
from engine.orientation import to_source, to_upright
from engine.tables import Cell, Table, table_blocks

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]


@dataclass(frozen=True)
class TextLine:
    """One recognised line: its text, its 4-point box in original image pixels, a confidence."""

    text: str
    points: Quad
    confidence: float
    source: str = "ocr"  # "ocr": recognised; "pdf": taken from the page's text layer

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "points": [[round(x, 1), round(y, 1)] for x, y in self.points],
            "confidence": round(self.confidence, 4),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextLine:
        """The line :meth:`to_dict` wrote (a page kept while its document is read)."""
        a, b, c, d = ((float(x), float(y)) for x, y in data["points"])
        return cls(str(data["text"]), (a, b, c, d), float(data["confidence"]), str(data.get("source", "ocr")))


@dataclass(frozen=True)
class PageResult:
    """The engine's answer for one image; ``lines`` are in reading order, block by block
    (``blocks``; None: found from the lines when asked, as for pages made by hand)."""

    lines: tuple[TextLine, ...]
    width: int
    height: int
    timings: dict[str, float] = field(default_factory=dict)
    engine_version: str = ""
    model_version: str = ""
    rotation: int = 0  # clockwise degrees the image was turned to read it upright (engine.orientation)
    blocks: tuple[Block, ...] | None = None  # engine.layout: indices into ``lines``, bbox in image pixels
    tables: tuple[Table, ...] = ()  # engine.tables: cells index ``lines``, bbox in image pixels

    def page_blocks(self) -> tuple[Block, ...]:
        """The page's blocks in reading order (``blocks``, or found from the upright lines)."""
        if self.blocks is not None:
            return self.blocks
        found = page_blocks(
            self._upright(), [line.text for line in self.lines], [line.source == "ocr" for line in self.lines]
        )
        return tuple(replace(block, bbox=self._to_image(block.bbox)) for block in found)

    def _to_image(self, bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A box on the upright page in the image's pixels."""
        x0, y0, x1, y1 = bbox
        corners = to_source(np.array([[x0, y0], [x1, y1]]), self.rotation, self.width, self.height)
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))

    @property
    def text(self) -> str:
        """Full text, block by block in reading order: a blank line between blocks, one output
        line per row of a block, lines of the same row joined by a space."""
        return blocks_text([line.text for line in self.lines], self.page_blocks())

    @property
    def row_text(self) -> str:
        """The text in the old row order: one output line per row across the whole upright page,
        boxes of the same row joined by a space (columns interleaved)."""
        rows = group_rows(self._upright())
        return "\n".join(" ".join(self.lines[i].text for i in row) for row in rows)

    def _upright(self) -> list[np.ndarray]:
        return [to_upright(np.asarray(line.points), self.rotation, self.width, self.height) for line in self.lines]

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": [line.to_dict() for line in self.lines],
            "text": self.text,
            "blocks": [block_dict(block) for block in self.page_blocks()],
            "tables": [table_dict(table) for table in self.tables],
            "width": self.width,
            "height": self.height,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "engine_version": self.engine_version,
            "model_version": self.model_version,
            "rotation": self.rotation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageResult:
        """The page :meth:`to_dict` wrote; its blocks and ``text`` are found again from the lines
        (and its tables' lines made one block each, as the pipeline makes them)."""
        page = cls(
            lines=tuple(TextLine.from_dict(line) for line in data["lines"]),
            width=int(data["width"]),
            height=int(data["height"]),
            timings={str(k): float(v) for k, v in data.get("timings", {}).items()},
            engine_version=str(data.get("engine_version", "")),
            model_version=str(data.get("model_version", "")),
            rotation=int(data.get("rotation", 0)),
            tables=tuple(table_from_dict(table) for table in data.get("tables", ())),
        )
        return replace(page, blocks=table_blocks(page.page_blocks(), page.tables)) if page.tables else page


def block_dict(block: Block, offset: int = 0, page: int | None = None) -> dict[str, Any]:
    """A block as JSON: its kind, its lines (indices into the result's ``lines``, ``offset`` added:
    a document's lines are numbered across its pages), its visual rows (the same indices, a row's
    lines left to right) and its bbox [x0, y0, x1, y1] in pixels."""
    out: dict[str, Any] = {
        "kind": block.kind,
        "lines": [offset + i for i in block.lines],
        "rows": [[offset + i for i in row] for row in block.rows],
        "bbox": [round(v, 1) for v in block.bbox],
    }
    if page is not None:
        out["page"] = page
    return out


def table_dict(table: Table, offset: int = 0, page: int | None = None) -> dict[str, Any]:
    """A table as JSON: its grid size, bbox [x0, y0, x1, y1] in pixels, whether it is ruled, and
    its cells, each with its grid position, spans, text and lines (indices into the result's
    ``lines``, ``offset`` added, as :func:`block_dict` does)."""
    out: dict[str, Any] = {
        "rows": table.rows,
        "cols": table.cols,
        "bbox": [round(v, 1) for v in table.bbox],
        "ruled": table.ruled,
        "cells": [
            {
                "row": cell.row,
                "col": cell.col,
                "rowspan": cell.rowspan,
                "colspan": cell.colspan,
                "text": cell.text,
                "lines": [offset + i for i in cell.lines],
            }
            for cell in table.cells
        ],
    }
    if page is not None:
        out["page"] = page
    return out


def table_from_dict(data: dict[str, Any]) -> Table:
    """The table :func:`table_dict` wrote (with no offset)."""
    x0, y0, x1, y1 = (float(v) for v in data["bbox"])
    cells = tuple(
        Cell(
            row=int(c["row"]),
            col=int(c["col"]),
            rowspan=int(c["rowspan"]),
            colspan=int(c["colspan"]),
            lines=tuple(int(i) for i in c["lines"]),
            text=str(c["text"]),
        )
        for c in data["cells"]
    )
    return Table(int(data["rows"]), int(data["cols"]), cells, (x0, y0, x1, y1), bool(data["ruled"]))


PAGE_BREAK = "\n\f\n"  # between pages in a document's text: a form feed on a line of its own


@dataclass(frozen=True)
class DocumentResult:
    """A document read whole: each page's result (None where that page failed, with its error in
    ``errors``), and how many pages the file has (``page_count``; more than were read when the
    document passed ``engine.max_pages``)."""

    pages: tuple[PageResult | None, ...]
    errors: dict[int, str]  # page number (1-based) -> why it failed
    page_count: int

    def to_dict(self) -> dict[str, Any]:
        """One result for the whole document: every line with its ``page`` (1-based), the pages'
        texts joined by :data:`PAGE_BREAK`, every page's ``blocks`` and ``tables`` (with their
        ``page``; their ``lines`` index the document's lines), the first page's size, the stages' times summed, and
        ``pages``: each page's number, size and turn, or its error."""
        read = [page for page in self.pages if page is not None]
        first = read[0] if read else PageResult(lines=(), width=0, height=0)
        timings: dict[str, float] = {}
        for done in read:
            for stage, seconds in done.timings.items():
                timings[stage] = round(timings.get(stage, 0.0) + seconds, 4)
        pages: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        blocks: list[dict[str, Any]] = []
        tables: list[dict[str, Any]] = []
        for number, page in enumerate(self.pages, 1):
            if page is None:
                pages.append({"page": number, "error": self.errors.get(number, "not read")})
                continue
            pages.append({"page": number, "width": page.width, "height": page.height, "rotation": page.rotation})
            blocks.extend(block_dict(block, len(lines), number) for block in page.page_blocks())
            tables.extend(table_dict(table, len(lines), number) for table in page.tables)
            lines.extend({**line.to_dict(), "page": number} for line in page.lines)
        return {
            "lines": lines,
            "blocks": blocks,
            "tables": tables,
            "text": PAGE_BREAK.join(page.text if page is not None else "" for page in self.pages),
            "width": first.width,
            "height": first.height,
            "timings": timings,
            "engine_version": first.engine_version,
            "model_version": first.model_version,
            "rotation": first.rotation,
            "page_count": self.page_count,
            "pages": pages,
        }
