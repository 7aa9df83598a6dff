"""Documents: the pages of a PDF or a multi-page TIFF, each an image to read or a text layer to take.

A file is a document by its content, not its name: ``%PDF-`` opens it with PDFium (pypdfium2, the
Apache-2.0/BSD binary wheel of the renderer Chrome uses: no system packages, and a text-layer API),
a TIFF with more than one page gives every page, anything else is one image as before.

PDF pages are rendered for OCR at ``engine.pdf_dpi`` (200), a scan at its own resolution when
that is higher (rendering a 300 DPI scan at 200 DPI cost 2 points on the real set), and less where
either would pass ``engine.det_max_pixels`` (one detection pass, no tiles), so an absurdly large
page costs what a large image costs. A page is taken from its text layer instead (exact, and no OCR) when it carries
text and no image covers half of it or more: a born-digital page. A scan, even one with a typed
header or an earlier OCR layer, is OCR'd. A document of more than ``engine.max_pages`` pages is read
up to that page, and says so (:attr:`Document.page_count` keeps the whole count).

Each failure names the file and its cause (:class:`~engine.errors.ImageError`): a password or other
encryption, a truncated or corrupt file, a page that cannot be rendered (that page alone fails).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from config.settings import EngineSettings
from engine.errors import ImageError
from engine.pdfium_lock import PDFIUM
from engine.types import TextLine

PDF_MAGIC = b"%PDF-"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*")
POINTS_PER_INCH = 72.0
MIN_IMAGE_SHARE = 0.5  # an image covering this share of a page or more: the page is a scan


@dataclass(frozen=True)
class DocumentPage:
    """Page ``number`` (1-based): an ``image`` to read, or the ``lines`` of its text layer (in its
    rendered pixels, ``width`` x ``height``), or the ``error`` that page alone failed with."""

    number: int
    width: int = 0
    height: int = 0
    image: np.ndarray | None = None
    lines: tuple[TextLine, ...] | None = None
    error: ImageError | None = None


@dataclass(frozen=True)
class Document:
    """What :func:`open_document` found: how many pages the file has, how many will be read (at
    most ``max_pages``), and :meth:`pages`, which renders or decodes them one at a time (a 500-page
    PDF is never held in memory at once)."""

    kind: str  # "pdf" | "tiff"
    page_count: int
    read_count: int
    _pages: Callable[[Collection[int]], Iterator[DocumentPage]]

    def pages(self, skip: Collection[int] = frozenset()) -> Iterator[DocumentPage]:
        """The pages to read, in order, but those numbered in ``skip`` (never rendered: a resumed
        document costs only its pages not yet read)."""
        return self._pages(skip)

    @property
    def truncated(self) -> bool:
        return self.read_count < self.page_count


def document_kind(data: bytes) -> str | None:
    """ "pdf" or "tiff" when the bytes are one of them (by content), else None."""
    if data.lstrip(b"\x00\t\n\r ")[:5] == PDF_MAGIC or PDF_MAGIC in data[:1024]:
        return "pdf"
    if data[:4] in TIFF_MAGICS:
        return "tiff"
    return None


def open_document(
    data: bytes, name: str, *, dpi: float, max_pixels: int, max_image_pixels: int, max_pages: int
) -> Document | None:
    """The pages of the PDF or multi-page TIFF in ``data``; None when it is neither (or a TIFF
    of one page: an image, read as images are). Raises ImageError naming ``name``."""
    kind = document_kind(data)
    if kind == "pdf":
        return _pdf(data, name, dpi, max_pixels, max_pages)
    if kind == "tiff":
        return _tiff(data, name, max_image_pixels, max_pages)
    return None


def _pdf(data: bytes, name: str, dpi: float, max_pixels: int, max_pages: int) -> Document:
    with PDFIUM:
        pdf = _open_pdf(data, name)
        try:
            count = len(pdf)
        finally:
            pdf.close()
    if count == 0:
        raise ImageError(name, "is a PDF without pages")
    read = min(count, max_pages)

    def pages(skip: Collection[int]) -> Iterator[DocumentPage]:
        # the lock is held while PDFium works, never across a yield: the pages may be made in a
        # read-ahead thread (engine.prefetch) while another thread renders or writes a PDF
        with PDFIUM:
            doc = _open_pdf(data, name)
        try:
            for k in range(read):
                if k + 1 not in skip:
                    yield _pdf_page(doc, k, name, dpi, max_pixels)
        finally:
            with PDFIUM:
                doc.close()

    return Document("pdf", count, read, pages)


def _open_pdf(data: bytes, name: str) -> Any:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise ImageError(name, _pdf_reason(str(exc))) from None


def _pdf_reason(message: str) -> str:
    if "password" in message.lower() or "security" in message.lower():
        return "is an encrypted (password-protected) PDF; it cannot be read without its password"
    if "format" in message.lower() or "file" in message.lower():
        return "is a truncated or corrupt PDF (PDFium cannot parse it)"
    return f"cannot be opened as a PDF ({message})"


def _pdf_page(pdf: Any, index: int, name: str, dpi: float, max_pixels: int) -> DocumentPage:
    with PDFIUM:
        return _pdf_page_unlocked(pdf, index, name, dpi, max_pixels)


def _pdf_page_unlocked(pdf: Any, index: int, name: str, dpi: float, max_pixels: int) -> DocumentPage:
    import pypdfium2 as pdfium

    number = index + 1
    try:
        page = pdf[index]
        try:
            width_pt, height_pt = page.get_size()
            if not (width_pt > 0 and height_pt > 0 and math.isfinite(width_pt * height_pt)):
                return DocumentPage(number, error=ImageError(name, f"page {number} has no size"))
            native = _scan_resolution(page, width_pt * height_pt)
            scale = _page_scale(width_pt, height_pt, dpi, native, max_pixels)
            width, height = math.ceil(width_pt * scale), math.ceil(height_pt * scale)
            lines = _text_layer(page, scale, height_pt) if native is None else ()
            if lines:
                return DocumentPage(number, width, height, lines=lines)
            bitmap = page.render(scale=scale, crop=(0, 0, 0, 0))
            image = np.ascontiguousarray(bitmap.to_numpy()[:, :, :3])  # BGR (PDFium's own order)
            return DocumentPage(number, image.shape[1], image.shape[0], image=image)
        finally:
            page.close()
    except pdfium.PdfiumError as exc:
        return DocumentPage(number, error=ImageError(name, f"page {number} cannot be rendered ({exc})"))


def _page_scale(width_pt: float, height_pt: float, dpi: float, native: float | None, max_pixels: int) -> float:
    """Pixels per point a page is rendered at: ``dpi``, or a scan's own resolution when higher (a
    hair below it, so that rounding never adds a column: PDFium rounds the bitmap's sides up)."""
    return render_scale(width_pt, height_pt, max(dpi, native or 0.0) * (1 - 1e-7), max_pixels)


def render_scale(width_pt: float, height_pt: float, dpi: float, max_pixels: int) -> float:
    """Pixels per point: ``dpi``, or less so that the rendered page (PDFium rounds its sides up)
    has at most ``max_pixels``."""
    scale = min(dpi / POINTS_PER_INCH, math.sqrt(max_pixels / (width_pt * height_pt)))
    while scale > 1e-6 and math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > max_pixels:
        scale *= 0.999
    return scale


def _scan_resolution(page: Any, area: float) -> float | None:
    """The resolution (dots per inch) of the largest image covering half the page or more: the page
    is a scan, and rendering it below the scan's own resolution loses text (benchmarks/pdf_dpi.py).
    None when no image covers half the page."""
    import pypdfium2.raw as raw

    best: float | None = None
    for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        left, bottom, right, top = obj.get_bounds()
        if (right - left) * (top - bottom) < MIN_IMAGE_SHARE * area or right <= left:
            continue
        try:
            pixels_wide, _ = obj.get_px_size()
        except Exception:  # noqa: BLE001 - an image PDFium cannot size: a scan at the default resolution
            pixels_wide = 0
        dpi = pixels_wide / ((right - left) / POINTS_PER_INCH) if pixels_wide else 0.0
        best = max(best or 0.0, dpi)
    return best


def _text_layer(page: Any, scale: float, height_pt: float) -> tuple[TextLine, ...]:
    """The page's text, one line per PDFium text rectangle, in rendered pixels (top-left origin)."""
    textpage = page.get_textpage()
    try:
        lines = []
        for i in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(i)
            text = textpage.get_text_bounded(left, bottom, right, top).replace("\r", "").replace("\n", " ").strip()
            if not text:
                continue
            x0, x1 = left * scale, right * scale
            y0, y1 = (height_pt - top) * scale, (height_pt - bottom) * scale
            lines.append(TextLine(text, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), 1.0, source="pdf"))
        return tuple(lines)
    finally:
        textpage.close()


def _tiff(data: bytes, name: str, max_image_pixels: int, max_pages: int) -> Document | None:
    """Every page of a TIFF of two or more pages (decoded one at a time); None for one page."""
    import cv2

    with tempfile.TemporaryDirectory(prefix="teamocr-tiff-") as folder:
        path = os.path.join(folder, "pages.tif")
        Path(path).write_bytes(data)
        try:
            count = int(cv2.imcount(path))
        except cv2.error:
            return None  # not a TIFF OpenCV can count: the image decoder says what is wrong
    if count <= 1:
        return None
    read = min(count, max_pages)

    def pages(skip: Collection[int]) -> Iterator[DocumentPage]:
        with tempfile.TemporaryDirectory(prefix="teamocr-tiff-") as folder:
            path = os.path.join(folder, "pages.tif")
            Path(path).write_bytes(data)
            for k in range(read):
                if k + 1 not in skip:
                    yield _tiff_page(path, k, name, max_image_pixels)

    return Document("tiff", count, read, pages)


def _tiff_page(path: str, index: int, name: str, max_image_pixels: int) -> DocumentPage:
    import cv2

    number = index + 1
    try:
        ok, mats = cv2.imreadmulti(path, start=index, count=1, flags=cv2.IMREAD_COLOR)
    except cv2.error as exc:
        return DocumentPage(number, error=ImageError(name, f"page {number} cannot be decoded ({exc})"))
    if not ok or not mats:
        return DocumentPage(number, error=ImageError(name, f"page {number} cannot be decoded"))
    image = mats[0]
    if image.shape[0] * image.shape[1] > max_image_pixels:
        why = f"page {number} has {image.shape[1]}x{image.shape[0]} pixels, over the limit of {max_image_pixels}"
        return DocumentPage(number, error=ImageError(name, why))
    return DocumentPage(number, image.shape[1], image.shape[0], image=image)


def page_as_read(data: bytes, name: str, number: int, settings: EngineSettings) -> np.ndarray:
    """Page ``number`` rendered as the engine with ``settings`` renders it for OCR (:func:`render_page`)."""
    return render_page(
        data,
        name,
        number,
        dpi=settings.pdf_dpi,
        max_pixels=settings.det_max_pixels,
        max_image_pixels=settings.max_image_pixels,
    )


def render_page(
    data: bytes, name: str, number: int, *, dpi: float, max_pixels: int, max_image_pixels: int
) -> np.ndarray:
    """Page ``number`` (1-based) of the PDF or multi-page TIFF in ``data`` as a BGR image, rendered
    as for OCR (a born-digital page too: this is its picture). ImageError when there is no such page
    or it cannot be rendered."""
    kind = document_kind(data)
    if kind == "pdf":
        with PDFIUM:
            return _render_pdf_page(data, name, number, dpi, max_pixels)
    if kind == "tiff":
        with tempfile.TemporaryDirectory(prefix="teamocr-tiff-") as folder:
            path = os.path.join(folder, "pages.tif")
            Path(path).write_bytes(data)
            rendered = _tiff_page(path, number - 1, name, max_image_pixels)
        if rendered.image is None:
            raise rendered.error or ImageError(name, f"has no page {number}")
        return rendered.image
    raise ImageError(name, "is not a document (PDF or multi-page TIFF)")


def _render_pdf_page(data: bytes, name: str, number: int, dpi: float, max_pixels: int) -> np.ndarray:
    pdf = _open_pdf(data, name)
    try:
        if not 1 <= number <= len(pdf):
            raise ImageError(name, f"has no page {number} (it has {len(pdf)})")
        page = pdf[number - 1]
        try:
            width_pt, height_pt = page.get_size()
            if not (width_pt > 0 and height_pt > 0):
                raise ImageError(name, f"page {number} has no size")
            native = _scan_resolution(page, width_pt * height_pt)
            bitmap = page.render(scale=_page_scale(width_pt, height_pt, dpi, native, max_pixels))
            return np.ascontiguousarray(bitmap.to_numpy()[:, :, :3])
        finally:
            page.close()
    finally:
        pdf.close()
