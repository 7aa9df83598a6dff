"""Reading several images as one batch (``OcrEngine.ocr_many``) gives what reading them one by one
gives; a bad image among good ones fails alone; torch's batched path on the CPU reads like ONNX
Runtime's.

The real engines and golden images of conftest.py; detection batches are forced on (the CPU
default is 1 image per pass) with an engine that shares the loaded networks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import engine_settings

from engine.detection.predictor import TextDetectorPredictor
from engine.errors import EngineError, ImageError
from engine.pipeline import OcrEngine, build_engine
from engine.quantize import RECIPE
from engine.recognition.predictor import TextRecognizerPredictor
from engine.types import PageResult
from tests.engine.ocrcheck import IMAGES, normalise

NAMES = ["golden_en.png", "golden_zh.png", "golden_dark.png", "tall_phone.png"]


def texts(page: PageResult | Exception) -> list[str]:
    assert isinstance(page, PageResult), page
    return [normalise(line.text) for line in page.lines]


def batched(engine: OcrEngine, det_batch: int, rec_batch: int) -> OcrEngine:
    """The same networks with other batch sizes."""
    det, rec = engine.detector, engine.recognizer
    return OcrEngine(
        TextDetectorPredictor(det.runner, det.params, det.resize, batch_size=det_batch),
        TextRecognizerPredictor(rec.runner, rec.charset, dataclasses.replace(rec.params, batch_size=rec_batch)),
        engine.settings,
        engine.model_version,
        engine.backend,
    )


@pytest.fixture(scope="module")
def many_pages(ort_engine: OcrEngine) -> list[PageResult | Exception]:
    """The golden images, plus a second copy of golden_en (two same-shape images: one detection
    batch), read in one ocr_many call with detection batches of 4 and recognition batches of 8."""
    return batched(ort_engine, 4, 8).ocr_many([IMAGES / n for n in [*NAMES, "golden_en.png"]])


def test_a_batch_reads_what_one_by_one_reads(
    many_pages: list[PageResult | Exception], ort_pages: dict[str, PageResult]
) -> None:
    for name, page in zip([*NAMES, "golden_en.png"], many_pages):
        assert texts(page) == texts(ort_pages[name]), name


def test_a_batch_keeps_boxes_sizes_and_timings(
    many_pages: list[PageResult | Exception], ort_pages: dict[str, PageResult]
) -> None:
    for name, page in zip(NAMES, many_pages):
        one = ort_pages[name]
        assert isinstance(page, PageResult)
        assert (page.width, page.height) == (one.width, one.height)
        got = np.array([line.points for line in page.lines])
        want = np.array([line.points for line in one.lines])
        assert got.shape == want.shape and np.abs(got - want).max() < 2.0, name
        assert set(page.timings) == {"decode", "detect", "recognize", "layout", "tables", "total"}
        assert page.timings["total"] > 0


def test_a_bad_image_fails_alone_with_its_name_and_cause(ort_engine: OcrEngine) -> None:
    good = (IMAGES / "golden_en.png").read_bytes()
    out = ort_engine.ocr_many(
        [good, b"not an image", IMAGES / "missing.png", good], names=["a.png", "junk.png", None, "b.png"]
    )
    assert texts(out[0]) == texts(out[3]) and texts(out[0])
    assert isinstance(out[1], ImageError) and out[1].source == "junk.png" and out[1].reason
    assert isinstance(out[2], ImageError) and "missing.png" in str(out[2])


def test_an_image_that_breaks_the_networks_fails_alone(ort_engine: OcrEngine) -> None:
    """A decoded image of the wrong kind (not H x W x 3 uint8) in the batch; the rest are read."""
    good = cv2.imread(str(IMAGES / "golden_en.png"))
    out = ort_engine._read([good, np.zeros((40, 40), np.uint8), good], [0.0, 0.0, 0.0])
    assert texts(out[0]) == texts(out[2]) and texts(out[0])
    assert isinstance(out[1], ValueError)
    with pytest.raises(ValueError):
        ort_engine(np.zeros((40, 40), np.uint8))


def test_a_batch_with_only_bad_inputs_and_an_empty_batch(ort_engine: OcrEngine) -> None:
    assert ort_engine.ocr_many([]) == []
    out = ort_engine.ocr_many([b"", b"xx"], names=["empty.png", "tiny.png"])
    assert all(isinstance(o, EngineError) for o in out)
    with pytest.raises(ValueError):
        ort_engine.ocr_many([b"a"], names=["a", "b"])


def test_torch_batched_path_on_cpu_reads_like_onnxruntime(
    torch_engine: OcrEngine, ort_pages: dict[str, PageResult]
) -> None:
    names = ["golden_en.png", "golden_zh.png", "golden_en.png"]
    pages = batched(torch_engine, 4, 8).ocr_many([IMAGES / n for n in names])
    for name, page in zip(names, pages):
        assert texts(page) == texts(ort_pages[name]), name


def test_detection_batches_group_images_of_one_shape(ort_engine: OcrEngine) -> None:
    """Two same-shape images go through the detector in one pass, a third shape in its own."""
    shapes: list[tuple[int, ...]] = []
    det = ort_engine.detector

    class Recording:
        name = det.runner.name

        def __call__(self, batch: np.ndarray) -> Any:
            shapes.append(batch.shape)
            return det.runner(batch)

    probe = TextDetectorPredictor(Recording(), det.params, det.resize, batch_size=4)
    image = cv2.imread(str(IMAGES / "golden_en.png"))
    other = cv2.resize(image, (image.shape[1] // 2 * 2 + 64, image.shape[0]))
    found = probe.detect_many([image, other, image])
    assert len(shapes) == 2 and sorted(s[0] for s in shapes) == [1, 2]
    alone = det(image)
    for boxes in (found[0], found[2]):
        assert not isinstance(boxes, Exception) and len(boxes) == len(alone)
        assert all(np.allclose(a[0], b[0]) for a, b in zip(boxes, alone))


def test_int8_recogniser_is_made_once_into_the_cache_and_reads_the_same(
    ort_float_pages: dict[str, PageResult], tmp_path: Path
) -> None:
    settings = dataclasses.replace(engine_settings("onnxruntime"), int8=True, cache_dir=str(tmp_path))
    engine = build_engine(settings)
    [made] = tmp_path.glob(f"*-{RECIPE}.onnx")
    assert engine.backend == "onnxruntime-int8"
    names = ["golden_en.png", "golden_zh.png"]
    for name, page in zip(names, engine.ocr_many([IMAGES / n for n in names])):
        assert texts(page) == texts(ort_float_pages[name]), name  # INT8 reads the golden pages as float does
    stamp = made.stat().st_mtime_ns
    build_engine(settings)  # the second engine reuses the file
    assert made.stat().st_mtime_ns == stamp and list(tmp_path.glob("*.onnx")) == [made]


def test_torch_16_bit_autocast_path_reads_the_same(torch_engine: OcrEngine, ort_pages: dict[str, PageResult]) -> None:
    """The CUDA path's autocast (bf16 here, on the CPU: no GPU in CI) keeps the text."""
    import torch

    from engine.torch_runner import TorchRunner

    det, rec = torch_engine.detector, torch_engine.recognizer
    cpu = torch.device("cpu")
    half = OcrEngine(
        TextDetectorPredictor(TorchRunner(det.runner.module, cpu, "bf16"), det.params, det.resize),
        TextRecognizerPredictor(TorchRunner(rec.runner.module, cpu, "bf16"), rec.charset, rec.params),
        torch_engine.settings,
        torch_engine.model_version,
        "torch-cpu-bf16",
    )
    assert half.recognizer.runner.name == "torch-cpu-bf16"
    page = half.ocr(IMAGES / "golden_en.png")
    assert texts(page) == texts(ort_pages["golden_en.png"])
