"""The real pipeline (ONNX Runtime) on odd but valid inputs, on bytes as on paths, and on files it must refuse."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import ImageError
from engine.pipeline import OcrEngine
from engine.types import PageResult
from tests.engine.ocrcheck import IMAGES


def write_png(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def without_timings(page: PageResult) -> dict:
    data = page.to_dict()
    del data["timings"]
    return data


def test_one_pixel_image(ort_engine: OcrEngine, tmp_path: Path) -> None:
    page = ort_engine.ocr(write_png(tmp_path / "dot.png", np.zeros((1, 1, 3), np.uint8)))
    assert (page.width, page.height) == (1, 1)
    assert page.lines == () and page.text == ""


def test_blank_page_has_no_lines(ort_engine: OcrEngine, tmp_path: Path) -> None:
    page = ort_engine.ocr(write_png(tmp_path / "blank.png", np.full((600, 800, 3), 255, np.uint8)))
    assert (page.width, page.height) == (800, 600)
    assert page.lines == () and page.text == ""
    assert {"decode", "detect", "recognize", "total"} <= set(page.timings)


def test_sixteen_bit_png_reads_like_the_eight_bit_one(
    ort_engine: OcrEngine, ort_pages: dict[str, PageResult], tmp_path: Path
) -> None:
    image = cv2.imread(str(IMAGES / "golden_en.png"), cv2.IMREAD_COLOR)
    path = write_png(tmp_path / "deep.png", image.astype(np.uint16) * 257)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    page = ort_engine.ocr(path)
    assert without_timings(page) == without_timings(ort_pages["golden_en.png"])


def test_grayscale_png_is_read(ort_engine: OcrEngine, ort_pages: dict[str, PageResult], tmp_path: Path) -> None:
    gray = cv2.imread(str(IMAGES / "golden_zh.png"), cv2.IMREAD_GRAYSCALE)
    page = ort_engine.ocr(write_png(tmp_path / "gray.png", gray))
    assert [line.text for line in page.lines] == [line.text for line in ort_pages["golden_zh.png"].lines]


def test_bytes_read_like_the_path(ort_engine: OcrEngine, ort_pages: dict[str, PageResult]) -> None:
    page = ort_engine.ocr((IMAGES / "golden_zh.png").read_bytes())
    assert without_timings(page) == without_timings(ort_pages["golden_zh.png"])
    assert page.timings["decode"] > 0.0


def test_bad_file_raises_image_error_naming_it(ort_engine: OcrEngine, tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("meeting notes, not a screenshot\n", encoding="utf-8")
    with pytest.raises(ImageError) as caught:
        ort_engine.ocr(bad)
    assert caught.value.source == str(bad)
    assert str(bad) in str(caught.value) and "not a supported image" in caught.value.reason


def test_half_written_png_raises_image_error(ort_engine: OcrEngine, tmp_path: Path) -> None:
    data = (IMAGES / "golden_en.png").read_bytes()
    partial = tmp_path / "copying.png"
    partial.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated") as caught:
        ort_engine.ocr(partial)
    assert caught.value.source == str(partial)


def test_bad_bytes_are_named_by_the_caller(ort_engine: OcrEngine) -> None:
    with pytest.raises(ImageError) as caught:
        ort_engine.ocr(b"", name="upload from alice")
    assert caught.value.source == "upload from alice" and caught.value.reason == "empty file"


def test_missing_file_raises_image_error(ort_engine: OcrEngine, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="file not found"):
        ort_engine.ocr(tmp_path / "gone.png")


@pytest.mark.parametrize(
    "image", [np.zeros((20, 20), np.uint8), np.zeros((20, 20, 4), np.uint8), np.zeros((20, 20, 3), np.float32)]
)
def test_decoded_image_of_the_wrong_layout_is_a_value_error(ort_engine: OcrEngine, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 BGR"):
        ort_engine(image)
