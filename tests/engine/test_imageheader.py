"""engine.imageheader: format sniffing, header dimensions, truncation and EXIF orientation from raw bytes."""

from __future__ import annotations

import io
import struct
import zipfile

import cv2
import numpy as np
import pytest

from engine.imageheader import is_truncated, read_dimensions, read_orientation, sniff_format

WIDTH, HEIGHT = 37, 23


def encode(ext: str, image: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.tobytes()


def noise(channels: int = 3) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, channels), dtype=np.uint8)


def exif_orientation(value: int, order: str = ">") -> bytes:
    """A minimal EXIF TIFF block holding only the Orientation tag, in either byte order."""
    head = b"MM\x00*" if order == ">" else b"II*\x00"
    return head + struct.pack(order + "IHHHIHHI", 8, 1, 274, 3, 1, value, 0, 0)


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


SAMPLES = {
    "png": lambda: encode(".png", noise()),
    "png16": lambda: encode(".png", noise().astype(np.uint16) * 257),
    "jpeg": lambda: encode(".jpg", noise()),
    "jpeg_progressive": lambda: encode(".jpg", noise(), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
    "gif": lambda: encode(".gif", noise()),
    "bmp": lambda: encode(".bmp", noise()),
    "tiff": lambda: encode(".tiff", noise()),
    "webp_vp8": lambda: encode(".webp", noise(), (cv2.IMWRITE_WEBP_QUALITY, 90)),
    "webp_vp8l": lambda: encode(".webp", noise(), (cv2.IMWRITE_WEBP_QUALITY, 101)),
    "webp_vp8x": lambda: encode(".webp", noise(4), (cv2.IMWRITE_WEBP_QUALITY, 90)),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_dimensions_match_the_decoder(kind: str) -> None:
    data = SAMPLES[kind]()
    assert read_dimensions(data) == (WIDTH, HEIGHT)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape[:2] == (HEIGHT, WIDTH)
    assert not is_truncated(data)
    if kind.startswith("webp_"):
        assert data[12:16].rstrip().lower() == kind.removeprefix("webp_").encode()


def test_dimensions_of_handmade_headers() -> None:
    big_endian_tiff = b"MM\x00*" + struct.pack(">IH", 8, 2) + struct.pack(">HHIHH", 256, 3, 1, 640, 0)
    big_endian_tiff += struct.pack(">HHII", 257, 4, 1, 480) + b"\x00" * 4
    assert read_dimensions(big_endian_tiff) == (640, 480)
    bigtiff = b"II+\x00" + struct.pack("<HHQQ", 8, 0, 16, 2)
    bigtiff += struct.pack("<HHQQ", 256, 16, 1, 70_000) + struct.pack("<HHQQ", 257, 4, 1, 50_000)
    assert read_dimensions(bigtiff) == (70_000, 50_000)
    top_down_bmp = bytearray(encode(".bmp", noise()))
    top_down_bmp[22:26] = struct.pack("<i", -HEIGHT)
    assert read_dimensions(bytes(top_down_bmp)) == (WIDTH, HEIGHT)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"%PDF-1.4\n", "PDF"),
        (b"\x1f\x8b\x08\x00", "GZIP"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "AVIF"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "MP4"),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00", "JPEG 2000"),
        (b"8BPS\x00\x01", "PSD"),
        (b"\xef\xbb\xbf  <!doctype HTML><title>x</title>", "HTML"),
        (b"<svg width='10'></svg>", "SVG"),
        (b"<?xml version='1.0'?><note/>", "XML"),
        ("plain UTF-8 text, 中文\r\n".encode(), "text"),
        (b"\x00\x01\x02\x03binary", None),
        (b"BM but not a bitmap", "text"),
    ],
)
def test_sniff_format(data: bytes, expected: str | None) -> None:
    assert sniff_format(data) == expected


def test_sniff_image_formats() -> None:
    assert sniff_format(SAMPLES["png"]()) == "PNG"
    assert sniff_format(SAMPLES["jpeg"]()) == "JPEG"
    assert sniff_format(SAMPLES["gif"]()) == "GIF"
    assert sniff_format(SAMPLES["bmp"]()) == "BMP"
    assert sniff_format(SAMPLES["tiff"]()) == "TIFF"
    assert sniff_format(SAMPLES["webp_vp8"]()) == "WEBP"
    assert sniff_format(encode(".ppm", noise())) == "PNM"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("a.txt", "x")
    assert sniff_format(buf.getvalue()) == "ZIP"


@pytest.mark.parametrize("kind", ["png", "jpeg", "jpeg_progressive", "webp_vp8", "webp_vp8x"])
def test_every_cut_is_truncated(kind: str) -> None:
    data = SAMPLES[kind]()
    for end in range(16, len(data) - 1, max(1, len(data) // 200)):  # 16: enough to tell the format
        assert is_truncated(data[:end]), end
    assert is_truncated(data[:-1])


def test_jpeg_end_marker_inside_exif_does_not_count() -> None:
    data = with_app1(encode(".jpg", noise()), b"Exif\x00\x00" + b"thumbnail \xff\xd9 inside")
    assert not is_truncated(data)
    assert is_truncated(data[: len(data) // 2])


def test_trailing_bytes_after_the_end_are_fine() -> None:
    assert not is_truncated(SAMPLES["jpeg"]() + b"\x00" * 100)
    assert not is_truncated(SAMPLES["png"]() + b"appended")


@pytest.mark.parametrize("order", [">", "<"])
@pytest.mark.parametrize("value", range(1, 9))
def test_orientation_in_jpeg_and_png(order: str, value: int) -> None:
    jpeg = with_app1(encode(".jpg", noise()), b"Exif\x00\x00" + exif_orientation(value, order))
    assert read_orientation(jpeg) == value
    png = encode(".png", noise())
    chunk = exif_orientation(value, order)
    chunk = struct.pack(">I", len(chunk)) + b"eXIf" + chunk + b"\x00" * 4  # CRC is not checked here
    assert read_orientation(png[:33] + chunk + png[33:]) == value


def test_orientation_in_webp_and_tiff() -> None:
    pil = pytest.importorskip("PIL.Image")
    exif = pil.Exif()
    exif[274] = 8
    for fmt, options in (("WEBP", {"exif": exif.tobytes()}), ("TIFF", {"tiffinfo": {274: 8}})):
        buf = io.BytesIO()
        pil.new("RGB", (4, 3)).save(buf, fmt, **options)
        assert read_orientation(buf.getvalue()) == 8, fmt


def test_orientation_absent_or_invalid() -> None:
    assert read_orientation(SAMPLES["jpeg"]()) == 1
    assert read_orientation(SAMPLES["gif"]()) == 1
    jpeg = with_app1(encode(".jpg", noise()), b"Exif\x00\x00" + exif_orientation(9))
    assert read_orientation(jpeg) == 1


def test_hostile_bytes_never_raise() -> None:
    rng = np.random.default_rng(7)
    huge_ifd = b"II*\x00" + struct.pack("<IH", 8, 0xFFFF) + b"\x00" * 64
    cases = [huge_ifd, b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\xff\xff\xff\xffWEBPVP8X"]
    cases += [b"MM\x00*\xff\xff\xff\xff", b"GIF89a", b"BM\x00\x00" + b"\x00" * 10 + b"\x28"]
    for kind in sorted(SAMPLES):
        data = SAMPLES[kind]()
        cases += [data[:end] for end in range(0, 64)]
        for _ in range(20):
            mangled = np.frombuffer(data, np.uint8).copy()
            mangled[rng.integers(0, len(data), 8)] = rng.integers(0, 256, 8)
            cases.append(mangled.tobytes())
    for data in cases:
        sniff_format(data)
        read_dimensions(data)
        is_truncated(data)
        read_orientation(data)
