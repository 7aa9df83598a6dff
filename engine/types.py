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
