"""Read what an image container says about itself without decoding any pixels.

The preprocessor asks three questions of raw bytes before it lets OpenCV allocate
anything: what format is this (:func:`sniff_format`), how many pixels will it decode
to (:func:`read_dimensions`, the decompression-bomb guard), and is the container
complete (:func:`is_truncated`, so a file still being copied is not read as a whole
page).  :func:`read_orientation` finds the EXIF orientation, which OpenCV ignores
when asked to keep the alpha channel.

Every function here takes hostile input: it never raises on malformed data, it
answers "don't know" (``None``, ``False`` or ``1``) and leaves the verdict to the decoder.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Markers without a length field: TEM, RST0-7, SOI, EOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
_JPEG_EOI, _JPEG_SOS, _JPEG_APP1 = 0xD9, 0xDA, 0xE1
# Inside entropy-coded data 0xFF is followed by 0x00 (stuffing), RSTn or more 0xFF fill;
# anything else is the next marker.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_END = -1  # pseudo-marker: the data ran out before the container ended

_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_TIFF_WIDTH, _TIFF_LENGTH, _TIFF_ORIENTATION = 256, 257, 274
_MAX_IFD_ENTRIES = 1024
_PNM = re.compile(rb"P[1-7]\s")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_EXIF_PREFIX = b"Exif\x00\x00"
_OTHER_MAGIC = (
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"8BPS", "PSD"),
    (b"%PDF-", "PDF"),
    (b"PK\x03\x04", "ZIP"),
    (b"PK\x05\x06", "ZIP"),
    (b"\x1f\x8b", "GZIP"),
    (b"Rar!\x1a\x07", "RAR"),
    (b"7z\xbc\xaf\x27\x1c", "7Z"),
)


def sniff_format(data: bytes) -> str | None:
    """Name the format of ``data`` from its first bytes, or ``None`` if unrecognised.

    Image formats come back as ``"PNG"``, ``"JPEG"``, ``"GIF"``, ``"BMP"``, ``"WEBP"``,
    ``"TIFF"`` (those the engine decodes) or ``"AVIF"``, ``"HEIC"``, ``"JPEG 2000"``,
    ``"PSD"``, ``"PNM"``; other things a user may drop in a folder come back as
    ``"PDF"``, ``"ZIP"``, ``"GZIP"``, ``"RAR"``, ``"7Z"``, ``"MP4"``, ``"SVG"``,
    ``"HTML"``, ``"XML"`` or ``"text"``, for error messages.
    """
    head = bytes(data[:16])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:2] == b"BM" and len(data) >= 18 and struct.unpack_from("<I", data, 14)[0] in _BMP_HEADER_SIZES:
        return "BMP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        return "HEIC" if brand in _HEIF_BRANDS else "MP4"
    for magic, name in _OTHER_MAGIC:
        if head.startswith(magic):
            return name
    if _PNM.match(head):
        return "PNM"
    return _sniff_text(bytes(data[:2048]))


def _sniff_text(sample: bytes) -> str | None:
    if _CONTROL.search(sample):
        return None
    lowered = sample.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if b"<svg" in lowered:
        return "SVG"
    if lowered.startswith(b"<!doctype html") or b"<html" in lowered:
        return "HTML"
    if lowered.startswith(b"<?xml"):
        return "XML"
    return "text"


def read_dimensions(data: bytes) -> tuple[int, int] | None:
    """Return ``(width, height)`` as the container header declares it, without decoding.

    Supports PNG (IHDR), JPEG (the first SOFn), GIF (logical screen), BMP, WebP
    (VP8, VP8L, VP8X) and TIFF/BigTIFF (the first IFD).  Returns ``None`` for other
    formats and for headers too short or malformed to read.
    """
    try:
        return _read_dimensions(data, sniff_format(data))
    except (struct.error, IndexError):
        return None


def _read_dimensions(data: bytes, fmt: str | None) -> tuple[int, int] | None:
    if fmt == "PNG":
        if data[12:16] != b"IHDR":
            return None
        return struct.unpack_from(">II", data, 16)
    if fmt == "JPEG":
        for marker, start, _ in _jpeg_segments(data):
            if marker in _JPEG_SOF:
                height, width = struct.unpack_from(">HH", data, start + 1)
                return width, height
            if marker in (_JPEG_SOS, _JPEG_EOI, _END):
                return None
        return None
    if fmt == "GIF":
        return struct.unpack_from("<HH", data, 6)
    if fmt == "BMP":
        if struct.unpack_from("<I", data, 14)[0] == 12:
            return struct.unpack_from("<HH", data, 18)
        width, height = struct.unpack_from("<ii", data, 18)
        return abs(width), abs(height)  # negative height means a top-down bitmap
    if fmt == "WEBP":
        return _webp_dimensions(data)
    if fmt == "TIFF":
        tags = _tiff_ifd0(data)
        if _TIFF_WIDTH in tags and _TIFF_LENGTH in tags:
            return tags[_TIFF_WIDTH], tags[_TIFF_LENGTH]
    return None


def _webp_dimensions(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = struct.unpack_from("<I", data, 21)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def is_truncated(data: bytes) -> bool:
    """Tell whether a JPEG, PNG or WebP container ends before its declared end.

    JPEG must reach its EOI marker, PNG its IEND chunk, and WebP must hold as many
    bytes as its RIFF header declares.  A file that is still being written fails
    this even when the decoder could paint part of it.  Other formats (and data
    too mangled to walk) answer ``False``: the decoder judges those.
    """
    fmt = sniff_format(data)
    try:
        if fmt == "JPEG":
            return all(marker != _JPEG_EOI for marker, _, _ in _jpeg_segments(data))
        if fmt == "PNG":
            return any(chunk == _END for chunk, _, _ in _png_chunks(data))
        if fmt == "WEBP":
            return len(data) < 8 + struct.unpack_from("<I", data, 4)[0]
    except (struct.error, IndexError):
        return True
    return False


def read_orientation(data: bytes) -> int:
    """Return the EXIF orientation (1-8) of a JPEG, PNG, WebP or TIFF; 1 when absent or invalid."""
    try:
        tiff = _exif_block(data, sniff_format(data))
        value = _tiff_ifd0(tiff).get(_TIFF_ORIENTATION, 1) if tiff else 1
    except (struct.error, IndexError):
        return 1
    return value if 1 <= value <= 8 else 1


def _exif_block(data: bytes, fmt: str | None) -> bytes | None:
    """Return the TIFF-structured EXIF data embedded in the container, if any."""
    if fmt == "TIFF":
        return data
    if fmt == "JPEG":
        for marker, start, end in _jpeg_segments(data):
            if marker == _JPEG_APP1 and data[start : start + 6] == _EXIF_PREFIX:
                return data[start + 6 : end]
            if marker in (_JPEG_SOS, _JPEG_EOI, _END):
                break
    elif fmt == "PNG":
        for chunk, start, end in _png_chunks(data):
            if chunk == b"eXIf":
                return data[start:end]
            if chunk in (b"IDAT", _END):
                break
    elif fmt == "WEBP":
        pos = 12
        while pos + 8 <= len(data):
            size = struct.unpack_from("<I", data, pos + 4)[0]
            if data[pos : pos + 4] == b"EXIF":
                block = data[pos + 8 : pos + 8 + size]
                return block.removeprefix(_EXIF_PREFIX)
            pos += 8 + size + (size & 1)
    return None


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield ``(marker, payload_start, payload_end)`` through a whole JPEG, entropy data skipped.

    Stops after EOI, or yields ``_END`` when the data runs out first.  Stray bytes
    between segments are skipped the way libjpeg does.
    """
    size = len(data)
    pos = 2
    while True:
        pos = data.find(b"\xff", pos)
        while 0 <= pos < size and data[pos] == 0xFF:
            pos += 1
        if pos < 0 or pos >= size:
            yield _END, size, size
            return
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE or marker == _JPEG_EOI:
            yield marker, pos, pos
            if marker == _JPEG_EOI:
                return
            continue
        if pos + 2 > size:
            yield _END, size, size
            return
        length = struct.unpack_from(">H", data, pos)[0]
        if length < 2 or pos + length > size:
            yield _END, size, size
            return
        yield marker, pos + 2, pos + length
        pos += length
        if marker == _JPEG_SOS:
            found = _JPEG_MARKER.search(data, pos)
            pos = found.start() if found else size


def _png_chunks(data: bytes) -> Iterator[tuple[bytes | int, int, int]]:
    """Yield ``(chunk_type, data_start, data_end)`` up to IEND, or ``_END`` if the data runs out."""
    size = len(data)
    pos = 8
    while True:
        if pos + 12 > size:
            yield _END, size, size
            return
        length = struct.unpack_from(">I", data, pos)[0]
        chunk = data[pos + 4 : pos + 8]
        if not chunk.isalpha():
            return  # not a chunk boundary: corrupt, let the decoder say so
        start = pos + 8
        if start + length + 4 > size:
            yield _END, size, size
            return
        yield chunk, start, start + length
        if chunk == b"IEND":
            return
        pos = start + length + 4


def _tiff_ifd0(data: bytes) -> dict[int, int]:
    """Return the single-valued SHORT/LONG/LONG8 tags of the first IFD of a TIFF (or EXIF) structure."""
    order = {b"II": "<", b"MM": ">"}.get(bytes(data[:2]))
    if order is None:
        return {}
    magic = struct.unpack_from(order + "H", data, 2)[0]
    if magic == 42:
        offset = struct.unpack_from(order + "I", data, 4)[0]
        count_fmt, entry_fmt, entry_size = "H", "HHI4s", 12
    elif magic == 43:  # BigTIFF
        offset = struct.unpack_from(order + "Q", data, 8)[0]
        count_fmt, entry_fmt, entry_size = "Q", "HHQ8s", 20
    else:
        return {}
    count = struct.unpack_from(order + count_fmt, data, offset)[0]
    pos = offset + struct.calcsize(count_fmt)
    tags: dict[int, int] = {}
    for _ in range(min(count, _MAX_IFD_ENTRIES)):
        tag, kind, values, value = struct.unpack_from(order + entry_fmt, data, pos)
        pos += entry_size
        if values != 1:
            continue  # arrays are stored elsewhere; only single values are needed here
        if kind == 3:
            tags[tag] = struct.unpack_from(order + "H", value)[0]
        elif kind == 4:
            tags[tag] = struct.unpack_from(order + "I", value)[0]
        elif kind == 16:
            tags[tag] = struct.unpack_from(order + "Q", value)[0]
    return tags
