"""The real engine (ONNX Runtime, "small" set) reads every golden image correctly.

tests/images/golden.json holds each image's lines and the boxes of their ink, as drawn by
tests/images/make_images.py. Texts are compared after ocrcheck.normalise (NFKC, no whitespace):
line breaks and the spaces a renderer leaves between Chinese and Latin runs are not what these
tests are about. The torch engine is held to the same answers in test_equivalence.py.
"""

from __future__ import annotations

import json
from typing import Any

import cv2
import pytest

from engine.pipeline import OcrEngine
from engine.types import PageResult
from tests.engine.ocrcheck import IMAGES, boxes_match, char_error_rate, normalise, rect_of

NAMES = ["golden_en.png", "golden_zh.png", "golden_dark.png", "tall_phone.png"]
MAX_CER = 0.02


@pytest.fixture(params=NAMES)
def case(
    request: pytest.FixtureRequest, golden: dict[str, dict[str, Any]], ort_pages: dict[str, PageResult]
) -> tuple[dict[str, Any], PageResult]:
    """(golden record, the engine's page) for one golden image."""
    return golden[request.param], ort_pages[request.param]


def test_golden_json_lists_every_image(golden: dict[str, dict[str, Any]]) -> None:
    assert sorted(golden) == sorted(NAMES)


def test_every_expected_line_is_found(case: tuple[dict[str, Any], PageResult]) -> None:
    record, page = case
    full = normalise(page.text)
    lines = [normalise(line.text) for line in page.lines]
    missing = [
        exp["text"]
        for exp in record["lines"]
        if normalise(exp["text"]) not in full and normalise(exp["text"]) not in lines
    ]
    assert not missing, f"not read: {missing}\ngot:\n{page.text}"


def test_page_character_error_rate(case: tuple[dict[str, Any], PageResult]) -> None:
    record, page = case
    expected = "".join(normalise(exp["text"]) for exp in record["lines"])
    cer = char_error_rate(expected, normalise(page.text))
    assert cer <= MAX_CER, f"CER {cer:.3f}\nexpected: {expected}\ngot:      {normalise(page.text)}"


def test_each_expected_box_overlaps_a_predicted_line(case: tuple[dict[str, Any], PageResult]) -> None:
    record, page = case
    predicted = [rect_of(line.points) for line in page.lines]
    unmatched = [
        (exp["text"], exp["box"])
        for exp in record["lines"]
        if not any(boxes_match(tuple(exp["box"]), rect) for rect in predicted)
    ]
    assert not unmatched, f"no predicted line over: {unmatched}\npredicted: {predicted}"


def test_confidences_sizes_timings_and_versions(case: tuple[dict[str, Any], PageResult]) -> None:
    record, page = case
    assert page.lines
    assert all(0.0 < line.confidence <= 1.0 for line in page.lines)
    assert (page.width, page.height) == (record["width"], record["height"])
    assert {"decode", "detect", "recognize", "total"} <= set(page.timings)
    assert all(value >= 0.0 for value in page.timings.values())
    assert page.timings["total"] >= page.timings["detect"] + page.timings["recognize"]
    assert page.engine_version and page.model_version
    assert json.loads(json.dumps(page.to_dict(), ensure_ascii=False))["text"] == page.text


def test_chinese_line_read_exactly(ort_pages: dict[str, PageResult]) -> None:
    texts = [normalise(line.text) for line in ort_pages["golden_zh.png"].lines]
    assert "团队共享文件夹" in texts
    assert "发票金额:人民币1284.50元" in texts  # the full-width colon comes back as one


def test_english_line_read_exactly(ort_pages: dict[str, PageResult]) -> None:
    texts = [line.text for line in ort_pages["golden_en.png"].lines]
    assert "Invoice #A-1043 total: $1,284.50" in texts  # spaces and case kept
    assert "Owner: Alice Chen (alice@example.com)" in texts


def test_lines_come_in_reading_order(golden: dict[str, dict[str, Any]], ort_pages: dict[str, PageResult]) -> None:
    page = ort_pages["tall_phone.png"]
    tops = [rect_of(line.points)[1] for line in page.lines]
    assert tops == sorted(tops)
    # one text line per golden line (the notifications are blocks of their own: blank lines between)
    assert len([row for row in page.text.splitlines() if row]) == len(golden["tall_phone.png"]["lines"])


def test_small_line_on_a_tall_phone_screenshot(
    golden: dict[str, dict[str, Any]], ort_engine: OcrEngine, ort_pages: dict[str, PageResult]
) -> None:
    """The 14 px footer of a 1080 x 2400 screenshot survives: the page is not shrunk to fit.

    (Shrinking the detector's input to about 736 px on the long side garbles this line; milder
    shrinking still reads it, hence the direct check of the detector's scale as well.)
    """
    assert ort_engine.detector.scale_for(2400, 1080) >= 1.0
    expected = golden["tall_phone.png"]["lines"][-1]
    assert expected["box"][3] - expected["box"][1] <= 16  # the line this test is about
    page = ort_pages["tall_phone.png"]
    found = [line for line in page.lines if normalise(expected["text"]) in normalise(line.text)]
    assert found, f"{expected['text']!r} not read; got:\n{page.text}"
    assert boxes_match(tuple(expected["box"]), rect_of(found[0].points))


def test_engine_reads_a_decoded_image_the_same(ort_engine: OcrEngine, ort_pages: dict[str, PageResult]) -> None:
    """engine(image_bgr) and engine.ocr(path) agree; only the decode time differs."""
    page = ort_engine(cv2.imread(str(IMAGES / "golden_dark.png"), cv2.IMREAD_COLOR))
    assert page.lines == ort_pages["golden_dark.png"].lines
    assert page.timings["decode"] == 0.0
