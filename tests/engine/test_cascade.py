"""The tiny-then-small recognition cascade (engine.recognition.cascade, ``engine.rec_cascade``):
with gate 0 every line keeps tiny's reading and small reads nothing; with a gate above 1 every
line is read again and takes small's reading; in between, each line has the reading of the
recogniser the gate sent it to. Real INT8 networks (the small detector for all); a page drawn here
with OpenCV."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from config.settings import EngineSettings
from engine.pipeline import OcrEngine, build_engine
from engine.recognition.cascade import SIGNALS, CascadeRecognizer, Gate
from engine.recognition.crop import crop_quad
from engine.recognition.ctc import ctc_greedy, ctc_readings
from engine.recognition.predictor import TextRecognizerPredictor
from tests.engine.conftest import THREADS
from tests.engine.ocrcheck import CountingRunner, normalise

ROWS = ["Invoice 2024-0117", "Total due: 1,284.50 EUR", "Ship to Hamburg", "qty 12 x widget"]


def page() -> np.ndarray:
    image = np.full((420, 900, 3), 255, np.uint8)
    for k, text in enumerate(ROWS, start=1):
        cv2.putText(image, text, (40, k * 90), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (25, 25, 25), 2, cv2.LINE_AA)
    return image


@pytest.fixture(scope="module")
def cascade_engine() -> OcrEngine:
    settings = EngineSettings(
        model_set="small", backend="onnxruntime", device="cpu", threads=THREADS, rec_cascade="tiny"
    )
    return build_engine(settings)


@pytest.fixture(scope="module")
def crops(cascade_engine: OcrEngine) -> list[np.ndarray]:
    image = page()
    (found,) = cascade_engine.detector.detect_many([image])
    assert len(found) >= len(ROWS)
    return [crop_quad(image, quad) for quad, _ in found]


def readers(engine: OcrEngine) -> tuple[TextRecognizerPredictor, TextRecognizerPredictor, CountingRunner]:
    """The cascade's tiny and small recognisers, small's network counting what it reads."""
    cascade = engine.recognizer
    assert isinstance(cascade, CascadeRecognizer)
    small = cascade.second
    counting = CountingRunner(small.runner)
    return cascade.first, TextRecognizerPredictor(counting, small.charset, small.params), counting


def test_build_engine_reads_lines_with_tiny_first_and_each_set_keeps_its_charset(cascade_engine: OcrEngine) -> None:
    cascade = cascade_engine.recognizer
    assert isinstance(cascade, CascadeRecognizer)
    assert cascade.gate == Gate("mean", 0.988)  # the defaults
    # the sets' dictionaries differ (tiny's is a subset of small's): each reader decodes with its own
    assert len(cascade.first.charset) < len(cascade.second.charset)
    assert set(cascade.first.charset) <= set(cascade.second.charset)
    assert cascade_engine.model_version == "PP-OCRv6-small"
    plain = build_engine(dataclasses.replace(cascade_engine.settings, rec_cascade="off"))
    assert isinstance(plain.recognizer, TextRecognizerPredictor)
    same_set = build_engine(dataclasses.replace(cascade_engine.settings, model_set="tiny"))
    assert isinstance(same_set.recognizer, TextRecognizerPredictor)  # tiny onto tiny: no cascade


def test_readings_carry_the_plain_decoding_and_ordered_signals(
    cascade_engine: OcrEngine, crops: list[np.ndarray]
) -> None:
    first, small, _ = readers(cascade_engine)
    for reader in (first, small):
        readings = reader.readings(crops)
        assert [(r.text, r.confidence) for r in readings] == reader(crops)
        for r in readings:
            assert 0.0 <= r.margin <= r.min_char <= r.confidence <= 1.0
    probs = np.random.default_rng(3).dirichlet(np.full(5, 0.3), size=(2, 12)).astype(np.float32)
    charset = ["<blank>", "a", "b", "c", " "]
    lengths = np.array([12, 7])
    assert [(r.text, r.confidence) for r in ctc_readings(probs, charset, lengths)] == ctc_greedy(
        probs, charset, lengths
    )


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_gate_zero_keeps_tiny_and_a_gate_above_one_takes_small(
    cascade_engine: OcrEngine, crops: list[np.ndarray], signal: str
) -> None:
    first, small, counting = readers(cascade_engine)
    none = CascadeRecognizer(first, small, Gate(signal, 0.0)).read(crops)
    assert none.reread == () and counting.rows == 0
    assert list(none.readings) == first.readings(crops)
    every = CascadeRecognizer(first, small, Gate(signal, 1.01)).read(crops)
    assert every.reread == tuple(range(len(crops)))
    assert counting.rows == len(crops)  # the re-reads reached small's network, each once
    assert list(every.readings) == small.readings(crops)


def test_between_each_line_has_the_reading_its_gate_chose(cascade_engine: OcrEngine, crops: list[np.ndarray]) -> None:
    first, small, counting = readers(cascade_engine)
    tiny_read, small_read = first.readings(crops), small.readings(crops)
    counting.rows = 0
    gate = Gate("min_char", 0.98)
    got = CascadeRecognizer(first, small, gate).read(crops)
    expected = tuple(i for i, r in enumerate(tiny_read) if r.min_char < 0.98)
    assert got.reread == expected and counting.rows == len(expected)
    for i, reading in enumerate(got.readings):
        assert reading == (small_read[i] if i in expected else tiny_read[i])


def test_the_engine_reads_the_page_as_tiny_or_as_small_at_the_extreme_gates(cascade_engine: OcrEngine) -> None:
    first, small, _ = readers(cascade_engine)
    image = page()

    def lines(recognizer: object) -> list[str]:
        engine = OcrEngine(
            cascade_engine.detector,
            recognizer,  # type: ignore[arg-type]
            cascade_engine.settings,
            cascade_engine.model_version,
            cascade_engine.backend,
        )
        return sorted(normalise(line.text) for line in engine(image).lines)

    assert lines(CascadeRecognizer(first, small, Gate("margin", 0.0))) == lines(first)
    assert lines(CascadeRecognizer(first, small, Gate("margin", 1.5))) == lines(small)
    assert lines(small) == sorted(normalise(t) for t in ROWS)


def test_gate_rejects_unknown_signals_and_negative_gates() -> None:
    with pytest.raises(ValueError, match="signal"):
        Gate("median", 0.9)
    with pytest.raises(ValueError, match="gate"):
        Gate("mean", -0.1)
