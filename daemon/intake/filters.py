"""Which paths in the shared folder the watcher looks at, and which channel a file belongs to.

Clutter (editor locks, partial downloads, OS and NAS metadata) is skipped silently. Files that
are merely not images are *not* clutter: the pipeline records them as failed with a clear error,
so that a user who dropped a PDF sees why nothing came out.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path, PurePath

# The image files the engine reads, by extension (any case): what `teamocr ocr` picks from a folder
# and the upload API takes. The shared folder goes by content and records anything else as failed.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
DOCUMENT_EXTENSIONS = frozenset({".pdf"})  # read page by page (a multi-page TIFF is one too, by content)

# Whole names, compared case-insensitively (Windows and macOS shares are case-insensitive).
_CLUTTER_NAMES = {
    "thumbs.db": "Windows thumbnail cache",
    "desktop.ini": "Windows folder settings",
    ".ds_store": "macOS folder metadata",
    "@eadir": "Synology metadata folder",
    "#recycle": "NAS recycle bin",
    "$recycle.bin": "Windows recycle bin",
    "lost+found": "file system recovery folder",
}

# Name patterns, in the order they are checked; the first match gives the reason.
_CLUTTER_PATTERNS = (
    ("._*", "macOS resource fork"),
    ("~$*", "Office lock file"),
    ("*.part", "partial download"),
    ("*.crdownload", "partial download"),
    ("*.download", "partial download"),
    ("*.tmp", "temporary file"),
    ("*.swp", "editor swap file"),
)


def _name_reason(name: str) -> str | None:
    lowered = name.lower()
    if lowered in _CLUTTER_NAMES:
        return _CLUTTER_NAMES[lowered]
    for pattern, reason in _CLUTTER_PATTERNS:
        if fnmatch.fnmatchcase(lowered, pattern):
            return reason
    if name.startswith("."):
        return "hidden"
    return None


def is_clutter(rel_path: PurePath) -> str | None:
    """Why ``rel_path`` (relative to the watched folder) is skipped, or None when it is not.

    Every component counts: a file inside ``@eaDir/`` or ``.git/`` is clutter too.
    The reason names the offending component, e.g. ``"partial download: scan.jpg.part"``.
    """
    for part in rel_path.parts:
        if part in ("", ".", "..", "/"):
            continue
        reason = _name_reason(part)
        if reason is not None:
            return f"{reason}: {part}"
    return None


def channel_of(root: Path, path: Path) -> str:
    """The first folder level of ``path`` under ``root``; "" for a file directly in ``root``.

    Relative paths are taken from the current directory. Raises ValueError when ``path`` is
    not under ``root``.
    """
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        raise ValueError(f"{path} is not inside the watched folder {root}") from None
    return rel.parts[0] if len(rel.parts) > 1 else ""


def relative_inside(root: Path, path: Path) -> PurePath | None:
    """``path`` relative to ``root`` after resolving symlinks; None when it lands outside ``root``.

    This is what refuses a symlink that escapes the shared folder (``photo.jpg -> /etc/passwd``).
    """
    real_root = Path(os.path.realpath(root))
    real_path = Path(os.path.realpath(path))
    try:
        return real_path.relative_to(real_root)
    except ValueError:
        return None


def is_image_name(name: str) -> bool:
    """True for a visible file name with one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def is_document_name(name: str) -> bool:
    """True for a visible file name with one of :data:`DOCUMENT_EXTENSIONS` (any case)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in DOCUMENT_EXTENSIONS
