"""load_image on odd and hostile inputs: bad files, non-images, bombs, truncation, odd paths.

Every input is made here, in tmp_path; decoding of each image format is in test_preprocess_formats.py.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ImageError, ImageTooLargeError
from engine.preprocess import load_image
from tests.engine.imagekit import LIMITS, assert_bgr, encode, noise, png_chunk, write


def png(width: int, height: int, color_type: int, rows: bytes, extra: bytes = b"", depth: int = 8) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + extra
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def refused(path_or_data: Path | bytes, *words: str, kind: type[ImageError] = ImageError, **limits: int) -> ImageError:
    with pytest.raises(kind) as info:
        load_image(path_or_data, **{**LIMITS, **limits})
    message = str(info.value)
    if isinstance(path_or_data, Path):
        assert info.value.source == str(path_or_data) and message.startswith(str(path_or_data))
    for word in words:
        assert word in message
    return info.value


def test_empty_file(tmp_path: Path) -> None:
    refused(write(tmp_path, "empty.png", b""), "empty file")


@pytest.mark.parametrize("cut", ["no_eoi", "half", "header"])
def test_truncated_jpeg(tmp_path: Path, cut: str) -> None:
    data = encode(".jpg", noise())
    data = {"no_eoi": data[:-2], "half": data[: len(data) // 2], "header": data[:40]}[cut]
    refused(write(tmp_path, "scan.jpg", data), "truncated", "JPEG")


@pytest.mark.parametrize("cut", ["no_iend", "half"])
def test_truncated_png(tmp_path: Path, cut: str) -> None:
    data = encode(".png", noise())
    data = data[:-12] if cut == "no_iend" else data[: len(data) // 2]
    refused(write(tmp_path, "shot.png", data), "truncated PNG")


@pytest.mark.parametrize("ext", [".gif", ".webp", ".tiff", ".bmp"])
def test_truncated_other_formats(tmp_path: Path, ext: str) -> None:
    data = encode(ext, noise())
    refused(write(tmp_path, "part" + ext, data[: len(data) * 2 // 3]), "truncated")


@pytest.mark.parametrize(
    ("name", "data", "looks_like"),
    [
        ("notes.png", b"meeting notes\nsecond line\n", "text"),
        ("page.png", b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML"),
        ("logo.png", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        ("doc.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
    ],
)
def test_non_images_are_named(tmp_path: Path, name: str, data: bytes, looks_like: str) -> None:
    refused(write(tmp_path, name, data), f"not a supported image (looks like {looks_like})")


def test_zip_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "photos.jpg"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "hello")
    refused(path, "looks like ZIP")


def test_unsupported_image_format(tmp_path: Path) -> None:
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\x00" * 16
    refused(write(tmp_path, "IMG_0001.png", heic), "unsupported image format HEIC")


@pytest.mark.parametrize("side", [40_000, 20_000])
def test_png_bomb_refused_from_header(tmp_path: Path, side: int) -> None:
    # A few hundred bytes that claim side x side pixels; decoding would allocate gigabytes.
    data = png(side, side, 2, zlib.compress(b"\x00" * 1000))
    start = time.perf_counter()
    error = refused(write(tmp_path, "bomb.png", data), f"{side} x {side}", "over the limit", kind=ImageTooLargeError)
    assert time.perf_counter() - start < 10.0  # refused from the header, not decoded
    assert f"{side * side:,} pixels" in error.reason


def test_jpeg_bomb_refused_from_header(tmp_path: Path) -> None:
    data = bytearray(encode(".jpg", noise(16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)
    refused(write(tmp_path, "bomb.jpg", bytes(data)), "60000 x 60000", kind=ImageTooLargeError)


def test_pixel_limit_applies_to_real_images(tmp_path: Path) -> None:
    path = write(tmp_path, "big.png", encode(".png", noise(100, 100)))
    refused(path, "100 x 100", kind=ImageTooLargeError, max_pixels=9_999)
    assert_bgr(load_image(path, max_pixels=10_000, max_bytes=1_000_000), 100, 100)


def test_one_pixel_png(tmp_path: Path) -> None:
    image = load_image(write(tmp_path, "dot.png", encode(".png", np.full((1, 1, 3), 7, np.uint8))), **LIMITS)
    assert_bgr(image, 1, 1)
    assert image[0, 0].tolist() == [7, 7, 7]


def test_file_over_max_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "huge.png", encode(".png", noise()))
    refused(path, "bytes, over the limit of 1,000", kind=ImageTooLargeError, max_bytes=1_000)
    refused(path.read_bytes(), "<bytes>: data is", kind=ImageTooLargeError, max_bytes=1_000)


def test_unicode_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "发票 📄 scan 01.png", encode(".png", noise(8, 9)))
    assert_bgr(load_image(path, **LIMITS), 8, 9)
    refused(write(tmp_path, "空 file 😀.png", b""), "空 file 😀.png: empty file")


def test_directory_named_like_an_image(tmp_path: Path) -> None:
    (tmp_path / "album.png").mkdir()
    refused(tmp_path / "album.png", "is a directory")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="the platform has no FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    errors: list[ImageError] = []

    def attempt() -> None:
        with pytest.raises(ImageError) as info:
            load_image(fifo, **LIMITS)
        errors.append(info.value)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        with open(fifo, "wb"):  # give the blocked reader a writer so the thread can end
            pass
        pytest.fail("load_image blocked on a FIFO")
    assert errors and "FIFO" in errors[0].reason and errors[0].source == str(fifo)


def test_missing_file(tmp_path: Path) -> None:
    refused(tmp_path / "gone.png", "file not found")


def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.png", encode(".png", noise(4, 4)))
    path.chmod(0)
    try:
        if os.name == "posix" and os.geteuid() == 0:
            assert_bgr(load_image(path, **LIMITS), 4, 4)  # root reads it regardless of mode bits
        else:
            refused(path, "permission denied")
    finally:
        path.chmod(0o600)


def test_symlink_to_file(tmp_path: Path) -> None:
    target = write(tmp_path, "real.png", encode(".png", noise(6, 5)))
    link = tmp_path / "link.png"
    link.symlink_to(target)
    assert_bgr(load_image(link, **LIMITS), 6, 5)


def test_bytes_input_and_names() -> None:
    data = encode(".png", noise(3, 2))
    assert_bgr(load_image(data, **LIMITS), 3, 2)
    assert_bgr(load_image(bytearray(data), **LIMITS), 3, 2)
    assert str(refused(b"")) == "<bytes>: empty file"
    with pytest.raises(ImageError, match=r"^upload\.png: empty file$"):
        load_image(b"", name="upload.png", **LIMITS)


def test_name_overrides_path_in_messages(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        load_image(write(tmp_path, "x.png", b""), name="inbox/x.png", **LIMITS)
    assert info.value.source == "inbox/x.png"


def test_bad_limits_are_a_value_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        load_image(b"x", max_pixels=0, max_bytes=10)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".gif", ".bmp", ".tiff", ".webp"])
def test_mangled_bytes_give_an_image_or_an_image_error(ext: str) -> None:
    data = encode(ext, noise(40, 60))
    rng = np.random.default_rng(3)
    for _ in range(30):
        mangled = np.frombuffer(data, np.uint8).copy()
        mangled[rng.integers(0, len(data), 6)] = rng.integers(0, 256, 6)
        try:
            image = load_image(mangled.tobytes(), **LIMITS)
        except ImageError:
            continue
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
