"""Hostile files, built cheaply in memory (numpy, cv2, Pillow, zlib, struct), and the table of kinds.

Every kind makes its bytes from a ``salt`` so that the folder run and the upload run never send the
same content (the intake would record the second as a duplicate of the first). The bomb PNG is a
header declaring 40000 x 40000 pixels in front of a small compressed IDAT: nothing is allocated.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

import cv2
import numpy as np
import pypdfium2 as pdfium
from PIL import Image

# -- images ----------------------------------------------------------------------------------------


def text_pixels(words: str, salt: int) -> np.ndarray:
    """A white BGR image with ``words`` in black, and a salted second line so the bytes differ."""
    image = np.full((120, 640, 3), 255, np.uint8)
    cv2.putText(image, words, (16, 56), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(image, f"ref {1000 + salt}", (16, 104), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (30, 30, 30), 2, cv2.LINE_AA)
    return image


def encode(ext: str, image: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok, ext
    return data.tobytes()


def png(words: str, salt: int) -> bytes:
    return encode(".png", text_pixels(words, salt))


def jpeg(words: str, salt: int) -> bytes:
    return encode(".jpg", text_pixels(words, salt), (cv2.IMWRITE_JPEG_QUALITY, 92))


def _pil(words: str, salt: int) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(text_pixels(words, salt), cv2.COLOR_BGR2RGB))


def _pil_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def cmyk_jpeg(words: str, salt: int) -> bytes:
    return _pil_bytes(_pil(words, salt).convert("CMYK"), "JPEG", quality=92)


def png16(words: str, salt: int) -> bytes:
    return encode(".png", text_pixels(words, salt).astype(np.uint16) * 257)


def palette_alpha_png(words: str, salt: int) -> bytes:
    """A palette PNG whose white background index is fully transparent (a tRNS chunk)."""
    paletted = _pil(words, salt).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    white = min(range(16), key=lambda i: -sum(paletted.getpalette()[3 * i : 3 * i + 3]))
    return _pil_bytes(paletted, "PNG", transparency=white)


def animated_gif(words: str, salt: int) -> bytes:
    """Two frames: the text first, then a blank frame (the engine reads the first)."""
    first = _pil(words, salt).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    blank = Image.new("P", first.size, 0)
    return _pil_bytes(first, "GIF", save_all=True, append_images=[blank], duration=200, loop=0)


def multipage_tiff(words: str, salt: int) -> bytes:
    """Two pages: the text first, then another page (the engine reads the first)."""
    second = _pil("second page", salt + 1)
    return _pil_bytes(_pil(words, salt), "TIFF", save_all=True, append_images=[second])


def one_pixel(salt: int) -> bytes:
    return encode(".png", np.full((1, 1, 3), salt % 256, np.uint8))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(salt: int, side: int = 40000) -> bytes:
    """A valid-looking grey PNG declaring ``side`` x ``side`` pixels; the IDAT holds a few rows only."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (side + 1) * 4 + bytes([salt % 256]), 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


# -- documents -------------------------------------------------------------------------------------


def scanned_pdf(words: str, salt: int) -> bytes:
    """An image-only PDF: one page, the salted text image as a 150 DPI scan."""
    from tests.engine.docmakers import image_page, saved

    pdf = pdfium.PdfDocument.new()
    image_page(pdf, text_pixels(words, salt))
    return saved(pdf)


def turned_pdf(words: str, salt: int) -> bytes:
    """A scan turned a quarter (as a phone or scanner delivers a page sideways)."""
    from tests.engine.docmakers import image_page, saved

    pdf = pdfium.PdfDocument.new()
    image_page(pdf, cv2.rotate(text_pixels(words, salt), cv2.ROTATE_90_CLOCKWISE))
    return saved(pdf)


def born_digital_pdf(words: str, salt: int) -> bytes:
    """A page with a text layer (an export from an office program): taken as it is, no OCR."""
    from tests.engine.docmakers import saved, text_page

    pdf = pdfium.PdfDocument.new()
    text_page(pdf, [(words, 72, 100), (f"ref {1000 + salt}", 72, 130)])
    return saved(pdf)


def mixed_pages_pdf(words: str, salt: int) -> bytes:
    """A born-digital cover page, then a scan."""
    from tests.engine.docmakers import image_page, saved, text_page

    pdf = pdfium.PdfDocument.new()
    text_page(pdf, [(f"Cover {1000 + salt}", 72, 100)])
    image_page(pdf, text_pixels(words, salt))
    return saved(pdf)


def encrypted_pdf(salt: int) -> bytes:
    """A password-protected PDF whose file ID carries the salt."""
    from tests.engine.docmakers import encrypted_pdf as locked

    return locked().replace(b"<" + b"01" * 16 + b">", b"<%032x>" % salt, 1)


def tiny_pages_pdf(salt: int, pages: int = 1500) -> bytes:
    """Thousands of blank pages a point or so wide (the salt in their width): read up to max_pages."""
    from tests.engine.docmakers import blank_pdf

    return blank_pdf(pages, 1 + salt / 1000, 1)


def poster_pdf(salt: int) -> bytes:
    """One page 200 inches square: rendered within det_max_pixels, as a huge image would be."""
    from tests.engine.docmakers import blank_pdf

    return blank_pdf(1, 14_400 + salt, 14_400)


def svg(salt: int) -> bytes:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="50"><text x="5" y="30">'
        f"svg {salt}</text><script>alert(1)</script></svg>"
    ).encode()


def html(salt: int) -> bytes:
    return f"<!doctype html><html><body><script>alert({salt})</script></body></html>".encode()


# -- ZIPs -------------------------------------------------------------------------------------------


def make_zip(members: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in members:
            archive.writestr(name, content, compress_type=method)
    return buffer.getvalue()


def zip_symlink(salt: int) -> bytes:
    link = zipfile.ZipInfo("link.png")
    link.external_attr = 0o120777 << 16
    return make_zip([(link, b"/etc/passwd"), (f"note{salt}.txt", b"x")])


def zip_bomb(salt: int) -> bytes:
    """One member of 50 MB of zeros (about 50 kB compressed): far over the 200:1 ratio."""
    member = zipfile.ZipInfo(f"bomb{salt}.png")
    member.compress_type = zipfile.ZIP_DEFLATED
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, archive.open(member, "w", force_zip64=False) as out:
        block = bytes(1 << 20)
        for _ in range(50):
            out.write(block)
    return buffer.getvalue()


def nested_zip(salt: int) -> bytes:
    inner = make_zip([("inner.png", one_pixel(salt))])
    return make_zip([("inner.zip", inner)])


# -- the table ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """How one kind must end.

    ``status``: "done" (``fragment`` in the OCR text, lower-cased), "failed" (``fragment`` in the
    recorded error), "skipped" (no record; ``fragment`` in a log line of the watcher), or for uploads
    "refused" (``fragment`` in the reply's per-file error entry, or in the JSON error of a 4xx).
    """

    status: str
    fragment: str = ""


@dataclass(frozen=True)
class Kind:
    """One hostile input: its file name, how to make its bytes, and how it must end each way.

    ``folder`` / ``upload`` None: that road cannot carry it (the reason is in ``note``).
    """

    name: str
    filename: str
    make: Callable[[int], bytes]
    folder: Expect | None
    upload: Expect | None
    note: str = ""


def _text(maker: Callable[[str, int], bytes], words: str) -> Callable[[int], bytes]:
    return lambda salt: maker(words, salt)


DONE_WORDS = "Receipt paid"
DONE = Expect("done", "receipt")
TRUNCATED = Expect("failed", "truncated")
PDF_BROKEN = Expect("failed", "truncated or corrupt PDF")
PDF_LOCKED = Expect("failed", "encrypted (password-protected) PDF")
ZIP_IN_FOLDER = Expect("failed", "not a supported image")  # the folder never opens ZIPs
NAME_255 = "n" * 251 + ".png"  # 255 bytes: the longest name a Linux folder holds

# Kinds that are plain bytes, carried by both roads (the folder as a file, the upload as a part).
KINDS: list[Kind] = [
    Kind("empty", "empty.png", lambda salt: b"", Expect("failed", "empty file"), Expect("refused", "empty file")),
    Kind("truncated_jpeg", "cut.jpg", lambda salt: truncated(jpeg(DONE_WORDS, salt)), TRUNCATED, TRUNCATED),
    Kind("truncated_png", "cut.png", lambda salt: truncated(png(DONE_WORDS, salt)), TRUNCATED, TRUNCATED),
    Kind("html_named_png", "page.png", html, Expect("failed", "looks like HTML"), Expect("failed", "looks like HTML")),
    Kind(
        "text_named_png",
        "notes.png",
        lambda salt: f"just some text {salt}\n".encode(),
        Expect("failed", "looks like text"),
        Expect("failed", "looks like text"),
    ),
    Kind(
        "bomb_png_40000x40000",
        "bomb.png",
        bomb_png,
        Expect("failed", "over the limit"),
        Expect("failed", "over the limit"),
    ),
    Kind("one_pixel", "dot.png", one_pixel, Expect("done"), Expect("done")),
    Kind(
        "over_size_limit",
        "huge.png",
        lambda salt: png(DONE_WORDS, salt) + bytes(2_100_000),
        Expect("failed", "over the limit"),
        Expect("failed", "over the limit"),
        "engine.max_file_bytes is 2 MB in these tests",
    ),
    Kind("animated_gif", "anim.gif", _text(animated_gif, DONE_WORDS), DONE, DONE),
    Kind("cmyk_jpeg", "cmyk.jpg", _text(cmyk_jpeg, DONE_WORDS), DONE, DONE),
    Kind("png_16bit", "deep.png", _text(png16, DONE_WORDS), DONE, DONE),
    Kind("png_palette_alpha", "palette.png", _text(palette_alpha_png, DONE_WORDS), DONE, DONE),
    Kind("multipage_tiff", "pages.tif", _text(multipage_tiff, DONE_WORDS), DONE, DONE),
    Kind("scanned_pdf", "scan.pdf", _text(scanned_pdf, DONE_WORDS), DONE, DONE),
    Kind("pdf_named_png", "scan.png", _text(scanned_pdf, DONE_WORDS), DONE, DONE),
    Kind("turned_pdf", "sideways.pdf", _text(turned_pdf, DONE_WORDS), DONE, DONE),
    Kind("born_digital_pdf", "export.pdf", _text(born_digital_pdf, DONE_WORDS), DONE, DONE),
    Kind("mixed_pages_pdf", "mixed.pdf", _text(mixed_pages_pdf, DONE_WORDS), DONE, DONE),
    Kind("truncated_pdf", "cut.pdf", lambda salt: truncated(scanned_pdf(DONE_WORDS, salt)), PDF_BROKEN, PDF_BROKEN),
    Kind("encrypted_pdf", "locked.pdf", encrypted_pdf, PDF_LOCKED, PDF_LOCKED),
    Kind("pdf_thousands_of_tiny_pages", "dust.pdf", tiny_pages_pdf, Expect("done"), Expect("done")),
    Kind("pdf_absurd_page", "poster.pdf", poster_pdf, Expect("done"), Expect("done")),
    Kind("svg", "drawing.svg", svg, Expect("failed", "looks like SVG"), Expect("refused", "not an image or ZIP")),
    Kind("svg_named_png", "drawing.png", svg, Expect("failed", "looks like SVG"), Expect("failed", "looks like SVG")),
    Kind("jpeg_named_png", "photo.png", _text(jpeg, DONE_WORDS), DONE, DONE),
    Kind("name_spaces", "my scan  of  receipt .png", _text(png, DONE_WORDS), DONE, DONE),
    Kind("name_chinese", "收据 扫描.png", _text(png, DONE_WORDS), DONE, DONE),
    Kind("name_emoji", "📷🧾 shot.png", _text(png, DONE_WORDS), DONE, DONE),
    # A raw line break breaks the multipart header (browsers send it as %0A: name_newline_encoded).
    Kind("name_newline", "line\nbreak.png", _text(png, DONE_WORDS), DONE, Expect("refused", "filename header")),
    Kind("name_newline_encoded", "line%0Abreak.png", _text(png, DONE_WORDS), DONE, DONE),
    Kind("name_255_bytes", NAME_255, _text(png, DONE_WORDS), DONE, DONE),
    Kind(
        "script_in_ocr_text",
        "xss.png",
        _text(png, "<script>alert(1)</script>"),
        Expect("done", "script"),
        Expect("done", "script"),
        "shown as text in the dashboard: tests/web/test_browser.py",
    ),
    Kind(
        "zip_dotdot_path",
        "slip.zip",
        lambda salt: make_zip([("../../x.png", one_pixel(salt))]),
        ZIP_IN_FOLDER,
        Expect("refused", "unsafe path in ZIP"),
    ),
    Kind(
        "zip_absolute_path",
        "abs.zip",
        lambda salt: make_zip([("/escape/abs.png", one_pixel(salt))]),
        ZIP_IN_FOLDER,
        Expect("refused", "unsafe path in ZIP"),
    ),
    Kind("zip_symlink", "link.zip", zip_symlink, ZIP_IN_FOLDER, Expect("refused", "symlink in ZIP")),
    Kind("zip_bomb", "bomb.zip", zip_bomb, ZIP_IN_FOLDER, Expect("refused", "ZIP bomb")),
    Kind("zip_nested", "nested.zip", nested_zip, ZIP_IN_FOLDER, Expect("refused", "nested ZIP not opened")),
]

# Kinds only the shared folder can hold (an upload is bytes and a name): see test_folder_hostile.py.
FOLDER_ONLY = {
    "symlink_outside": "an upload carries bytes, never a link",
    "symlink_inside": "an upload carries bytes, never a link",
    "fifo": "an upload carries bytes; a FIFO has none",
    "unix_socket": "an upload carries bytes; a socket has none",
    "folder_named_png": "an upload names files, never folders",
    "deleted_before_read": "the upload writes the file itself",
    "replaced_while_queued": "the upload writes the file itself",
    "unreadable_permissions": "the upload writes the file itself",
    "hidden_and_lock_files": "upload names are made visible (safe_name)",
    "replaced_by_symlink_outside": "the upload writes the file itself",
    "replaced_by_fifo": "the upload writes the file itself",
    "name_not_utf8": "through upload: a raw-byte multipart filename is its own test (a 400)",
}


def by_name(name: str) -> Kind:
    return next(kind for kind in KINDS if kind.name == name)
