"""Searchable PDFs: each page shows its image and carries the recognised text, invisible, on top.

:func:`image_pdf` writes a PDF from page images and their lines; :func:`overlay_pdf` adds the
same invisible text to chosen pages of a PDF that came in (a scan), keeping everything else;
:func:`extracted_text` reads a PDF's text back the way PDFium does (tests, benchmarks).

The writer is our own (objects, a cross-reference table, a trailer): a searchable page needs only
a handful of PDF constructs, each chosen so that every viewer selects, copies and searches the
text, Chinese included, while drawing nothing:

- The page image is an image XObject drawn over the whole page: a JPEG is embedded as it is
  (``/DCTDecode``, no loss, no work); any other image (and a JPEG that needs its EXIF turn
  applied, or is CMYK, 12-bit or arithmetic-coded) is decoded as the engine decodes it
  (:func:`engine.preprocess.load_image`) and stored losslessly with ``/FlateDecode`` (a screenshot
  stays sharp; gray when its three channels are equal), except that a JPEG source is re-encoded
  as a JPEG of quality :data:`JPEG_QUALITY` (a photo stays a photo-sized file).
- The text is in text render mode 3 (``3 Tr``: neither filled nor stroked), one ``Tj`` per line,
  with a text matrix (``Tm``) whose x axis runs along the line box's baseline (the quad's top and
  bottom edges averaged), so a turned or slanted line is placed along its own direction and
  extracts in its own order. The font size is the box height; ``Tz`` scales the text horizontally
  to the box width, so selection highlights cover the box.
- The font is a TrueType font built here (:func:`_box_font`: ten tables, about 800 bytes) whose
  two glyphs are plain boxes from descent to ascent, one 500 units wide, one 1000: never drawn
  (``3 Tr``), they only tell viewers where each character is. (Tesseract's "glyphless" font is a
  box too; a truly empty glyph gives a line no extent across its baseline, and PDFium then drops
  a turned line's text and highlights no selection at all.) It is embedded once per document as a
  ``/Type0`` font with ``/Identity-H`` encoding over a ``/CIDFontType2``; the ``/CIDToGIDMap``
  shows East Asian wide and full-width characters (``unicodedata.east_asian_width`` "W" or "F")
  with the wide box and the rest with the narrow one, and ``/W`` gives them the same advances
  (1000, else 500), so the horizontal scale of mixed Chinese and Latin lines stays near 100 and
  each character sits near its own pixels; a ``/ToUnicode`` CMap maps each CID used back to its
  text.
- CIDs: a character of the Basic Multilingual Plane is its own code point. A character beyond it
  (an emoji, CJK Extension B) gets a private CID from the surrogate range U+D800 to U+DFFF (never
  a character itself), mapped by ``/ToUnicode`` to its surrogate pair; past 2048 distinct such
  characters in one document the rest are written as U+FFFD. Controls are dropped (tabs and line
  breaks become spaces).

Pages are ``pixels * 72 / dpi`` points wide; :data:`DEFAULT_DPI` (96, what screens, and so
screenshots, have; img2pdf assumes the same) when the caller knows no better. A scan should pass
its own resolution.

:func:`overlay_pdf` writes the text layer as a text-only PDF of the same page sizes, then, with
PDFium, turns each of its pages into a form XObject (``FPDF_NewXObjectFromPage``) placed on top of
the original page's content through a matrix that undoes the page's ``/Rotate`` and the origin of
its crop box, and saves the document. PDFium reads text inside form XObjects like any other. The
original content streams are kept as they are; PDFium appends one of its own that first undoes a
transformation the original left in force (a clipping path it left open would still apply).
"""

from __future__ import annotations

import io
import math
import struct
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.imageheader import is_truncated, read_dimensions, read_orientation, sniff_format
from engine.types import Quad, TextLine

DEFAULT_DPI = 96.0
JPEG_QUALITY = 90
POINTS_PER_INCH = 72.0
UNITS_PER_EM = 1000
ASCENT, DESCENT = 800, 200  # the font's em above and below the baseline
NARROW, WIDE = 500, 1000  # advances (per 1000 of the font size) of ordinary and East Asian wide characters
FONT_NAME = b"TeamOCR-Invisible"
ROTATIONS = (0, 90, 180, 270)
_PRIVATE_FIRST, _PRIVATE_END = 0xD800, 0xE000  # surrogate code units: CIDs no BMP character has
_MIN_SIDE = 1e-3  # points: a line box thinner than this has no direction or size to place text by
_BFCHAR_BLOCK = 100  # a CMap's bfchar block holds at most 100 entries
_JPEG_AS_IS = frozenset({0xC0, 0xC1, 0xC2})  # baseline, extended and progressive Huffman frames
_JPEG_OTHER_FRAMES = frozenset({0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True)
class PdfPage:
    """One page for :func:`image_pdf`: the encoded ``image`` (JPEG, PNG or any format the engine
    reads), its size in pixels (``width`` x ``height``, the frame of the ``lines`` points, with
    any EXIF turn applied), the ``dpi`` that sizes the page, and ``rotation``: the clockwise
    degrees a viewer turns the page to show it upright (:attr:`engine.types.PageResult.rotation`,
    written as the page's ``/Rotate``)."""

    image: bytes
    width: int
    height: int
    lines: Sequence[TextLine] = ()
    dpi: float = DEFAULT_DPI
    rotation: int = 0

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"a page needs a positive size in pixels, got {self.width} x {self.height}")
        if not (math.isfinite(self.dpi) and self.dpi > 0):
            raise ValueError(f"a page needs a positive, finite dpi, got {self.dpi}")
        if self.rotation not in ROTATIONS:
            raise ValueError(f"rotation must be one of {ROTATIONS} degrees, got {self.rotation}")


@dataclass(frozen=True)
class PageText:
    """The text :func:`overlay_pdf` adds to one page: the ``lines`` as read from the page rendered
    ``width`` x ``height`` pixels (upright as a viewer shows it, its crop box: what
    :mod:`engine.documents` renders), e.g. ``PageText(result.lines, result.width, result.height)``."""

    lines: Sequence[TextLine]
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"page text needs the positive size it was read at, got {self.width} x {self.height}")


def image_pdf(pages: Sequence[PdfPage]) -> bytes:
    """A PDF of ``pages``, in order: each page its image with the lines' text invisible on top.
    ValueError for no pages or an image whose size is not the page's; ImageError
    (:mod:`engine.errors`) for an image that cannot be decoded."""
    if not pages:
        raise ValueError("a PDF needs at least one page")
    sheets = []
    for number, page in enumerate(pages, 1):
        scale = POINTS_PER_INCH / page.dpi
        width, height = page.width * scale, page.height * scale
        image = _image(page, number)
        sheets.append(_Sheet(width, height, scale, scale, page.lines, image, page.rotation))
    return _write(sheets)


def overlay_pdf(original: bytes, pages: Mapping[int, PageText]) -> bytes:
    """``original`` with the invisible text of ``pages`` (0-based page index -> its text) laid over
    those pages; every page keeps its own content, size and rotation, and a page not in ``pages``
    is left as it is. Lines taken from a text layer (``source == "pdf"``) are there already and
    are not written again. ValueError when ``original`` cannot be opened or has no such page."""
    import pypdfium2 as pdfium

    document = _open_pdf(original, "the original")
    try:
        chosen = {index: _ocr_lines(text) for index, text in pages.items()}
        indexes = sorted(index for index, lines in chosen.items() if lines)
        for index in indexes:
            if not 0 <= index < len(document):
                raise ValueError(f"the original has no page index {index} (it has {len(document)} pages)")
        if not indexes:
            return original
        frames = [_page_frame(document, index) for index in indexes]
        sheets = [
            _Sheet(w, h, w / pages[index].width, h / pages[index].height, chosen[index])
            for index, (w, h, _) in zip(indexes, frames)
        ]
        layer = pdfium.PdfDocument(_write(sheets))
        try:
            for k, (index, (_, _, matrix)) in enumerate(zip(indexes, frames)):
                _stamp(document, layer, k, index, matrix)
        finally:
            layer.close()
        out = io.BytesIO()
        document.save(out)
        return out.getvalue()
    finally:
        document.close()


def extracted_text(pdf: bytes) -> list[str]:
    """Each page's text as PDFium extracts it (``get_text_bounded``). ValueError when ``pdf``
    cannot be opened."""
    document = _open_pdf(pdf, "the PDF")
    try:
        texts = []
        for page in document:
            textpage = page.get_textpage()
            try:
                texts.append(textpage.get_text_bounded())
            finally:
                textpage.close()
                page.close()
        return texts
    finally:
        document.close()


# -- pages as the writer lays them out ------------------------------------------------------------


@dataclass(frozen=True)
class _Image:
    """An image XObject: its dictionary entries (all but ``/Length``) and its stream data."""

    entries: bytes
    data: bytes


@dataclass(frozen=True)
class _Sheet:
    """A page to write: ``width`` x ``height`` points, the points per pixel of its lines' frame
    (``scale_x``, ``scale_y``), its lines, the image that fills it, its ``/Rotate``."""

    width: float
    height: float
    scale_x: float
    scale_y: float
    lines: Sequence[TextLine]
    image: _Image | None = None
    rotate: int = 0


@dataclass(frozen=True)
class _Placement:
    """Where one line's text goes: the text matrix (x along the baseline, y its normal, the origin
    at the baseline's start), the font size (the box height) and the box width along the baseline."""

    matrix: tuple[float, float, float, float, float, float]
    size: float
    length: float


def _placement(points: Quad, sheet: _Sheet) -> _Placement | None:
    """The line box ``points`` (image pixels, y down, clockwise from the text's top-left) placed on
    ``sheet`` (points, y up); None for a box without finite corners, width or height."""
    p = [(x * sheet.scale_x, sheet.height - y * sheet.scale_y) for x, y in points]
    if not all(math.isfinite(v) for xy in p for v in xy):
        return None
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = p
    dx, dy = (x1 - x0) + (x2 - x3), (y1 - y0) + (y2 - y3)  # the top and bottom edges together
    norm = math.hypot(dx, dy)
    if norm < _MIN_SIDE:
        return None
    ux, uy = dx / norm, dy / norm
    nx, ny = -uy, ux  # up, as the text reads
    length = ((x1 - x0 + x2 - x3) * ux + (y1 - y0 + y2 - y3) * uy) / 2
    size = abs((x0 - x3 + x1 - x2) * nx + (y0 - y3 + y1 - y2) * ny) / 2
    if length < _MIN_SIDE or size < _MIN_SIDE:
        return None
    cx, cy = sum(x for x, _ in p) / 4, sum(y for _, y in p) / 4
    rise = size * (0.5 - DESCENT / UNITS_PER_EM)  # from the box's centre line down to the baseline
    ox, oy = cx - ux * length / 2 - nx * rise, cy - uy * length / 2 - ny * rise
    return _Placement((ux, uy, nx, ny, ox, oy), size, length)


def _ocr_lines(text: PageText) -> tuple[TextLine, ...]:
    return tuple(line for line in text.lines if line.source != "pdf" and _clean(line.text))


def _clean(text: str) -> str:
    """``text`` without controls (whitespace ones become spaces), stripped."""
    kept = (" " if ch.isspace() else ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cs"))
    return "".join(kept).strip()


# -- character codes ------------------------------------------------------------------------------


class _Codes:
    """The CIDs of one document's text and the character each stands for (built while writing)."""

    def __init__(self) -> None:
        self.chars: dict[int, str] = {}
        self._private: dict[str, int] = {}

    def encode(self, text: str) -> list[int]:
        return [self._cid(ch) for ch in text]

    def _cid(self, ch: str) -> int:
        code = ord(ch)
        if code > 0xFFFF:
            code = self._private.get(ch, _PRIVATE_FIRST + len(self._private))
            if code >= _PRIVATE_END:
                return self._cid("\ufffd")
            self._private[ch] = code
        self.chars[code] = ch
        return code

    def advance(self, cid: int) -> int:
        return WIDE if unicodedata.east_asian_width(self.chars[cid]) in ("W", "F") else NARROW


# -- the PDF file ---------------------------------------------------------------------------------


class _Objects:
    """A PDF's numbered objects, written out with their cross-reference table and trailer."""

    def __init__(self) -> None:
        self._bodies: list[bytes | None] = []

    def reserve(self) -> int:
        self._bodies.append(None)
        return len(self._bodies)

    def put(self, number: int, body: bytes) -> None:
        self._bodies[number - 1] = body

    def add(self, body: bytes) -> int:
        number = self.reserve()
        self.put(number, body)
        return number

    def add_stream(self, entries: bytes, data: bytes) -> int:
        return self.add(b"<< %s /Length %d >>\nstream\n%s\nendstream" % (entries, len(data), data))

    def tobytes(self, root: int, info: int) -> bytes:
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self._bodies, 1):
            if body is None:
                raise RuntimeError(f"PDF object {number} was reserved and never written")
            offsets.append(len(out))
            out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\n" % (len(offsets) + 1, root, info)
        out += b"startxref\n%d\n%%%%EOF\n" % xref
        return bytes(out)


def _write(sheets: Sequence[_Sheet]) -> bytes:
    """The PDF of ``sheets``: a catalog, a flat page tree, one font shared by every page."""
    pdf, codes = _Objects(), _Codes()
    catalog, tree, font = pdf.reserve(), pdf.reserve(), pdf.reserve()
    kids = [_write_page(pdf, sheet, codes, tree, font) for sheet in sheets]
    _write_font(pdf, font, codes)
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    pdf.put(tree, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids)))
    pdf.put(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % tree)
    info = pdf.add(b"<< /Producer (teamocr) >>")
    return pdf.tobytes(catalog, info)


def _write_page(pdf: _Objects, sheet: _Sheet, codes: _Codes, tree: int, font: int) -> int:
    resources = b"/Font << /F0 %d 0 R >>" % font
    ops = []
    if sheet.image is not None:
        image = pdf.add_stream(sheet.image.entries, sheet.image.data)
        resources += b" /XObject << /Im0 %d 0 R >>" % image
        ops.append(b"q %s 0 0 %s 0 0 cm /Im0 Do Q" % (_num(sheet.width), _num(sheet.height)))
    text = [op for line in sheet.lines if (op := _line_ops(line, sheet, codes)) is not None]
    if text:
        ops += [b"BT 3 Tr", *text, b"ET"]
    contents = pdf.add_stream(b"/Filter /FlateDecode", zlib.compress(b"\n".join(ops) + b"\n"))
    box = b"[0 0 %s %s]" % (_num(sheet.width), _num(sheet.height))
    rotate = b" /Rotate %d" % sheet.rotate if sheet.rotate else b""
    return pdf.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox %s%s /Resources << %s >> /Contents %d 0 R >>"
        % (tree, box, rotate, resources, contents)
    )


def _line_ops(line: TextLine, sheet: _Sheet, codes: _Codes) -> bytes | None:
    """One line's text operators; None for a line with no text or no box to place it in."""
    text = _clean(line.text)
    place = _placement(line.points, sheet)
    if not text or place is None:
        return None
    cids = codes.encode(text)
    natural = sum(codes.advance(cid) for cid in cids) / UNITS_PER_EM * place.size
    matrix = b" ".join(_num(v) for v in place.matrix)
    shown = b"".join(b"%04X" % cid for cid in cids)
    return b"/F0 %s Tf %s Tz %s Tm <%s> Tj" % (_num(place.size), _num(100 * place.length / natural), matrix, shown)


def _num(value: float) -> bytes:
    """A PDF number: at most four decimals, no trailing zeros, no ``-0``."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return b"0" if text in ("", "-0") else text.encode("ascii")


# -- the font -------------------------------------------------------------------------------------


def _write_font(pdf: _Objects, number: int, codes: _Codes) -> None:
    """The invisible Type0 font at object ``number``, covering the CIDs ``codes`` used."""
    font_file = _box_font()
    program = pdf.add_stream(b"/Length1 %d /Filter /FlateDecode" % len(font_file), zlib.compress(font_file))
    gids = pdf.add_stream(b"/Filter /FlateDecode", zlib.compress(_gid_map(codes)))
    to_unicode = pdf.add_stream(b"/Filter /FlateDecode", zlib.compress(_to_unicode(codes)))
    descriptor = pdf.add(
        b"<< /Type /FontDescriptor /FontName /%s /Flags 4 /FontBBox [0 -%d %d %d] /ItalicAngle 0"
        b" /Ascent %d /Descent -%d /CapHeight %d /StemV 80 /FontFile2 %d 0 R >>"
        % (FONT_NAME, DESCENT, WIDE, ASCENT, ASCENT, DESCENT, ASCENT, program)
    )
    cid_font = pdf.add(
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /%s"
        b" /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >>"
        b" /FontDescriptor %d 0 R /DW %d /W [%s] /CIDToGIDMap %d 0 R >>"
        % (FONT_NAME, descriptor, NARROW, _wide_runs(codes), gids)
    )
    pdf.put(
        number,
        b"<< /Type /Font /Subtype /Type0 /BaseFont /%s /Encoding /Identity-H /DescendantFonts [%d 0 R]"
        b" /ToUnicode %d 0 R >>" % (FONT_NAME, cid_font, to_unicode),
    )


def _gid_map(codes: _Codes) -> bytes:
    """The CIDToGIDMap: every CID shows the narrow box (glyph 1), the wide CIDs used the wide one (2)."""
    gids = bytearray(b"\x00\x01" * 0x10000)
    for cid in codes.chars:
        if codes.advance(cid) == WIDE:
            gids[2 * cid + 1] = 2
    return bytes(gids)


def _wide_runs(codes: _Codes) -> bytes:
    """The ``/W`` entries giving wide CIDs their advance: ``first last width`` per run of CIDs."""
    wide = sorted(cid for cid in codes.chars if codes.advance(cid) == WIDE)
    runs: list[list[int]] = []
    for cid in wide:
        if runs and runs[-1][1] == cid - 1:
            runs[-1][1] = cid
        else:
            runs.append([cid, cid])
    return b" ".join(b"%d %d %d" % (first, last, WIDE) for first, last in runs)


def _to_unicode(codes: _Codes) -> bytes:
    """A ToUnicode CMap: each CID used -> its character (UTF-16BE, a surrogate pair beyond the BMP)."""
    pairs = [
        b"<%04X> <%s>" % (cid, ch.encode("utf-16-be").hex().upper().encode()) for cid, ch in sorted(codes.chars.items())
    ]
    blocks = [pairs[k : k + _BFCHAR_BLOCK] for k in range(0, len(pairs), _BFCHAR_BLOCK)]
    body = b"".join(b"%d beginbfchar\n%s\nendbfchar\n" % (len(block), b"\n".join(block)) for block in blocks)
    return (
        b"/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        b"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        b"1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        + body
        + b"endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    )


def _box_font() -> bytes:
    """A TrueType font of three glyphs: an empty .notdef, and boxes filling the em from descent to
    ascent, one narrow (500 units) and one wide (1000), 1000 units to the em: the tables a PDF
    viewer's font loader expects, and outlines that give each character its box."""
    advances = (NARROW, NARROW, WIDE)
    glyphs = [b"", _box_glyph(NARROW), _box_glyph(WIDE)]
    offsets = [sum(len(g) for g in glyphs[:k]) // 2 for k in range(len(glyphs) + 1)]  # short loca: halves
    count = len(glyphs)
    tables = {
        b"OS/2": struct.pack(
            ">HhHHH11h10s4I4s3H3h2H2I2h3H",
            *(4, NARROW, 400, 5, 0, 650, 600, 0, 75, 650, 600, 0, 350, 50, 250, 0),
            bytes(10),
            *(0, 0, 0, 0),
            b"TOCR",
            *(0x40, 0x20, 0xFFFF, ASCENT, -DESCENT, 0, ASCENT, DESCENT, 1, 0, 0, ASCENT, 0, 0x20, 0),
        ),
        b"cmap": _cmap_table(),
        b"glyf": b"".join(glyphs),
        b"head": struct.pack(
            ">IIIIHHqqhhhhHHhhh",
            *(0x00010000, 0x00010000, 0, 0x5F0F3CF5, 0b1011, UNITS_PER_EM, 0, 0),
            *(0, -DESCENT, WIDE, ASCENT, 0, 3, 2, 0, 0),
        ),
        b"hhea": struct.pack(
            ">IhhhHhhhhhhhhhhhH", 0x00010000, ASCENT, -DESCENT, 0, WIDE, 0, 0, WIDE, 1, *([0] * 7), count
        ),
        b"hmtx": struct.pack(">" + "Hh" * count, *(v for advance in advances for v in (advance, 0))),
        b"loca": struct.pack(f">{count + 1}H", *offsets),
        b"maxp": struct.pack(">IH13H", 0x00010000, count, 4, 1, 0, 0, 2, *([0] * 8)),
        b"name": _name_table(),
        b"post": struct.pack(">IihhIIIII", 0x00030000, 0, -100, 50, 0, 0, 0, 0, 0),
    }
    return _sfnt(tables)


def _box_glyph(width: int) -> bytes:
    """A simple glyph of one clockwise contour: the rectangle from (0, -descent) to (width, ascent).
    Never drawn (the text is in render mode 3); its outline is what tells viewers where each
    character is: PDFium drops text whose glyphs have no extent across the baseline."""
    header = struct.pack(">hhhhhHH", 1, 0, -DESCENT, width, ASCENT, 3, 0)  # 1 contour, bbox, end point 3, no code
    flags = b"\x01" * 4  # on-curve points, coordinates as signed 16-bit deltas
    xs = struct.pack(">4h", 0, 0, width, 0)
    ys = struct.pack(">4h", -DESCENT, ASCENT + DESCENT, 0, -(ASCENT + DESCENT))
    return header + flags + xs + ys


def _cmap_table() -> bytes:
    """A Windows Unicode (3, 1) format 4 cmap: U+0020 -> glyph 1, and the closing segment."""
    ends, starts, deltas = (0x20, 0xFFFF), (0x20, 0xFFFF), ((1 - 0x20) & 0xFFFF, 1)
    segments = len(ends)
    subtable_length = 16 + 8 * segments
    subtable = struct.pack(">HHHHHHH", 4, subtable_length, 0, 2 * segments, 4, 1, 0)
    subtable += struct.pack(f">{segments}HH{segments}H{segments}H{segments}H", *ends, 0, *starts, *deltas, 0, 0)
    return struct.pack(">HHHHI", 0, 1, 3, 1, 12) + subtable


def _name_table() -> bytes:
    """The names (Windows, US English): family, style, unique id, full name, version, PostScript name."""
    family = FONT_NAME.decode()
    names = [(1, family), (2, "Regular"), (3, family), (4, family), (5, "Version 1.0"), (6, family)]
    records, strings = b"", b""
    for name_id, text in names:
        data = text.encode("utf-16-be")
        records += struct.pack(">HHHHHH", 3, 1, 0x409, name_id, len(data), len(strings))
        strings += data
    return struct.pack(">HHH", 0, len(names), 6 + len(records)) + records + strings


def _sfnt(tables: dict[bytes, bytes]) -> bytes:
    """An sfnt (TrueType) file of ``tables``: the directory, each table padded to four bytes, and
    the whole-font checksum in ``head``."""
    count = len(tables)
    power = 1 << (count.bit_length() - 1)
    header = struct.pack(">IHHHH", 0x00010000, count, power * 16, power.bit_length() - 1, (count - power) * 16)
    offset = len(header) + 16 * count
    directory, body, starts = b"", b"", {}
    for tag in sorted(tables):
        data = tables[tag]
        starts[tag] = offset + len(body)
        directory += struct.pack(">4sIII", tag, _checksum(data), starts[tag], len(data))
        body += data + bytes(-len(data) % 4)
    font = bytearray(header + directory + body)
    adjustment = (0xB1B0AFBA - _checksum(bytes(font))) & 0xFFFFFFFF
    struct.pack_into(">I", font, starts[b"head"] + 8, adjustment)  # head's checkSumAdjustment
    return bytes(font)


def _checksum(data: bytes) -> int:
    padded = data + bytes(-len(data) % 4)
    return sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF


# -- page images ----------------------------------------------------------------------------------


def _image(page: PdfPage, number: int) -> _Image:
    """The image XObject of ``page`` (page ``number``, 1-based, for errors)."""
    frame = _plain_jpeg_frame(page.image)
    if frame is not None:
        width, height, components = frame
        _check_size(number, page, width, height)
        space = b"/DeviceGray" if components == 1 else b"/DeviceRGB"
        return _Image(_image_entries(width, height, space, b"/DCTDecode"), page.image)
    return _decoded_image(page, number)


def _decoded_image(page: PdfPage, number: int) -> _Image:
    """The image decoded as the engine decodes it, stored as JPEG (from a JPEG) or Flate."""
    import cv2
    import numpy as np

    from engine.preprocess import load_image

    header = read_dimensions(page.image)
    limit = max(page.width * page.height, header[0] * header[1] if header else 0)
    pixels = load_image(page.image, name=f"page {number} image", max_pixels=limit, max_bytes=len(page.image) + 1)
    height, width = pixels.shape[:2]
    _check_size(number, page, width, height)
    if sniff_format(page.image) == "JPEG":
        ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError(f"page {number}: its image cannot be re-encoded as a JPEG")
        return _Image(_image_entries(width, height, b"/DeviceRGB", b"/DCTDecode"), encoded.tobytes())
    blue, green, red = pixels[:, :, 0], pixels[:, :, 1], pixels[:, :, 2]
    if np.array_equal(blue, green) and np.array_equal(green, red):
        space, samples = b"/DeviceGray", np.ascontiguousarray(blue).tobytes()
    else:
        space, samples = b"/DeviceRGB", np.ascontiguousarray(pixels[:, :, ::-1]).tobytes()
    return _Image(_image_entries(width, height, space, b"/FlateDecode"), zlib.compress(samples, 6))


def _image_entries(width: int, height: int, space: bytes, filter_name: bytes) -> bytes:
    return b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s /BitsPerComponent 8 /Filter %s" % (
        width,
        height,
        space,
        filter_name,
    )


def _check_size(number: int, page: PdfPage, width: int, height: int) -> None:
    if (width, height) != (page.width, page.height):
        raise ValueError(
            f"page {number}: its image is {width} x {height} pixels but the page says {page.width} x {page.height}"
        )


def _plain_jpeg_frame(data: bytes) -> tuple[int, int, int] | None:
    """``(width, height, components)`` of a JPEG a PDF viewer shows as the engine read it: complete,
    no EXIF turn, an 8-bit Huffman frame of gray or three-channel colour; else None."""
    if sniff_format(data) != "JPEG" or read_orientation(data) != 1 or is_truncated(data):
        return None
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # fill byte, markers without a length
            at += 1 if marker == 0xFF else 2
            continue
        if marker in _JPEG_AS_IS and at + 10 <= len(data):
            precision, height, width, components = struct.unpack_from(">BHHB", data, at + 4)
            return (width, height, components) if precision == 8 and components in (1, 3) else None
        if marker in _JPEG_OTHER_FRAMES or marker in (0xD9, 0xDA):
            return None
        at += 2 + struct.unpack_from(">H", data, at + 2)[0]
    return None


# -- overlaying an existing PDF -------------------------------------------------------------------


def _open_pdf(data: bytes, what: str) -> Any:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise ValueError(f"{what} cannot be opened as a PDF ({exc})") from exc


def _page_frame(document: Any, index: int) -> tuple[float, float, tuple[float, float, float, float, float, float]]:
    """Page ``index`` as a viewer shows it: its width and height in points (the crop box, turned by
    ``/Rotate``), and the matrix from that upright frame (origin bottom-left) to the page's own
    user space."""
    page = document[index]
    try:
        left, bottom, right, top = page.get_bbox()
        rotate = page.get_rotation() % 360
    finally:
        page.close()
    matrices = {
        0: (1.0, 0.0, 0.0, 1.0, left, bottom),
        90: (0.0, 1.0, -1.0, 0.0, right, bottom),
        180: (-1.0, 0.0, 0.0, -1.0, right, top),
        270: (0.0, -1.0, 1.0, 0.0, left, top),
    }
    width, height = right - left, top - bottom
    if rotate in (90, 270):
        width, height = height, width
    return width, height, matrices[rotate]


def _stamp(document: Any, layer: Any, layer_index: int, index: int, matrix: tuple[float, ...]) -> None:
    """Draw page ``layer_index`` of ``layer`` as a form XObject over page ``index`` of ``document``."""
    import pypdfium2 as pdfium

    xobject = layer.page_as_xobject(layer_index, document)
    try:
        form = xobject.as_pageobject()
        form.set_matrix(pdfium.PdfMatrix(*matrix))
        page = document[index]
        try:
            page.insert_obj(form)
            page.gen_content()
        finally:
            page.close()
    finally:
        xobject.close()
