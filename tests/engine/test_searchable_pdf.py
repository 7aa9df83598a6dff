"""Searchable PDFs: the invisible text extracts in order (PDFium, and poppler's pdftotext where it
is installed), sits on its line boxes, draws nothing, and an overlaid scan keeps its own content.

Pages are images drawn here with OpenCV and hand-made lines; no OCR model runs.
"""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as raw
import pytest

from engine.errors import ImageError
from engine.orientation import to_source
from engine.searchable_pdf import DEFAULT_DPI, PageText, PdfPage, extracted_text, image_pdf, overlay_pdf
from engine.types import Quad, TextLine
from tests.engine.imagekit import encode

WIDTH, HEIGHT = 900, 600
BOX_TOLERANCE = 2.0  # pixels: rounding of the device mapping, nothing more


def box(x0: float, y0: float, x1: float, y1: float) -> Quad:
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def quad(points: np.ndarray) -> Quad:
    (a, b), (c, d), (e, f), (g, h) = (map(float, point) for point in points)
    return ((a, b), (c, d), (e, f), (g, h))


LINES = (
    TextLine("Invoice No. 42", box(60, 50, 420, 110), 0.99),
    TextLine("合计 12.50 元", box(60, 170, 380, 230), 0.98),
    TextLine("Total: 1,284.50 EUR", box(60, 290, 600, 340), 0.97),
    TextLine("笑 😀 𠀀 end", box(60, 410, 420, 470), 0.9),  # beyond the BMP: an emoji, CJK Extension B
)


def page_image(width: int = WIDTH, height: int = HEIGHT, lines: Sequence[TextLine] = LINES) -> np.ndarray:
    """A white page with a light bar in each line box (where drawn text would show) and a frame."""
    image = np.full((height, width, 3), 255, np.uint8)
    cv2.rectangle(image, (5, 5), (width - 6, height - 6), (40, 90, 200), 3)
    for line in lines:
        cv2.fillPoly(image, [np.round(np.array(line.points)).astype(np.int32)], (200, 225, 245))
    return image


def words(text: str) -> str:
    return " ".join(text.split())


def assert_in_order(text: str, lines: Sequence[TextLine]) -> None:
    """Each line's text, whitespace normalised, occurs in ``text`` after the one before."""
    flat, at = words(text), 0
    for line in lines:
        found = flat.find(words(line.text), at)
        assert found >= 0, f"{line.text!r} not found (in order) in {flat!r}"
        at = found + len(words(line.text))


def pdftotext(pdf: bytes) -> list[str]:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True)
    return out.stdout.decode("utf-8").split("\f")


needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
needs_qpdf = pytest.mark.skipif(shutil.which("qpdf") is None, reason="qpdf not installed")


def char_boxes(pdf: bytes, index: int, width: int, height: int) -> Iterator[tuple[str, np.ndarray]]:
    """Each character of page ``index`` with its loose and tight boxes' corners, in the pixels of
    the page rendered ``width`` x ``height`` as a viewer shows it (PDFium's own page-to-device
    mapping, which knows the page's rotation and crop box)."""
    document = pdfium.PdfDocument(pdf)
    page = document[index]
    textpage = page.get_textpage()
    for i in range(textpage.count_chars()):
        char = textpage.get_text_range(i, 1)
        if not char.strip():
            continue  # spaces and the line breaks PDFium generates have no box of their own
        corners = []
        for loose in (True, False):
            left, bottom, right, top = textpage.get_charbox(i, loose=loose)
            for x, y in ((left, bottom), (right, bottom), (right, top), (left, top)):
                dx, dy = ctypes.c_int(), ctypes.c_int()
                raw.FPDF_PageToDevice(page, 0, 0, width, height, 0, x, y, dx, dy)
                corners.append((dx.value, dy.value))
        yield char, np.array(corners, np.float32)
    textpage.close()
    page.close()
    document.close()


def assert_boxes_on_lines(pdf: bytes, index: int, width: int, height: int, lines: Sequence[TextLine]) -> None:
    """Every character's box lies inside one line's quad (within tolerance), and every line has
    characters."""
    quads = [np.array(line.points, np.float32) for line in lines]
    hits = [0] * len(lines)
    for char, corners in char_boxes(pdf, index, width, height):
        inside = [
            k
            for k, quad in enumerate(quads)
            if all(cv2.pointPolygonTest(quad, (float(x), float(y)), True) >= -BOX_TOLERANCE for x, y in corners)
        ]
        assert inside, f"{char!r} at {corners.tolist()} lies on no line box"
        hits[inside[0]] += 1
    assert all(hits), f"characters per line: {hits}"


def render(pdf: bytes, index: int, scale: float) -> np.ndarray:
    document = pdfium.PdfDocument(pdf)
    page = document[index]
    # a hair below the scale: PDFium rounds the bitmap's sides up, and 432 pt at 150 dpi is 900.0000001 px
    image = np.ascontiguousarray(page.render(scale=scale * (1 - 1e-7)).to_numpy()[:, :, :3])
    page.close()
    document.close()
    return image


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# -- image_pdf --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_pages() -> bytes:
    """Page 1 a PNG at 150 dpi, page 2 the same as a JPEG at the default resolution."""
    image = page_image()
    return image_pdf(
        [
            PdfPage(encode(".png", image), WIDTH, HEIGHT, LINES, dpi=150),
            PdfPage(encode(".jpg", image, (cv2.IMWRITE_JPEG_QUALITY, 92)), WIDTH, HEIGHT, LINES[:3]),
        ]
    )


def test_text_extracts_in_order_with_pdfium(two_pages: bytes) -> None:
    first, second = extracted_text(two_pages)
    assert_in_order(first, LINES)
    assert_in_order(second, LINES[:3])
    assert "😀" in first and "𠀀" in first


@needs_pdftotext
def test_text_extracts_in_order_with_pdftotext(two_pages: bytes) -> None:
    pages = pdftotext(two_pages)
    assert_in_order(pages[0], LINES)
    assert_in_order(pages[1], LINES[:3])


def test_pages_are_sized_by_their_dpi(two_pages: bytes) -> None:
    document = pdfium.PdfDocument(two_pages)
    sizes = [document.get_page_size(i) for i in range(len(document))]
    document.close()
    assert sizes[0] == pytest.approx((WIDTH * 72 / 150, HEIGHT * 72 / 150))
    assert sizes[1] == pytest.approx((WIDTH * 72 / DEFAULT_DPI, HEIGHT * 72 / DEFAULT_DPI))


def test_characters_sit_on_their_line_boxes(two_pages: bytes) -> None:
    assert_boxes_on_lines(two_pages, 0, WIDTH, HEIGHT, LINES)


def test_each_line_spans_its_box(two_pages: bytes) -> None:
    """Tz stretches a line to its box: the first character starts at the box's left edge and the
    last ends at its right, and the boxes run from the line's top to its bottom."""
    first_line = list(char_boxes(two_pages, 0, WIDTH, HEIGHT))[: len(LINES[0].text.replace(" ", ""))]
    assert "".join(char for char, _ in first_line) == "InvoiceNo.42"
    first_loose, last_loose = first_line[0][1][:4], first_line[-1][1][:4]
    assert first_loose[:, 0].min() == pytest.approx(60, abs=BOX_TOLERANCE)
    assert last_loose[:, 0].max() == pytest.approx(420, abs=BOX_TOLERANCE)
    assert first_loose[:, 1].min() == pytest.approx(50, abs=BOX_TOLERANCE)
    assert first_loose[:, 1].max() == pytest.approx(110, abs=BOX_TOLERANCE)


def test_the_text_draws_nothing(two_pages: bytes) -> None:
    image = page_image()
    assert mean_difference(render(two_pages, 0, 150 / 72), image) < 0.5  # lossless PNG: the same pixels
    assert mean_difference(render(two_pages, 1, DEFAULT_DPI / 72), image) < 3.0  # the JPEG's own loss


def test_a_jpeg_is_embedded_as_it_is() -> None:
    jpeg = encode(".jpg", page_image(), (cv2.IMWRITE_JPEG_QUALITY, 80))
    progressive = encode(".jpg", page_image(), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))
    pdf = image_pdf([PdfPage(jpeg, WIDTH, HEIGHT, LINES), PdfPage(progressive, WIDTH, HEIGHT)])
    assert jpeg in pdf and progressive in pdf


def test_a_gray_png_is_stored_gray() -> None:
    gray = cv2.cvtColor(page_image(), cv2.COLOR_BGR2GRAY)
    pdf = image_pdf([PdfPage(encode(".png", gray), WIDTH, HEIGHT, LINES)])
    assert b"/DeviceGray" in pdf and b"/DeviceRGB" not in pdf
    assert mean_difference(render(pdf, 0, DEFAULT_DPI / 72)[:, :, 0], gray) < 0.5


def jpeg_turned(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an EXIF block saying ``orientation`` (6: turn 90 degrees clockwise to view)."""
    tiff = b"MM\x00*\x00\x00\x00\x08" + struct.pack(">HHHIHH", 1, 274, 3, 1, orientation, 0) + bytes(4)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_an_exif_turned_jpeg_is_shown_as_the_engine_read_it() -> None:
    upright = page_image()
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # orientation 6 turns it back
    data = jpeg_turned(encode(".jpg", stored, (cv2.IMWRITE_JPEG_QUALITY, 95)), 6)
    pdf = image_pdf([PdfPage(data, WIDTH, HEIGHT, LINES, dpi=72)])
    assert mean_difference(render(pdf, 0, 1.0), upright) < 3.0
    assert_in_order(extracted_text(pdf)[0], LINES)


def turned_page() -> tuple[np.ndarray, tuple[TextLine, ...]]:
    """An upright page's lines, and the image as scanned turned a quarter counter-clockwise, with
    the lines' quads in that image's pixels (as the engine reports a page read turned 90)."""
    upright = page_image()
    source = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)
    height, width = source.shape[:2]
    lines = tuple(TextLine(line.text, quad(to_source(np.array(line.points), 90, width, height)), 0.9) for line in LINES)
    return source, lines


def test_a_turned_page_reads_upright() -> None:
    source, lines = turned_page()
    height, width = source.shape[:2]
    pdf = image_pdf([PdfPage(encode(".png", source), width, height, lines, rotation=90)])
    document = pdfium.PdfDocument(pdf)
    assert document[0].get_rotation() == 90
    document.close()
    assert_in_order(extracted_text(pdf)[0], LINES)
    assert_boxes_on_lines(pdf, 0, WIDTH, HEIGHT, LINES)  # the device frame is the upright page
    assert mean_difference(render(pdf, 0, DEFAULT_DPI / 72), page_image()) < 0.5


def test_turned_lines_on_a_page_left_as_it_came() -> None:
    """rotation 0 with lines running down the page: each is placed along its own direction."""
    source, lines = turned_page()
    height, width = source.shape[:2]
    pdf = image_pdf([PdfPage(encode(".png", source), width, height, lines)])
    text = extracted_text(pdf)[0]
    for line in LINES:
        assert words(line.text) in words(text)
    assert_boxes_on_lines(pdf, 0, width, height, lines)


def test_a_slanted_line_follows_its_box() -> None:
    angle = np.deg2rad(12)
    cx, cy, half_w, half_h = 450.0, 300.0, 250.0, 25.0
    u, n = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    centre = np.array([cx, cy])
    corners = [centre - u * half_w - n * half_h, centre + u * half_w - n * half_h]
    corners += [centre + u * half_w + n * half_h, centre - u * half_w + n * half_h]
    line = TextLine("Slanted receipt 合计", quad(np.array(corners)), 0.9)
    pdf = image_pdf([PdfPage(encode(".png", page_image(lines=[line])), WIDTH, HEIGHT, [line])])
    assert words(extracted_text(pdf)[0]) == words(line.text)
    # PDFium's character boxes are upright rectangles around turned ones: their centres lie on the
    # line, and they advance along its direction
    polygon = np.array(line.points, np.float32)
    centres = [corners[:4].mean(axis=0) for _, corners in char_boxes(pdf, 0, WIDTH, HEIGHT)]
    assert len(centres) == len(line.text.replace(" ", ""))
    assert all(cv2.pointPolygonTest(polygon, (float(x), float(y)), False) >= 0 for x, y in centres)
    along = [float(np.dot(centre - corners[0], u)) for centre in centres]
    assert along == sorted(along) and along[0] < 40 and along[-1] > 2 * half_w - 40


@needs_qpdf
def test_qpdf_finds_no_errors(two_pages: bytes, tmp_path: Path) -> None:
    path = tmp_path / "out.pdf"
    path.write_bytes(two_pages)
    result = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lines_without_text_or_box_are_left_out() -> None:
    lines = [TextLine("  \t ", box(10, 10, 50, 50), 0.5), TextLine("flat", box(10, 10, 10, 50), 0.5), LINES[0]]
    pdf = image_pdf([PdfPage(encode(".png", page_image()), WIDTH, HEIGHT, lines)])
    assert words(extracted_text(pdf)[0]) == LINES[0].text


def test_past_2048_characters_beyond_the_bmp_the_rest_are_replaced() -> None:
    text = "".join(chr(0x20000 + k) for k in range(2050))  # CJK Extension B, each its own private CID
    pdf = image_pdf([PdfPage(encode(".png", page_image()), WIDTH, HEIGHT, [TextLine(text, box(10, 10, 890, 60), 0.9)])])
    assert extracted_text(pdf)[0] == text[:2048] + "\ufffd\ufffd"


def test_bad_pages_name_their_cause() -> None:
    png = encode(".png", page_image())
    with pytest.raises(ValueError, match="at least one page"):
        image_pdf([])
    with pytest.raises(ValueError, match="positive size"):
        PdfPage(png, 0, HEIGHT)
    with pytest.raises(ValueError, match="dpi"):
        PdfPage(png, WIDTH, HEIGHT, dpi=0)
    with pytest.raises(ValueError, match="rotation"):
        PdfPage(png, WIDTH, HEIGHT, rotation=45)
    with pytest.raises(ValueError, match=f"page 1: its image is {WIDTH} x {HEIGHT} pixels but the page says 10 x 10"):
        image_pdf([PdfPage(png, 10, 10)])
    with pytest.raises(ImageError, match="page 1 image"):
        image_pdf([PdfPage(b"not an image", WIDTH, HEIGHT)])


# -- overlay_pdf ------------------------------------------------------------------------------------


def scanned_original(rotate: int) -> bytes:
    """A hand-written two-page PDF: page 1 a scan-like page with a blue vector rectangle and the
    text ORIGINAL (upright as a viewer shows the page, mid-page), its media box off the origin, a
    smaller crop box, ``/Rotate``, and content that leaves its transformation changed (no q/Q);
    page 2 born digital ("BORN DIGITAL")."""
    turn = {0: b"1 0 0 1", 90: b"0 1 -1 0", 180: b"-1 0 0 -1", 270: b"0 -1 1 0"}[rotate]  # upright as shown
    content = b"0 0 1 rg 150 100 300 200 re f BT /F1 24 Tf %s 405 430 Tm (ORIGINAL) Tj ET 2 0 0 2 0 0 cm" % turn
    born = b"BT /F1 24 Tf 20 100 Td (BORN DIGITAL) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 6 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [100 50 712 842] /CropBox [110 60 700 800] /Rotate %d"
        b" /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>" % rotate,
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 300] /Resources << /Font << /F1 5 0 R >> >>"
        b" /Contents 7 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(born), born),
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def page_facts(pdf: bytes) -> list[tuple[tuple[float, float], int, tuple[float, ...]]]:
    document = pdfium.PdfDocument(pdf)
    facts = []
    for page in document:
        facts.append((page.get_size(), page.get_rotation(), page.get_bbox()))
        page.close()
    document.close()
    return facts


SCALE = 200 / 72  # the engine renders PDF pages at 200 dpi
OVERLAY_LINES = (
    TextLine("Invoice No. 42", box(100, 200, 700, 260), 0.9),
    TextLine("合计 12.50 元", box(100, 330, 500, 400), 0.9),
)


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_overlay_keeps_the_original_and_adds_the_text(rotate: int) -> None:
    original = scanned_original(rotate)
    before = render(original, 0, SCALE)
    assert np.count_nonzero((before[:, :, 0] > 200) & (before[:, :, 2] < 60)) > 100_000  # the blue rectangle
    height, width = before.shape[:2]
    taken = TextLine("BORN DIGITAL", box(0, 0, 10, 10), 1.0, source="pdf")  # from a text layer: not again
    out = overlay_pdf(original, {0: PageText((*OVERLAY_LINES, taken), width, height)})

    assert page_facts(out) == page_facts(original)
    first, second = extracted_text(out)
    assert_in_order(first, (TextLine("ORIGINAL", box(0, 0, 1, 1), 1.0), *OVERLAY_LINES))
    assert "BORN" not in first
    assert words(second) == "BORN DIGITAL"
    assert mean_difference(render(out, 0, SCALE), before) < 0.01  # the rectangle and ORIGINAL, unchanged
    chars = list(char_boxes(out, 0, width, height))
    assert "".join(char for char, _ in chars[: len("ORIGINAL")]) == "ORIGINAL"  # the original's, first
    quads = [np.array(line.points, np.float32) for line in OVERLAY_LINES]
    for char, corners in chars[len("ORIGINAL") :]:
        on_a_line = any(
            all(cv2.pointPolygonTest(q, (float(x), float(y)), True) >= -BOX_TOLERANCE for x, y in corners)
            for q in quads
        )
        assert on_a_line, f"{char!r} at {corners.tolist()} lies on no line box (rotate {rotate})"


@needs_pdftotext
def test_overlay_text_extracts_with_pdftotext() -> None:
    original = scanned_original(90)
    height, width = render(original, 0, SCALE).shape[:2]
    pages = pdftotext(overlay_pdf(original, {0: PageText(OVERLAY_LINES, width, height)}))
    assert_in_order(pages[0], (*OVERLAY_LINES, TextLine("ORIGINAL", box(0, 0, 1, 1), 1.0)))  # ours are above it
    assert "BORN DIGITAL" in pages[1]


@needs_qpdf
def test_overlay_passes_qpdf(tmp_path: Path) -> None:
    original = scanned_original(270)
    path = tmp_path / "overlay.pdf"
    path.write_bytes(overlay_pdf(original, {0: PageText(OVERLAY_LINES, 1000, 1000)}))
    result = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_overlay_with_nothing_to_add_returns_the_original() -> None:
    original = scanned_original(0)
    taken = TextLine("ORIGINAL", box(0, 0, 10, 10), 1.0, source="pdf")
    assert overlay_pdf(original, {}) == original
    assert overlay_pdf(original, {0: PageText((taken,), 100, 100)}) == original


def test_overlay_names_its_errors() -> None:
    with pytest.raises(ValueError, match="the original cannot be opened as a PDF"):
        overlay_pdf(b"%PDF-1.4 truncated", {0: PageText(OVERLAY_LINES, 100, 100)})
    with pytest.raises(ValueError, match="no page index 5 \\(it has 2 pages\\)"):
        overlay_pdf(scanned_original(0), {5: PageText(OVERLAY_LINES, 100, 100)})
    with pytest.raises(ValueError, match="positive size"):
        PageText(OVERLAY_LINES, 0, 100)
