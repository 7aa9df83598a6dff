"""Per-image detection scale (engine.detection.autoscale, ``engine.det_text_height``): a page of
large text is detected on fewer pixels and read as at its usual scale; a page of small text is
detected at its usual scale. Real networks of conftest.py; pages drawn here with OpenCV."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from engine.detection.autoscale import factor, line_height
from engine.detection.predictor import TextDetectorPredictor
from engine.pipeline import OcrEngine
from tests.engine.ocrcheck import normalise

TEXT_HEIGHT = 24.0


class PixelCounter:
    """The real detector, noting the pixels of every input it is given."""

    def __init__(self, runner: object) -> None:
        self.runner = runner
        self.name = getattr(runner, "name", "counting")
        self.pixels: list[int] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.pixels.append(batch.shape[0] * batch.shape[2] * batch.shape[3])
        return self.runner(batch)  # type: ignore[operator]


def page(scale: float, thickness: int, rows: list[str]) -> np.ndarray:
    image = np.full((1000, 1600, 3), 255, np.uint8)
    step = 1000 // (len(rows) + 1)
    for k, text in enumerate(rows, start=1):
        cv2.putText(image, text, (60, k * step), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), thickness, cv2.LINE_AA)
    return image


def with_autoscale(engine: OcrEngine, text_height: float) -> tuple[OcrEngine, PixelCounter]:
    """``engine``'s networks, its detector counting pixels, ``det_text_height`` as given."""
    det = engine.detector
    counter = PixelCounter(det.runner)
    resize = dataclasses.replace(det.resize, text_height=text_height)
    detector = TextDetectorPredictor(counter, det.params, resize, batch_size=det.batch_size)
    settings = dataclasses.replace(engine.settings, det_text_height=text_height)
    return OcrEngine(detector, engine.recognizer, settings, engine.model_version, engine.backend), counter


def texts(engine: OcrEngine, image: np.ndarray) -> list[str]:
    return sorted(normalise(line.text) for line in engine(image).lines)


def test_line_height_is_a_low_percentile_of_the_short_sides() -> None:
    def quad(x: float, y: float, w: float, h: float) -> tuple[np.ndarray, float]:
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32), 0.9

    assert line_height([]) is None
    tall_column = quad(0, 0, 20, 300)  # vertical text: its short side is its width
    boxes = [quad(0, 0, 400, 30)] * 9 + [tall_column]
    assert line_height(boxes) == pytest.approx(20 + 0.9 * (30 - 20), abs=1e-3)  # numpy's linear percentile
    assert factor(None, TEXT_HEIGHT, 0.5) == 1.0
    assert factor(60.0, TEXT_HEIGHT, 0.5) == 0.5  # never below the probe's share
    assert factor(36.0, TEXT_HEIGHT, 0.5) == pytest.approx(TEXT_HEIGHT / 36.0)
    assert factor(26.0, TEXT_HEIGHT, 0.5) == 1.0  # saves too little


def test_a_page_of_large_text_is_detected_on_fewer_pixels_and_reads_the_same(ort_engine: OcrEngine) -> None:
    image = page(2.4, 5, ["Quarterly report", "Revenue 4821", "Open tickets 37"])
    usual, usual_pixels = with_autoscale(ort_engine, 0.0)
    scaled, scaled_pixels = with_autoscale(ort_engine, TEXT_HEIGHT)
    assert (
        texts(scaled, image)
        == texts(usual, image)
        == sorted(normalise(t) for t in ["Quarterly report", "Revenue 4821", "Open tickets 37"])
    )
    assert sum(scaled_pixels.pixels) < 0.5 * sum(usual_pixels.pixels)


def test_a_page_of_small_text_is_detected_at_its_usual_scale(ort_engine: OcrEngine) -> None:
    rows = [f"Settings item {k}: notifications on" for k in range(12)]
    image = page(0.55, 1, rows)
    usual, usual_pixels = with_autoscale(ort_engine, 0.0)
    scaled, scaled_pixels = with_autoscale(ort_engine, TEXT_HEIGHT)
    assert texts(scaled, image) == texts(usual, image)
    assert scaled_pixels.pixels[-1] == usual_pixels.pixels[-1]  # the probe, then the usual pass
    assert len(scaled_pixels.pixels) == 2
