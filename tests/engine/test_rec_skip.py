"""Blank line crops and exact repeats skip the recogniser (engine.recognition.skip): a blank crop
reads as no line, a repeat takes its first copy's reading, and what is read is what reading each
crop alone gives. Real INT8 recogniser of conftest.py; crops and pages drawn here with OpenCV."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from engine.pipeline import OcrEngine
from engine.recognition.predictor import TextRecognizerPredictor
from engine.recognition.skip import is_blank, plan
from tests.engine.ocrcheck import CountingRunner, normalise


def line(text: str, ink: int = 0, paper: int = 255, width: int = 260) -> np.ndarray:
    crop = np.full((48, width, 3), paper, np.uint8)
    cv2.putText(crop, text, (8, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (ink, ink, ink), 2, cv2.LINE_AA)
    return crop


def blank(level: int = 230, spread: int = 3) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(level, level + spread, (40, 180, 3), dtype=np.uint8)


def recognizer(engine: OcrEngine, blank_levels: int) -> tuple[TextRecognizerPredictor, CountingRunner]:
    rec = engine.recognizer
    counting = CountingRunner(rec.runner)
    params = dataclasses.replace(rec.params, blank_levels=blank_levels)
    return TextRecognizerPredictor(counting, rec.charset, params), counting


def test_blank_is_a_near_uniform_crop_in_every_channel() -> None:
    assert is_blank(blank(spread=3), 8)
    assert not is_blank(blank(spread=3), 0)  # 0: the check is off
    assert not is_blank(line("faint", ink=215, paper=245), 8)  # low contrast is still text
    red_on_green = np.zeros((40, 120, 3), np.uint8)
    red_on_green[:, :, 1] = 200
    red_on_green[10:30, 20:100] = (0, 0, 200)  # the same grey level, different colours
    assert not is_blank(red_on_green, 8)


def test_plan_runs_each_distinct_crop_once() -> None:
    a, b = line("Cancel"), line("Save")
    todo = plan([a, blank(), a.copy(), b, a], 8)
    assert todo.run == (0, 3)
    assert todo.source == (0, None, 0, 3, 0)
    assert (todo.blank, todo.repeats) == (1, 2)
    same_pixels_other_shape = np.ascontiguousarray(a.reshape(24, -1, 3))
    assert plan([a, same_pixels_other_shape], 8).run == (0, 1)


def test_skipped_crops_read_as_reading_every_crop_does(ort_engine: OcrEngine) -> None:
    crops = [line("Cancel"), blank(), line("Cancel"), line("Save 2024"), line("Cancel"), blank(level=20)]
    skipping, counted = recognizer(ort_engine, blank_levels=8)
    every, counted_all = recognizer(ort_engine, blank_levels=0)
    got, reference = skipping(crops), [every([crop])[0] for crop in crops]  # each crop alone: all read
    assert counted.rows == 2 and counted_all.rows == len(crops)
    assert got[1] == got[5] == ("", 0.0)
    assert got[0] == got[2] == got[4]
    assert normalise(got[0][0]) == normalise("Cancel") and normalise(got[3][0]) == normalise("Save 2024")
    floor = ort_engine.settings.rec_min_confidence
    for i in (0, 2, 3, 4):  # a batch's padding moves confidences a little: the same text, kept alike
        assert got[i][0] == reference[i][0]
        assert got[i][1] >= floor and reference[i][1] >= floor


def test_a_page_of_repeated_labels_reads_every_line(ort_engine: OcrEngine) -> None:
    page = np.full((400, 900, 3), 255, np.uint8)
    for y in (64, 160, 256):  # 96 pixels apart: the network strides of 32 see the same crops
        cv2.putText(page, "Delete", (40, y), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(page, "Total 1234", (480, 160), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2, cv2.LINE_AA)
    texts = sorted(normalise(ln.text) for ln in ort_engine(page).lines)
    assert texts == sorted([normalise("Delete")] * 3 + [normalise("Total 1234")])
