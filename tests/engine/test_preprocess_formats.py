"""load_image decodes every supported format and pixel layout into uint8 BGR, oriented and flattened.

The images are made here with OpenCV (or, where OpenCV cannot write the variant, hand-built
bytes or Pillow, skipped when Pillow is absent).
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.preprocess import load_image
from tests.engine.imagekit import LIMITS, assert_bgr, encode, noise, png_chunk, write

RED, GREEN, BLUE, WHITE = (0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255)


def exif_orientation(value: int) -> bytes:
    """A minimal big-endian EXIF TIFF block holding only the Orientation tag."""
    return b"MM\x00*\x00\x00\x00\x08" + struct.pack(">HHHIHH", 1, 274, 3, 1, value, 0) + b"\x00" * 4


def jpeg_with_orientation(jpeg: bytes, value: int) -> bytes:
    payload = b"Exif\x00\x00" + exif_orientation(value)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def pil_bytes(image: object, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)  # type: ignore[attr-defined]
    return buf.getvalue()


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    animation = cv2.Animation()
    animation.frames = [np.full((10, 12, 3), RED, np.uint8), np.full((10, 12, 3), GREEN, np.uint8)]
    animation.durations = [100, 100]
    ok, buf = cv2.imencodeanimation(".gif", animation)
    assert ok
    image = load_image(write(tmp_path, "anim.gif", buf.tobytes()), **LIMITS)
    assert_bgr(image, 10, 12)
    assert np.abs(image.astype(int) - RED).max() <= 8


def test_cmyk_jpeg(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")  # OpenCV cannot write CMYK
    data = pil_bytes(pil.new("CMYK", (8, 6), (0, 255, 255, 0)), "JPEG", quality=95)
    image = load_image(write(tmp_path, "print.jpg", data), **LIMITS)
    assert_bgr(image, 6, 8)
    assert np.abs(image.astype(int) - RED).max() <= 8


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    gray = np.array([[0, 257 * 100, 65535, 128]], np.uint16)
    image = load_image(write(tmp_path, "deep.png", encode(".png", gray)), **LIMITS)
    assert_bgr(image, 1, 4)
    assert image[0, :, 0].tolist() == [0, 100, 255, 0]
    color = np.zeros((2, 2, 3), np.uint16)
    color[..., 1] = 257 * 200
    assert load_image(encode(".png", color), **LIMITS)[1, 1].tolist() == [0, 200, 0]


def test_16bit_rgba_png(tmp_path: Path) -> None:
    rgba = np.zeros((1, 3, 4), np.uint16)
    rgba[..., 2] = 65535  # red
    rgba[0, :, 3] = [65535, 0, 32896]
    image = load_image(write(tmp_path, "deep_alpha.png", encode(".png", rgba)), **LIMITS)
    assert_bgr(image, 1, 3)
    assert image[0].tolist() == [list(RED), list(WHITE), [127, 127, 255]]


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    palette = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])  # RGB: red, green, blue
    extra = png_chunk(b"PLTE", palette) + png_chunk(b"tRNS", bytes([0, 255, 128]))
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 1, 8, 3, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(b"\x00\x00\x01\x02"))  # one row: filter 0, indexes 0 1 2
    data = b"\x89PNG\r\n\x1a\n" + ihdr + extra + idat + png_chunk(b"IEND", b"")
    image = load_image(write(tmp_path, "palette.png", data), **LIMITS)
    assert_bgr(image, 1, 3)
    assert image[0].tolist() == [list(WHITE), list(GREEN), [255, 127, 127]]


def test_grayscale_png(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    image = load_image(write(tmp_path, "gray.png", encode(".png", gray)), **LIMITS)
    assert_bgr(image, 3, 4)
    assert (image == gray[:, :, None]).all()


def test_rgba_png_transparent_pixels_become_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)  # transparent black ...
    rgba[0, 0] = (255, 0, 0, 255)  # ... and one opaque blue pixel
    image = load_image(write(tmp_path, "alpha.png", encode(".png", rgba)), **LIMITS)
    assert image[0, 0].tolist() == list(BLUE)
    assert (image.reshape(-1, 3)[1:] == 255).all()


def test_multipage_tiff_uses_first_page(tmp_path: Path) -> None:
    path = tmp_path / "pages.tiff"
    assert cv2.imwritemulti(str(path), [np.full((5, 7, 3), BLUE, np.uint8), np.full((5, 7, 3), RED, np.uint8)])
    image = load_image(path, **LIMITS)
    assert_bgr(image, 5, 7)
    assert (image == BLUE).all()


@pytest.mark.parametrize(("ext", "params"), [(".bmp", ()), (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101)), (".tiff", ())])
def test_lossless_formats_round_trip(tmp_path: Path, ext: str, params: tuple[int, ...]) -> None:
    original = noise(30, 50)
    image = load_image(write(tmp_path, "img" + ext, encode(ext, original, params)), **LIMITS)
    assert_bgr(image, 30, 50)
    assert (image == original).all()


def test_lossy_webp(tmp_path: Path) -> None:
    data = encode(".webp", np.full((30, 50, 3), GREEN, np.uint8), (cv2.IMWRITE_WEBP_QUALITY, 90))
    image = load_image(write(tmp_path, "img.webp", data), **LIMITS)
    assert_bgr(image, 30, 50)
    assert np.abs(image.astype(int) - GREEN).max() <= 8


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    stored = np.full((20, 40, 3), BLUE, np.uint8)  # 40 wide, 20 high; red on the left
    stored[:, :16] = RED
    data = jpeg_with_orientation(encode(".jpg", stored, (cv2.IMWRITE_JPEG_QUALITY, 100)), 6)
    image = load_image(write(tmp_path, "camera.jpg", data), **LIMITS)
    assert_bgr(image, 40, 20)  # rotated 90 degrees clockwise: the left edge is now the top
    assert np.abs(image[:14].astype(int) - RED).max() <= 8  # chroma upsampling blurs the seam
    assert np.abs(image[18:].astype(int) - BLUE).max() <= 8


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_opencv(orientation: int) -> None:
    data = jpeg_with_orientation(encode(".jpg", noise(20, 40), (cv2.IMWRITE_JPEG_QUALITY, 100)), orientation)
    reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # applies orientation itself
    assert np.array_equal(load_image(data, **LIMITS), reference)


def test_exif_orientation_with_alpha_png() -> None:
    rgba = np.zeros((20, 40, 4), np.uint8)
    rgba[:, :10] = (0, 0, 255, 255)  # opaque red on the left, the rest transparent
    data = encode(".png", rgba)
    data = data[:33] + png_chunk(b"eXIf", exif_orientation(6)) + data[33:]
    image = load_image(data, **LIMITS)
    assert_bgr(image, 40, 20)
    assert (image[:10] == RED).all() and (image[10:] == WHITE).all()


def test_float_tiff_is_scaled_from_unit_range() -> None:
    image = load_image(encode(".tiff", np.full((2, 3, 3), 0.5, np.float32)), **LIMITS)
    assert_bgr(image, 2, 3)
    assert set(image.ravel().tolist()) <= {127, 128}


def test_rgba_tiff_semi_transparent_pixels() -> None:
    pil = pytest.importorskip("PIL.Image")  # OpenCV writes no 8-bit TIFF with unassociated alpha
    rgba = pil.new("RGBA", (2, 1), (255, 0, 0, 0))
    rgba.putpixel((1, 0), (0, 255, 0, 128))  # half-transparent green
    image = load_image(pil_bytes(rgba, "TIFF"), **LIMITS)
    assert image[0].tolist() == [list(WHITE), [127, 255, 127]]


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", [3, 5, 6, 7, 8])
def test_orientation_matches_pillow(fmt: str, orientation: int) -> None:
    pil = pytest.importorskip("PIL.Image")
    ops = pytest.importorskip("PIL.ImageOps")
    stored = pil.fromarray(noise(24, 40)[:, :, ::-1].copy())
    if fmt == "TIFF":  # the orientation is a tag of the TIFF itself, not an EXIF block
        data = pil_bytes(stored, fmt, tiffinfo={274: orientation})
    else:
        exif = pil.Exif()
        exif[274] = orientation
        data = pil_bytes(stored, fmt, exif=exif.tobytes(), quality=100, lossless=True)
    expected = np.asarray(ops.exif_transpose(pil.open(io.BytesIO(data))).convert("RGB"))[:, :, ::-1]
    image = load_image(data, **LIMITS)
    assert image.shape == expected.shape
    tolerance = 3 if fmt == "JPEG" else 0  # two JPEG decoders may round differently
    assert np.abs(image.astype(int) - expected).mean() <= tolerance


def test_golden_images_load_at_their_recorded_size() -> None:
    folder = Path(__file__).resolve().parents[1] / "images"
    golden = json.loads((folder / "golden.json").read_text(encoding="utf-8"))
    assert set(golden) == {"golden_en.png", "golden_zh.png", "golden_dark.png", "tall_phone.png"}
    for name, record in golden.items():
        image = load_image(folder / name, **LIMITS)
        assert_bgr(image, record["height"], record["width"])
        assert record["lines"] and all(line["text"] for line in record["lines"])
