"""What an uploaded file is called on the share, and what kind of file it is.

A client's file name is cut to a safe basename (:func:`safe_name`); a second file of that name is
numbered (:func:`numbered`); the kind (an image or PDF the workers read, a ZIP, or neither) is
decided by the extension, and for a name without a known one by the content (:func:`by_content`).
"""

from __future__ import annotations

import os
import unicodedata
from typing import IO

from daemon.intake.filters import DOCUMENT_EXTENSIONS, IMAGE_EXTENSIONS
from engine.imageheader import sniff_format

MAX_NAME_BYTES = 200
FALLBACK_NAME = "upload"
ZIP_EXTENSION = ".zip"
# Extensions for parts sent without one (a pasted clipboard image arrives as "blob").
MIME_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/bmp": ".bmp",
    "image/webp": ".webp",
    "image/tiff": ".tif",
    "image/gif": ".gif",
    "application/zip": ZIP_EXTENSION,
    "application/x-zip-compressed": ZIP_EXTENSION,
}
# Invisible characters that reorder text: "photo\u202egnp.exe" would display as "photoexe.png".
_BIDI = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
)
_WINDOWS_FORBIDDEN = str.maketrans({c: "_" for c in '<>:"|?*'})  # the share may be served over SMB


def safe_name(raw: str, mimetype: str = "") -> str:
    """The basename of a client's file name, safe to create in the upload folder.

    Path separators (either slash), NUL and control characters go; Unicode stays (NFC); the name
    is never hidden, never empty (``upload``) and at most 200 UTF-8 bytes, its extension kept.
    """
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cs")).translate(_BIDI)
    name = name.translate(_WINDOWS_FORBIDDEN)
    stem, dot, ext = name.rpartition(".")
    ext = ext.strip()
    if not dot or not ext or len(ext) > 16 or any(c.isspace() for c in ext):
        stem, ext = name, ""
    if not ext and mimetype in MIME_EXTENSIONS:
        ext = MIME_EXTENSIONS[mimetype][1:]
    stem = stem.strip()
    while stem.startswith((".", "~$")):  # hidden files and Office locks are skipped by the watcher
        stem = stem[1:] if stem[0] == "." else stem[2:]
    stem = stem.rstrip(". ").strip()
    if not stem or stem.lower() in _WINDOWS_RESERVED:
        stem = f"{FALLBACK_NAME}_{stem}" if stem else FALLBACK_NAME
    return _fit(stem, f".{ext}" if ext else "")


def _fit(stem: str, tail: str) -> str:
    """``stem + tail`` cut (in the stem, on a character boundary) to MAX_NAME_BYTES of UTF-8."""
    room = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    cut = stem.encode("utf-8")[: max(room, 1)].decode("utf-8", "ignore").rstrip(". ")
    return (cut or FALLBACK_NAME) + tail


def numbered(name: str, n: int) -> str:
    """``scan.png``, ``scan (2).png``, ``scan (3).png`` ... kept within MAX_NAME_BYTES."""
    if n == 1:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    return _fit(stem, f" ({n})" + (f".{ext}" if ext else ""))


def kind_of(name: str) -> str | None:
    """ "image" (a file the workers read: an image or a PDF), "zip", or None for anything else."""
    ext = os.path.splitext(name)[1].lower()
    if ext in IMAGE_EXTENSIONS or ext in DOCUMENT_EXTENSIONS:
        return "image"
    return "zip" if ext == ZIP_EXTENSION else None


# The formats the engine reads (images, PDFs), and ZIP, by what their first bytes say (engine.imageheader).
_CONTENT_EXTENSIONS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "GIF": ".gif",
    "WEBP": ".webp",
    "TIFF": ".tif",
    "BMP": ".bmp",
    "PDF": ".pdf",
    "ZIP": ZIP_EXTENSION,
}


def by_content(name: str, stream: IO[bytes]) -> str:
    """``name`` with the extension its content calls for (``scan`` or ``scan.dat`` holding a PNG
    is written as ``scan.png`` or ``scan.dat.png``, so the watcher takes it); unchanged when the
    content is no image or ZIP. The stream is left at its start."""
    head = stream.read(64)
    stream.seek(0)
    ext = _CONTENT_EXTENSIONS.get(sniff_format(head) or "")
    return _fit(name, ext) if ext else name


def is_image(name: str) -> bool:
    return kind_of(safe_name(name)) == "image"
