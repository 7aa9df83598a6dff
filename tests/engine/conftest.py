"""Real engines and real golden images, built once per test session.

Loading a model set takes a second or two and reading a page a few more on a small CPU, so the
engines and their answers for the golden images are shared by every test that needs them.
All engines run the "small" set on the CPU with two threads, so results do not depend on the
machine the tests run on. ``ort_engine`` is the shipped default (INT8 recogniser);
``ort_float_engine`` runs the packaged float graphs, the reference the torch modules must match.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from config.settings import EngineSettings
from engine.pipeline import OcrEngine, build_engine
from engine.types import PageResult
from tests.engine.ocrcheck import IMAGES

THREADS = 2


def engine_settings(backend: str, int8: bool = True) -> EngineSettings:
    return EngineSettings(model_set="small", backend=backend, device="cpu", threads=THREADS, int8=int8)


@pytest.fixture(scope="session")
def golden() -> dict[str, dict[str, Any]]:
    """golden.json: image name -> {"width", "height", "lines": [{"text", "box"}]}."""
    return json.loads((IMAGES / "golden.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def ort_engine() -> OcrEngine:
    return build_engine(engine_settings("onnxruntime"))


@pytest.fixture(scope="session")
def ort_float_engine() -> OcrEngine:
    return build_engine(engine_settings("onnxruntime", int8=False))


@pytest.fixture(scope="session")
def torch_engine() -> OcrEngine:
    return build_engine(engine_settings("torch"))


@pytest.fixture(scope="session")
def ort_pages(ort_engine: OcrEngine, golden: dict[str, dict[str, Any]]) -> dict[str, PageResult]:
    """The ONNX Runtime engine's answer for every golden image, read from its file."""
    return {name: ort_engine.ocr(IMAGES / name) for name in golden}


@pytest.fixture(scope="session")
def ort_float_pages(ort_float_engine: OcrEngine, golden: dict[str, dict[str, Any]]) -> dict[str, PageResult]:
    """The float ONNX Runtime engine's answer for every golden image."""
    return {name: ort_float_engine.ocr(IMAGES / name) for name in golden}


@pytest.fixture(scope="session")
def torch_pages(torch_engine: OcrEngine, golden: dict[str, dict[str, Any]]) -> dict[str, PageResult]:
    """The torch engine's answer for every golden image, read from its file."""
    return {name: torch_engine.ocr(IMAGES / name) for name in golden}
