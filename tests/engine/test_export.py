"""ONNX export of our torch networks: parity with torch on real images, fixed sizes, INT8.

The "tiny" set keeps these quick; the small set's figures are in the README (same code path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from engine.export import FixedInput, export_onnx, parse_size, quantize_int8, verify_onnx
from engine.weights import ModelFiles, model_files, torch_modules
from tests.engine.ocrcheck import IMAGES

IMAGES_USED = [IMAGES / "golden_en.png", IMAGES / "golden_zh.png"]
# one real page per network keeps CI quick; `teamocr export onnx` checks all of tests/images
PAGE = {"det": IMAGES / "golden_en.png", "rec": IMAGES / "golden_zh.png"}


@pytest.fixture(scope="module")
def tiny() -> tuple[ModelFiles, dict[str, nn.Module]]:
    files = model_files("tiny")
    det, rec = torch_modules(files)
    return files, {"det": det, "rec": rec}


@pytest.fixture(scope="module")
def exported(
    tiny: tuple[ModelFiles, dict[str, nn.Module]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    return {kind: export_onnx(module, kind, folder / f"{kind}.onnx") for kind, module in tiny[1].items()}


@pytest.mark.parametrize("kind", ["det", "rec"])
def test_dynamic_export_reads_like_torch(
    kind: str, tiny: tuple[ModelFiles, dict[str, nn.Module]], exported: dict[str, Path]
) -> None:
    files, modules = tiny
    parity = verify_onnx(kind, exported[kind], modules, files, [PAGE[kind]]).check()
    assert parity.images == 1 and parity.lines >= 5 and parity.runs >= 1
    assert parity.max_abs_diff < 1e-3
    assert parity.same_text


@pytest.mark.parametrize(
    ("kind", "shapes"),
    [
        ("det", [(1, 3, 96, 128), (2, 3, 224, 64)]),
        ("rec", [(1, 3, 48, 64), (3, 3, 48, 328)]),
    ],
)
def test_dynamic_axes_accept_other_shapes(
    kind: str, shapes: list[tuple[int, ...]], tiny: tuple[ModelFiles, dict[str, nn.Module]], exported: dict[str, Path]
) -> None:
    session = ort.InferenceSession(str(exported[kind]), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in shapes:
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        got = session.run(None, {"x": x})[0]
        with torch.inference_mode():
            want = tiny[1][kind](torch.from_numpy(x)).numpy()
        assert got.shape == want.shape
        assert float(np.abs(got - want).max()) < 1e-3


def test_fixed_size_export_has_a_static_input_and_still_reads_like_torch(
    tiny: tuple[ModelFiles, dict[str, nn.Module]], tmp_path: Path
) -> None:
    files, modules = tiny
    size = parse_size("320", "rec")
    path = export_onnx(modules["rec"], "rec", tmp_path / "rec_fixed.onnx", size=size)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 48, 320]
    parity = verify_onnx("rec", path, modules, files, IMAGES_USED[:1], size=size).check()
    assert parity.same_text and parity.max_abs_diff < 1e-3


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("640x630", "det", "width 630 must be a multiple of 32"),
        ("100x640", "det", "height 100 must be a multiple of 32"),
        ("100", "rec", "width 100 is not a multiple of 32"),
        ("32x320", "rec", "height is always 48"),
        ("axb", "det", "expected HxW"),
        ("0x32", "det", "two positive whole numbers"),
    ],
)
def test_fixed_sizes_are_validated(text: str, kind: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_size(text, kind)


def test_valid_fixed_sizes() -> None:
    assert parse_size("640x960", "det") == (640, 960)
    assert parse_size("48x320", "rec") == (48, 320)


def test_fixed_input_adapter_feeds_a_static_network() -> None:
    seen: list[tuple[int, ...]] = []

    class Echo:
        name = "echo"

        def __call__(self, batch: np.ndarray) -> np.ndarray:
            seen.append(batch.shape)
            return np.ones((1, 1, *batch.shape[2:]), np.float32)

    out = FixedInput(Echo(), "det", (64, 96))(np.zeros((2, 3, 100, 50), np.float32))
    assert seen == [(1, 3, 64, 96)] * 2 and out.shape == (2, 1, 100, 50)


def test_int8_copy_is_smaller_and_reports_its_figures(
    tiny: tuple[ModelFiles, dict[str, nn.Module]], exported: dict[str, Path], tmp_path: Path
) -> None:
    files, modules = tiny
    quant = quantize_int8(exported["rec"], tmp_path / "rec.int8.onnx")
    assert quant.stat().st_size < exported["rec"].stat().st_size
    parity = verify_onnx("rec", quant, modules, files, IMAGES_USED[:1])
    assert parity.lines > 0 and parity.max_abs_diff > 0  # reported, not enforced: int8 reads differently
