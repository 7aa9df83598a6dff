"""The packaged (pretrained) networks as torch modules, and an OCR engine around any pair of them."""

from __future__ import annotations

from typing import Literal, overload

import torch
from torch import nn

from config.settings import EngineSettings
from engine.models.loading import load_onnx_weights
from engine.pipeline import OcrEngine, engine_around
from engine.torch_runner import TorchRunner
from engine.training.checkpoint import build_module
from engine.weights import load_charset, model_files


@overload
def pretrained(kind: Literal["rec"], model_set: str) -> tuple[nn.Module, list[str]]: ...
@overload
def pretrained(kind: Literal["det"], model_set: str) -> tuple[nn.Module, None]: ...
@overload
def pretrained(kind: str, model_set: str) -> tuple[nn.Module, list[str] | None]: ...
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
    eval mode on ``device`` (callers switch them back to training themselves). Unlike the
    service's engine, one image per detection pass and ``engine.rec_batch_size`` lines per
    recognition batch on any device."""
    dev = torch.device(device)
    return engine_around(
        settings,
        TorchRunner(det, dev),
        TorchRunner(rec, dev),
        charset,
        version,
        f"torch-{dev.type}",
        det_batch_size=1,
        rec_batch_size=settings.rec_batch_size,
    )
