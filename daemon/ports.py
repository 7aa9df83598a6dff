"""What the daemon needs from an OCR engine: the protocols its worker and batch OCR are written against.

``engine.pipeline.OcrEngine`` satisfies them; the daemon depends on this shape, not on the engine's
classes, so tests can pass a fake and a hot-swapping wrapper can stand in for the real one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from config.settings import EngineSettings


class Page(Protocol):
    """What ``engine.ocr`` returns (``engine.types.PageResult``)."""

    def to_dict(self) -> dict[str, Any]: ...


class Engine(Protocol):
    """The part of ``engine.pipeline.OcrEngine`` that batch OCR and the worker use.

    ``ocr`` reads one image and raises for a bad one; ``ocr_many`` reads several as one batch and
    returns, in order, a page or the exception of each (``engine.errors.EngineError``: the input
    is bad; anything else: an unexpected failure of that image); it never raises for one image.
    """

    def ocr(self, source: str | bytes, name: str | None = None) -> Page: ...

    def ocr_many(
        self, sources: Sequence[str | bytes], names: Sequence[str | None] | None = None
    ) -> Sequence[Page | Exception]: ...


EngineFactory = Callable[[EngineSettings], Engine]
