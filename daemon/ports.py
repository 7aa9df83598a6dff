"""What the daemon needs from an OCR engine: the protocols its worker and batch OCR are written against.

``engine.pipeline.OcrEngine`` satisfies them; the daemon depends on this shape, not on the engine's
classes, so tests can pass a fake and a hot-swapping wrapper can stand in for the real one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class DocumentReader(Protocol):
    """An engine that also reads documents (PDFs, multi-page TIFFs): ``open_document`` gives an
    ``engine.documents.Document`` (or None for a plain image, or raises ``ImageError``) and
    ``read_document`` yields ``(page number, page or exception)`` for each page it reads, but the
    page numbers in ``skip`` (the pages a resumed document already has)."""

    def open_document(self, source: str | bytes, name: str | None = None) -> Any: ...

    def read_document(
        self, document: Any, batch: int = 4, skip: Collection[int] = frozenset()
    ) -> Iterator[tuple[int, Page | Exception]]: ...


@runtime_checkable
class TunableEngine(Protocol):
    """An engine that reads with a channel's settings (``tuned``: thresholds, steps, orientation,
    model set changed; ``engine.pipeline.OcrEngine.tuned``) and says what it reads with
    (``read_settings``: what a result records)."""

    def tuned(self, changes: Mapping[str, Any]) -> Any: ...

    def read_settings(self) -> dict[str, Any]: ...


EngineFactory = Callable[[EngineSettings], Engine]
