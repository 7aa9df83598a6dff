"""A result's source image, read safely from the shared folder, and a copy with its text boxes drawn.

A store row names its file by path, and the team may replace, swap or link that path since. The
web opens it with :func:`daemon.intake.safeopen.open_in_share`: folder by folder from the shared
folder's root, following no link on the way (so the file lies in that very folder of the share,
which is what ``os.path.realpath`` of its folder would say), in the channel folder its result
belongs to. It then reads the bytes and serves them only when their MD5 is the one the result
holds: a file swapped for a link, for another channel's file or for other content answers
:class:`SourceChanged` (410), never another file's bytes.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from config.settings import EngineSettings
from daemon.intake.filters import channel_of
from daemon.intake.safeopen import RefusedFile, open_in_share
from engine.documents import page_as_read
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


class SourceGone(Exception):
    """The file, or a folder on its way, is no longer there (or no longer readable): 404."""


class SourceChanged(Exception):
    """The file at the result's path is not the file that was read: other bytes, a link, outside its
    channel (410). The message names the file as the member knows it, never the server's path."""

    def __init__(self, name: str, why: str = "has changed since it was read") -> None:
        super().__init__(f"the file {name} {why}")


def verified_source(
    path: str, *, shared_dir: Path, channel: str, size: int, md5: str, name: str, follow: bool = False
) -> bytes:
    """The bytes of the result's file at ``path``: a regular file reached without a link inside
    ``shared_dir``'s folder of ``channel``, of ``size`` bytes whose MD5 is ``md5``.

    ``follow`` is ``daemon.follow_symlinks`` (a link to a file of the same channel, as intake read
    it). Raises :class:`SourceGone` or :class:`SourceChanged`; ``name`` is what their messages show.
    """
    if not md5:
        raise SourceChanged(name, "was never read (its result holds no checksum), so it is not served")
    try:
        if channel_of(shared_dir, Path(path)) != channel:
            raise SourceChanged(name, "is no longer in its channel's folder")
    except ValueError:
        log.warning("refused to serve %s: not inside the shared folder %s", path, shared_dir)
        raise SourceChanged(name) from None
    try:
        fd = open_in_share(shared_dir, path, follow=follow)
    except RefusedFile as exc:
        log.warning("refused to serve %s: %s", path, exc.reason)
        raise SourceChanged(name) from None
    except OSError as exc:  # gone, a folder on its way gone, unreadable
        raise SourceGone(f"{name}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        if os.fstat(handle.fileno()).st_size != size:
            raise SourceChanged(name)
        data = handle.read(size + 1)
    if len(data) != size or hashlib.md5(data).hexdigest() != md5:
        log.warning("refused to serve %s: its bytes are no longer those of MD5 %s", path, md5)
        raise SourceChanged(name)
    return data


def mimetype_of(data: bytes) -> str:
    """The content type of a file from its first bytes."""
    return MIMETYPES.get(sniff_format(data[:_SNIFF_BYTES]) or "", OPAQUE)


def annotated_png(
    data: bytes, lines: list[dict[str, Any]], engine: EngineSettings, name: str, page: int | None = None
) -> bytes:
    """The image in ``data`` (decoded as the engine decodes it) with each line's box drawn, as PNG;
    with ``page``, that page of a document (rendered as for OCR) with the boxes of its lines.

    ``name`` is what an :class:`~engine.errors.ImageError` shows (never the server-side path).
    """
    if page is None:
        image = load_image(data, name=name, max_pixels=engine.max_image_pixels, max_bytes=engine.max_file_bytes)
    else:
        image = page_image(data, page, engine, name)
        lines = [line for line in lines if line.get("page", 1) == page]
    return drawn_png(image, lines, name)


def page_image(data: bytes, page: int, engine: EngineSettings, name: str) -> np.ndarray:
    """Page ``page`` of the document in ``data``, rendered as the engine renders it for OCR."""
    return page_as_read(data, name, page, engine)


def page_png(data: bytes, page: int, engine: EngineSettings, name: str) -> bytes:
    """Page ``page`` of the document in ``data`` as PNG (its picture, no boxes)."""
    return drawn_png(page_image(data, page, engine, name), [], name)


def drawn_png(image: np.ndarray, lines: list[dict[str, Any]], name: str) -> bytes:
    """``image`` with each line's box drawn, encoded as PNG."""
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
