"""The packaged (pretrained) networks as torch modules, and an OCR engine around any pair of them."""

from __future__ import annotations

import torch
from torch import nn

from config.settings import EngineSettings
from engine.detection.postprocess import DBParams
from engine.detection.predictor import DetResize, TextDetectorPredictor
from engine.models.loading import load_onnx_weights
from engine.pipeline import OcrEngine
from engine.recognition.predictor import RecParams, TextRecognizerPredictor
from engine.torch_runner import TorchRunner
from engine.training.checkpoint import build_module
from engine.weights import load_charset, model_files


def pretrained(kind: str, model_set: str) -> tuple[nn.Module, list[str] | None]:
    """The packaged network of ``kind`` ("det" or "rec") in eval mode, and the rec charset."""
    files = model_files(model_set)
    module = load_onnx_weights(build_module(kind, model_set), files.det if kind == "det" else files.rec)
    return module, (load_charset(files.charset) if kind == "rec" else None)


def make_ocr(
    det: nn.Module,
    rec: nn.Module,
    charset: list[str],
    settings: EngineSettings,
    device: str = "cpu",
    version: str = "fine-tuned",
) -> OcrEngine:
    """An OcrEngine over our own modules, thresholds from ``settings``; the modules are put in
    eval mode on ``device`` (callers switch them back to training themselves)."""
    dev = torch.device(device)
    detector = TextDetectorPredictor(
        TorchRunner(det, dev),
        DBParams(
            thresh=settings.det_thresh, box_thresh=settings.det_box_thresh, unclip_ratio=settings.det_unclip_ratio
        ),
        DetResize(
            min_side=settings.det_min_side,
            max_upscale=settings.det_max_upscale,
            max_side=settings.det_max_side,
            max_pixels=settings.det_max_pixels,
        ),
    )
    recognizer = TextRecognizerPredictor(
        TorchRunner(rec, dev), charset, RecParams(batch_size=settings.rec_batch_size, min_width=settings.rec_min_width)
    )
    return OcrEngine(detector, recognizer, settings, version, f"torch-{dev.type}")
