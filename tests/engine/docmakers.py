"""Documents made for the tests by our own code: PDFs written with PDFium (pypdfium2) from the
golden images or with a text layer, hostile PDFs cut or forged by hand, multi-page TIFFs."""

from __future__ import annotations

import ctypes
import io
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as raw

from tests.engine.ocrcheck import IMAGES

DPI = 150.0  # the scan resolution the image pages pretend to have


def image_page(pdf: pdfium.PdfDocument, image: np.ndarray, dpi: float = DPI) -> None:
    """A page holding ``image`` (BGR) as a JPEG covering it all, as a scanner writes at ``dpi``."""
    h, w = image.shape[:2]
    width, height = w * 72 / dpi, h * 72 / dpi
    page = pdf.new_page(width, height)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    obj = pdfium.PdfImage.new(pdf)
    obj.load_jpeg(io.BytesIO(jpeg.tobytes()), inline=True)
    obj.set_matrix(pdfium.PdfMatrix().scale(width, height))
    page.insert_obj(obj)
    page.gen_content()


def text_page(pdf: pdfium.PdfDocument, lines: list[tuple[str, float, float]], size: float = 14.0) -> None:
    """A born-digital A4 page with ``lines`` (text, x, y from the top, in points) in Helvetica."""
    page = pdf.new_page(595, 842)
    for text, x, y in lines:
        obj = raw.FPDFPageObj_NewTextObj(pdf, b"Helvetica", ctypes.c_float(size))
        buffer = ctypes.create_string_buffer((text + "\0").encode("utf-16-le"))
        raw.FPDFText_SetText(obj, ctypes.cast(buffer, ctypes.POINTER(raw.FPDF_WCHAR)))
        raw.FPDFPageObj_Transform(obj, 1, 0, 0, 1, x, 842 - y)
        raw.FPDFPage_InsertObject(page, obj)
    page.gen_content()


def saved(pdf: pdfium.PdfDocument) -> bytes:
    out = io.BytesIO()
    pdf.save(out)
    pdf.close()
    return out.getvalue()


def golden(name: str) -> np.ndarray:
    image = cv2.imread(str(IMAGES / name), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def scanned_pdf(names: list[str], turns: dict[int, int] | None = None, dpi: float = DPI) -> bytes:
    """An image-only PDF, one golden image a page scanned at ``dpi``; ``turns``: page index -> cv2
    rotate code."""
    pdf = pdfium.PdfDocument.new()
    for i, name in enumerate(names):
        image = golden(name)
        if turns and i in turns:
            image = cv2.rotate(image, turns[i])
        image_page(pdf, image, dpi)
    return saved(pdf)


def mixed_pdf() -> bytes:
    """Page 1 born-digital (a text layer), page 2 a scan of golden_en.png."""
    pdf = pdfium.PdfDocument.new()
    text_page(pdf, [("Quarterly report 2026", 72, 100), ("Invoice total: 1284.50", 72, 130)])
    image_page(pdf, golden("golden_en.png"))
    return saved(pdf)


def blank_pdf(pages: int, width: float = 595, height: float = 842) -> bytes:
    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(width, height)
    return saved(pdf)


def tiff_pages(tmp: Path, names: list[str]) -> bytes:
    """A multi-page TIFF of golden images (OpenCV's writer)."""
    path = tmp / "pages.tif"
    assert cv2.imwritemulti(str(path), [golden(name) for name in names])
    return path.read_bytes()


def encrypted_pdf() -> bytes:
    """A PDF under the standard security handler with a user password that is not empty (its /U
    entry matches no password we know): what a "protect with password" export writes."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + b"ab" * 32 + b"> /U <" + b"cd" * 32 + b"> /P -4 >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 4 0 R /ID [<%s> <%s>] >>\n" % (
        len(objects) + 1,
        b"01" * 16,
        b"01" * 16,
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
