"""Pages turned 90, 180 and 270 degrees are read upright by the real engine (the packaged
orientation classifier, then the recogniser deciding), with their boxes on the text of the image
as it came; an upright page stays upright even when the classifier proposes a turn."""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import numpy as np
import pytest

from engine.backends import Runner
from engine.orientation import OrientationClassifier, candidate_turns, to_source, to_upright, upright
from engine.pipeline import OcrEngine, orientation_for
from engine.types import PageResult
from tests.engine.ocrcheck import IMAGES, boxes_match, char_error_rate, normalise, rect_of

MAX_CER = 0.02
# the test's turn (clockwise degrees) and the cv2 code that makes it
TURNED = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def expected_text(record: dict[str, Any]) -> str:
    return "".join(normalise(exp["text"]) for exp in record["lines"])


@pytest.mark.parametrize("name", ["golden_en.png", "golden_zh.png", "tall_phone.png"])
@pytest.mark.parametrize("turned", sorted(TURNED))
def test_a_turned_page_is_read_upright_with_its_boxes_on_the_text(
    ort_engine: OcrEngine, golden: dict[str, dict[str, Any]], name: str, turned: int
) -> None:
    record = golden[name]
    source = cv2.imread(str(IMAGES / name), cv2.IMREAD_COLOR)
    shown = cv2.rotate(source, TURNED[turned])
    page = ort_engine(shown)
    assert page.rotation == 360 - turned  # the turn that undoes the test's
    assert (page.height, page.width) == shown.shape[:2]  # the image as it came
    cer = char_error_rate(expected_text(record), normalise(page.text))
    assert cer <= MAX_CER, f"CER {cer:.3f}: {page.text}"
    h, w = source.shape[:2]
    predicted = [
        rect_of(to_source(np.asarray(line.points, dtype=np.float64), turned, w, h).tolist()) for line in page.lines
    ]
    unmatched = [
        exp["text"] for exp in record["lines"] if not any(boxes_match(tuple(exp["box"]), r) for r in predicted)
    ]
    assert not unmatched, f"boxes not on the text of the turned image: {unmatched}"
    assert "orient" in page.timings and page.to_dict()["rotation"] == page.rotation


def test_an_upright_page_is_not_turned(ort_pages: dict[str, PageResult]) -> None:
    assert all(page.rotation == 0 for page in ort_pages.values())


class AlwaysProposes:
    """A stand-in for the classifier's network that is sure of one wrong turn for every page."""

    name = "always-proposes"

    def __init__(self, turn_class: int) -> None:
        self.turn_class = turn_class

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = np.zeros((len(batch), 4), np.float32)
        out[:, self.turn_class] = 1.0
        return out


@pytest.mark.parametrize("turn_class", [1, 2, 3])
def test_a_wrong_proposal_costs_a_reading_not_the_text(
    ort_engine: OcrEngine, ort_pages: dict[str, PageResult], golden: dict[str, dict[str, Any]], turn_class: int
) -> None:
    """The recogniser decides between the page as it came and the proposed turns."""
    runner: Runner = AlwaysProposes(turn_class)
    misled = OcrEngine(  # the real detector and recogniser, a wrong classifier
        ort_engine.detector,
        ort_engine.recognizer,
        ort_engine.settings,
        ort_engine.model_version,
        ort_engine.backend,
        OrientationClassifier(runner, 0.5),
    )
    page = misled.ocr(IMAGES / "golden_en.png")
    assert page.rotation == 0
    assert normalise(page.text) == normalise(ort_pages["golden_en.png"].text)


def test_points_map_back_and_forth() -> None:
    points = np.array([[10.0, 20.0], [300.0, 5.0], [0.0, 0.0]])
    width, height = 640, 160
    for degrees in (0, 90, 180, 270):
        turned = to_upright(points, degrees, width, height)
        assert np.allclose(to_source(turned, degrees, width, height), points)
    image = np.zeros((height, width, 3), np.uint8)
    image[20, 10] = 255  # one bright pixel: where the mapping says it goes
    for degrees in (90, 180, 270):
        turned_image = upright(image, degrees)
        y, x = np.argwhere(turned_image[:, :, 0] == 255)[0]
        tx, ty = to_upright(np.array([[10.5, 20.5]]), degrees, width, height)[0]  # the pixel's centre
        assert (int(tx), int(ty)) == (x, y), degrees


def test_candidate_turns_read_the_page_as_it_came_first() -> None:
    assert candidate_turns(0) == (0,)
    assert candidate_turns(180) == (0, 180)
    assert candidate_turns(90) == (0, 90, 270) and candidate_turns(270) == (0, 270, 90)


def test_orientation_setting(ort_engine: OcrEngine) -> None:
    off = dataclasses.replace(ort_engine.settings, orientation="off")
    assert orientation_for(off) is None
    with pytest.raises(ValueError, match="engine.orientation must be one of"):
        orientation_for(dataclasses.replace(ort_engine.settings, orientation="sideways"))
