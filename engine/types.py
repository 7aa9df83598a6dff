"""What the engine returns: frozen, JSON-ready results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.layout import group_rows
from engine.orientation import to_upright

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
    """The engine's answer for one image; ``lines`` are in reading order."""

    lines: tuple[TextLine, ...]
    width: int
    height: int
    timings: dict[str, float] = field(default_factory=dict)
    engine_version: str = ""
    model_version: str = ""
    rotation: int = 0  # clockwise degrees the image was turned to read it upright (engine.orientation)

    @property
    def text(self) -> str:
        """Full text: one output line per row (rows of the upright page), boxes of the same row
        joined by a space."""

        rows = group_rows(
            [to_upright(np.asarray(line.points), self.rotation, self.width, self.height) for line in self.lines]
        )
        return "\n".join(" ".join(self.lines[i].text for i in row) for row in rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": [line.to_dict() for line in self.lines],
            "text": self.text,
            "width": self.width,
            "height": self.height,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "engine_version": self.engine_version,
            "model_version": self.model_version,
            "rotation": self.rotation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageResult:
        """The page :meth:`to_dict` wrote; its ``text`` is computed again from the lines."""
        return cls(
            lines=tuple(TextLine.from_dict(line) for line in data["lines"]),
            width=int(data["width"]),
            height=int(data["height"]),
            timings={str(k): float(v) for k, v in data.get("timings", {}).items()},
            engine_version=str(data.get("engine_version", "")),
            model_version=str(data.get("model_version", "")),
            rotation=int(data.get("rotation", 0)),
        )


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
        texts joined by :data:`PAGE_BREAK`, the first page's size, the stages' times summed, and
        ``pages``: each page's number, size and turn, or its error."""
        read = [page for page in self.pages if page is not None]
        first = read[0] if read else PageResult(lines=(), width=0, height=0)
        timings: dict[str, float] = {}
        for done in read:
            for stage, seconds in done.timings.items():
                timings[stage] = round(timings.get(stage, 0.0) + seconds, 4)
        pages: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        for number, page in enumerate(self.pages, 1):
            if page is None:
                pages.append({"page": number, "error": self.errors.get(number, "not read")})
                continue
            pages.append({"page": number, "width": page.width, "height": page.height, "rotation": page.rotation})
            lines.extend({**line.to_dict(), "page": number} for line in page.lines)
        return {
            "lines": lines,
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
