"""The searchable PDF of one file as it was read: the file's own pages, the recognised text on top.

- A PDF is given back with its pages as they came, the text of its OCR'd pages laid over them
  (:func:`engine.searchable_pdf.overlay_pdf`), and a page the engine found turned shown upright
  (its ``/Rotate``); a born-digital PDF, whose every line came from its text layer, comes back
  byte for byte.
- A multi-page TIFF: one page per TIFF page, each page's image (decoded as for OCR, stored
  losslessly) under its text.
- An image: one page, the image as it came (a JPEG embedded as it is) under its text.

Pages are sized at :data:`engine.searchable_pdf.DEFAULT_DPI` (a screen's pixel); a page the engine
turned to read it is shown turned upright (``/Rotate``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2

from config.settings import EngineSettings
from engine.documents import document_kind, page_as_read
from engine.errors import ImageError
from engine.pdfium_lock import PDFIUM
from engine.searchable_pdf import PageText, PdfPage, image_pdf, overlay_pdf
from engine.types import TextLine


@dataclass(frozen=True)
class ReadPage:
    """One page as it was read: its lines (points in the page's pixels, ``width`` x ``height``)
    and the turn the engine gave it (clockwise degrees, ``PageResult.rotation``)."""

    lines: tuple[TextLine, ...]
    width: int
    height: int
    rotation: int = 0


def searchable_pdf(data: bytes, name: str, pages: Sequence[ReadPage | None], engine: EngineSettings) -> bytes:
    """The searchable PDF of the file in ``data`` read as ``pages`` (in order; None for a page that
    failed, which keeps its picture and has no text). ImageError names ``name`` and the cause when
    the file cannot be turned into pages."""
    kind = document_kind(data[:1024])
    with PDFIUM:
        return _searchable(data, name, kind, pages, engine)


def _searchable(
    data: bytes, name: str, kind: str | None, pages: Sequence[ReadPage | None], engine: EngineSettings
) -> bytes:
    try:
        if kind == "pdf":
            texts = {k: PageText(page.lines, page.width, page.height) for k, page in enumerate(pages) if page}
            turns = {k: page.rotation for k, page in enumerate(pages) if page and page.rotation}
            return _turned(overlay_pdf(data, texts), turns)
        if kind == "tiff" and len(pages) > 1:
            made = (_tiff_page(data, name, k, page, engine) for k, page in enumerate(pages, 1))
            return image_pdf([page for page in made if page is not None])
        (page,) = pages
        if page is None:
            raise ImageError(name, "was not read, so it has no searchable PDF")
        return image_pdf([PdfPage(data, page.width, page.height, page.lines, rotation=page.rotation)])
    except ValueError as exc:
        raise ImageError(name, f"cannot be written as a searchable PDF ({exc})") from None


def _turned(pdf: bytes, turns: dict[int, int]) -> bytes:
    """``pdf`` with each page in ``turns`` (index -> clockwise degrees) shown turned that much more
    (its ``/Rotate``): a page scanned sideways opens upright, and extracts in its reading order."""
    if not turns:
        return pdf
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        for index, degrees in turns.items():
            page = document[index]
            page.set_rotation((page.get_rotation() + degrees) % 360)
        out = io.BytesIO()
        document.save(out)
        return out.getvalue()
    finally:
        document.close()


def _tiff_page(data: bytes, name: str, number: int, page: ReadPage | None, engine: EngineSettings) -> PdfPage | None:
    """Page ``number`` of a TIFF with its text; a page that failed and cannot be decoded now is left out (None)."""
    try:
        image = page_as_read(data, name, number, engine)
    except ImageError:
        if page is None:
            return None
        raise
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise ImageError(name, f"page {number} could not be encoded")
    height, width = image.shape[:2]
    if page is None:
        return PdfPage(png.tobytes(), width, height)
    return PdfPage(png.tobytes(), width, height, page.lines, rotation=page.rotation)


def read_pages(
    lines: Sequence[dict[str, Any]], pages: Sequence[dict[str, Any]], size: tuple[int, int], rotation: int = 0
) -> list[ReadPage | None]:
    """A result's pages as :class:`ReadPage` s: ``lines`` (``TextLine.to_dict`` rows) with their
    ``page``, and a document's ``pages`` (each page's size and turn, or its error); an image (no
    ``pages``) is one page of ``size`` turned by ``rotation``."""
    by_page: dict[int, list[TextLine]] = {}
    for line in lines:
        by_page.setdefault(int(line.get("page", 1)), []).append(TextLine.from_dict(line))
    if not pages:
        return [ReadPage(tuple(by_page.get(1, [])), size[0], size[1], rotation)]
    read: list[ReadPage | None] = []
    for number, page in enumerate(pages, 1):
        if "error" in page or not page.get("width"):
            read.append(None)
        else:
            turn = int(page.get("rotation", 0))
            read.append(ReadPage(tuple(by_page.get(number, [])), int(page["width"]), int(page["height"]), turn))
    return read
