"""Turn an image file or buffer into the array the OCR pipeline expects.

:func:`load_image` returns a contiguous ``uint8`` BGR array of shape ``(H, W, 3)``
whatever came in: PNG, JPEG, BMP, WebP, TIFF (first page) or GIF (first frame);
grayscale, palette, 16-bit or with an alpha channel (flattened onto white, the way
a viewer shows a transparent screenshot); rotated as its EXIF orientation says.

Anything else fails with an :class:`~engine.errors.ImageError` that names the input
and the cause.  The checks run cheapest first, before any pixel is decoded: the file
is a regular file within the byte budget, the bytes are a supported format, the
header's pixel count is within the budget (:class:`~engine.errors.ImageTooLargeError`),
and the container is complete, so a file still being written is refused rather than
read as half a page.  Decoding uses OpenCV with ``IMREAD_UNCHANGED``, which keeps
alpha and bit depth but skips EXIF orientation, so orientation is applied here.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable

import cv2
import numpy as np

from engine.errors import ImageError, ImageTooLargeError
from engine.imageheader import is_truncated, read_dimensions, read_orientation, sniff_format

__all__ = ["SUPPORTED_FORMATS", "load_image", "sniff_format"]

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF"})
# Image formats that sniff_format recognises but the engine does not decode.
_OTHER_IMAGE_FORMATS = frozenset({"AVIF", "HEIC", "JPEG 2000", "PSD", "PNM"})
# OpenCV's TIFF decoder applies the orientation tag itself, even with IMREAD_UNCHANGED.
_ORIENTED_BY_DECODER = frozenset({"TIFF"})

_Transform = Callable[[np.ndarray], np.ndarray]
_ORIENTATIONS: dict[int, _Transform] = {
    2: lambda img: cv2.flip(img, 1),
    3: lambda img: cv2.rotate(img, cv2.ROTATE_180),
    4: lambda img: cv2.flip(img, 0),
    5: cv2.transpose,
    6: lambda img: cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE),
    7: lambda img: cv2.rotate(cv2.transpose(img), cv2.ROTATE_180),
    8: lambda img: cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE),
}
# Multiplier that maps a sample type's full range onto 0-255.
_DEPTH_SCALE = {np.dtype(np.uint16): 1 / 257, np.dtype(np.float32): 255.0, np.dtype(np.float64): 255.0}


def load_image(
    source: str | os.PathLike[str] | bytes,
    *,
    name: str | None = None,
    max_pixels: int,
    max_bytes: int,
) -> np.ndarray:
    """Read and decode one image into a contiguous ``uint8`` BGR ``(H, W, 3)`` array.

    ``source`` is a path or the encoded bytes themselves.  ``name`` is what error
    messages show; it defaults to the path, or ``"<bytes>"``.  Raises
    :class:`ImageTooLargeError` when the file is over ``max_bytes`` or the image over
    ``max_pixels`` (checked from the header before decoding, and again after), and
    :class:`ImageError` for a missing, unreadable, empty, truncated or non-image input.
    A FIFO, socket or device is refused without being opened for a blocking read.
    """
    if max_pixels <= 0 or max_bytes <= 0:
        raise ValueError(f"max_pixels and max_bytes must be positive, got {max_pixels} and {max_bytes}")
    data, label = read_source(source, name=name, max_bytes=max_bytes)
    return _decode(data, label, max_pixels)


def read_source(source: str | os.PathLike[str] | bytes, *, name: str | None, max_bytes: int) -> tuple[bytes, str]:
    """The bytes of a path or buffer of at most ``max_bytes``, and the name errors show."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name if name is not None else "<bytes>"
        data = bytes(source)
        if len(data) > max_bytes:
            raise ImageTooLargeError(label, f"data is {len(data):,} bytes, over the limit of {max_bytes:,}")
        return data, label
    label = name if name is not None else os.fsdecode(source)
    return _read_file(source, label, max_bytes), label


def _read_file(path: str | os.PathLike[str], label: str, max_bytes: int) -> bytes:
    """Read a regular file of at most ``max_bytes``; never blocks on a FIFO."""
    try:
        info = os.stat(path)
        _check_regular(info, label, max_bytes)
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, open must not wait
        # for a writer; fstat below then refuses it.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as handle:
            _check_regular(os.fstat(handle.fileno()), label, max_bytes)
            data = handle.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise ImageError(label, "file not found") from exc
    except PermissionError as exc:
        raise ImageError(label, "permission denied") from exc
    except OSError as exc:
        raise ImageError(label, f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise ImageTooLargeError(label, f"file grew past the limit of {max_bytes:,} bytes while being read")
    return data


def _check_regular(info: os.stat_result, label: str, max_bytes: int) -> None:
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise ImageError(label, "is a directory, not an image file")
    if stat.S_ISFIFO(mode):
        raise ImageError(label, "is a FIFO (named pipe), not a regular file")
    if not stat.S_ISREG(mode):
        raise ImageError(label, "is not a regular file (socket or device)")
    if info.st_size > max_bytes:
        raise ImageTooLargeError(label, f"file is {info.st_size:,} bytes, over the limit of {max_bytes:,}")


def _decode(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    if not data:
        raise ImageError(label, "empty file")
    fmt = sniff_format(data)
    if fmt is None or fmt not in SUPPORTED_FORMATS:
        raise ImageError(label, _unsupported_reason(fmt))
    size = read_dimensions(data)
    if size is None:
        raise ImageError(label, f"truncated or corrupt {fmt} header")
    _check_pixels(label, *size, max_pixels)
    if is_truncated(data):
        raise ImageError(label, f"truncated {fmt}: the data ends early (is the file still being written?)")
    try:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(label, f"truncated or corrupt {fmt} data") from exc
    if raw is None or raw.size == 0:
        raise ImageError(label, f"truncated or corrupt {fmt} data")
    _check_pixels(label, raw.shape[1], raw.shape[0], max_pixels)
    image = _to_bgr(_to_uint8(raw, label), label, premultiplied=fmt == "TIFF" and raw.dtype == np.uint8)
    orientation = 1 if fmt in _ORIENTED_BY_DECODER else read_orientation(data)
    if orientation != 1:
        image = _ORIENTATIONS[orientation](image)
    logger.debug("decoded %s: %s %dx%d, orientation %d", label, fmt, image.shape[1], image.shape[0], orientation)
    return np.ascontiguousarray(image)


def _unsupported_reason(fmt: str | None) -> str:
    if fmt is None:
        return "not a supported image (unrecognised binary data)"
    if fmt in _OTHER_IMAGE_FORMATS:
        supported = ", ".join(sorted(SUPPORTED_FORMATS))
        return f"unsupported image format {fmt} (supported: {supported})"
    return f"not a supported image (looks like {fmt})"


def _check_pixels(label: str, width: int, height: int, max_pixels: int) -> None:
    pixels = width * height
    if pixels > max_pixels:
        reason = f"image is {width} x {height} = {pixels:,} pixels, over the limit of {max_pixels:,}"
        raise ImageTooLargeError(label, reason)


def _to_uint8(image: np.ndarray, label: str) -> np.ndarray:
    """Scale 16-bit (by 1/257, so 65535 -> 255) and float (0-1) samples to 8 bits."""
    if image.dtype == np.uint8:
        return image
    scale = _DEPTH_SCALE.get(image.dtype)
    if scale is None:
        raise ImageError(label, f"unsupported sample type {image.dtype}")
    if image.dtype.kind == "f":
        image = np.nan_to_num(image, copy=False)
    # convertScaleAbs rounds and saturates in one pass without a wide temporary.
    return cv2.convertScaleAbs(image, alpha=scale)


def _to_bgr(image: np.ndarray, label: str, *, premultiplied: bool) -> np.ndarray:
    """Expand gray to BGR and flatten an alpha channel onto white."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if channels == 3:
        return image
    if channels == 2:
        gray = _flatten(image[:, :, :1], image[:, :, 1], premultiplied=premultiplied)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return _flatten(image[:, :, :3], image[:, :, 3], premultiplied=premultiplied)
    raise ImageError(label, f"unsupported number of channels: {channels}")


def _flatten(color: np.ndarray, alpha: np.ndarray, *, premultiplied: bool) -> np.ndarray:
    """Composite ``color`` over white using ``alpha`` (all uint8)."""
    if alpha.min() == 255:
        return np.ascontiguousarray(color)  # fully opaque, as most RGBA screenshots are
    alpha = np.ascontiguousarray(alpha)
    planes = [np.ascontiguousarray(color[:, :, i]) for i in range(color.shape[2])]
    # libtiff hands OpenCV 8-bit colour already multiplied by alpha.
    shown = planes if premultiplied else [cv2.multiply(plane, alpha, scale=1 / 255) for plane in planes]
    background = cv2.bitwise_not(alpha)  # 255 - alpha: how much white shows through
    return cv2.merge([cv2.add(plane, background) for plane in shown])
