"""A result's source image, found safely inside the shared folder, and a copy with its text boxes drawn.

A store row names its file by path. The web serves that file only when the path still resolves
(symlinks followed) to a regular file inside the shared folder, so a row that points elsewhere,
or a symlink planted in the folder, can never expose another file of the server.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from config.settings import EngineSettings
from engine.imageheader import sniff_format
from engine.preprocess import load_image

log = logging.getLogger(__name__)

MIMETYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
}
# Anything else (a PDF, an HTML page, an SVG dropped in the folder) is served as opaque bytes, so a
# browser never renders it in the web's origin.
OPAQUE = "application/octet-stream"
_SNIFF_BYTES = 64
BOX_COLOUR = (0, 170, 0)  # BGR


def source_file(path: str, shared_dir: Path) -> Path | None:
    """The resolved file at ``path`` when it is a regular file inside ``shared_dir``, else None."""
    try:
        root = shared_dir.resolve(strict=True)
        resolved = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):  # gone, unreadable, or a symlink loop
        return None
    if not resolved.is_relative_to(root):
        log.warning("refused to serve %s: outside the shared folder %s", resolved, root)
        return None
    return resolved if resolved.is_file() else None


def mimetype_of(handle: IO[bytes]) -> str:
    """The content type of an open file from its first bytes (the file position is restored)."""
    start = handle.tell()
    head = handle.read(_SNIFF_BYTES)
    handle.seek(start)
    return MIMETYPES.get(sniff_format(head) or "", OPAQUE)


def annotated_png(path: Path, lines: list[dict[str, Any]], engine: EngineSettings, name: str) -> bytes:
    """The image at ``path`` (decoded as the engine decodes it) with each line's box drawn, as PNG.

    ``name`` is what an :class:`~engine.errors.ImageError` shows (never the server-side path).
    """
    image = load_image(path, name=name, max_pixels=engine.max_image_pixels, max_bytes=engine.max_file_bytes)
    thickness = max(2, round(max(image.shape[:2]) / 500))
    boxes = [quad for quad in (_quad(line) for line in lines) if quad is not None]
    if boxes:
        cv2.polylines(image, boxes, isClosed=True, color=BOX_COLOUR, thickness=thickness, lineType=cv2.LINE_AA)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"{name}: the annotated image could not be encoded as PNG")
    return encoded.tobytes()


def _quad(line: dict[str, Any]) -> np.ndarray | None:
    """A line's points as the int32 (N, 1, 2) array cv2 draws; None for a malformed row."""
    try:
        points = np.asarray(line.get("points"), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 2 or not np.isfinite(points).all():
        return None
    return np.rint(points).astype(np.int32).reshape(-1, 1, 2)
