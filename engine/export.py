"""Export our torch networks to ONNX, prove the export reads like torch, optionally quantise it.

``export_onnx`` writes one network (detector or recogniser) with dynamic batch and spatial axes,
or with one fixed input shape (batch 1) for runtimes that need static shapes. ``verify_onnx`` runs
real images through the whole pipeline twice: once with torch and ONNX Runtime side by side on
exactly the same network inputs (the largest absolute output difference), once with ONNX
Runtime alone (the text it reads must equal torch's, line for line). ``quantize_int8`` makes a
dynamic INT8 copy with ``onnxruntime.quantization``.

We use torch's TorchScript-based exporter (``dynamo=False``): it handles these networks, needs no
extra package (the dynamo exporter needs ``onnxscript``), and exports in well under a second.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from config.settings import EngineSettings
from engine.backends import OrtRunner, Runner
from engine.errors import ModelError
from engine.weights import ModelFiles

log = logging.getLogger(__name__)

KINDS = ("det", "rec")
OPSET = 17
REC_HEIGHT = 48
TOLERANCE = 1e-3  # float32 export vs torch; measured ~1e-7 (det) and ~5e-6 (rec)
INPUT, OUTPUT = "x", "probs"


class ExportError(ModelError):
    """An export could not be written, or it does not read like the torch network."""


def parse_size(text: str, kind: str) -> tuple[int, int]:
    """A fixed input size: ``HxW`` for the detector, ``W`` (or ``48xW``) for the recogniser.

    Both sides must be multiples of 32 (the recogniser's height is always 48).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {list(KINDS)}")
    parts = text.lower().replace(" ", "").split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"size {text!r}: expected HxW in pixels, e.g. 640x640") from None
    if kind == "rec" and len(numbers) == 1:
        numbers = [REC_HEIGHT, numbers[0]]
    if len(numbers) != 2 or min(numbers) <= 0:
        raise ValueError(f"size {text!r}: expected HxW, two positive whole numbers")
    height, width = numbers
    if kind == "rec":
        if height != REC_HEIGHT:
            raise ValueError(f"size {text!r}: the recogniser's input height is always {REC_HEIGHT}")
        if width % 32:
            raise ValueError(f"size {text!r}: the width {width} is not a multiple of 32")
    elif height % 32 or width % 32:
        bad = " and ".join(f"{name} {v}" for name, v in (("height", height), ("width", width)) if v % 32)
        raise ValueError(f"size {text!r}: the {bad} must be a multiple of 32 (the detector downsamples 32x)")
    return height, width


def export_onnx(
    module: nn.Module, kind: str, out: Path, *, size: tuple[int, int] | None = None, opset: int = OPSET
) -> Path:
    """Write ``module`` (a TextDetector or TextRecognizer) to ``out`` as ONNX; return ``out``.

    ``size`` (height, width) fixes the input to 1 x 3 x height x width; without it the batch,
    height and width (detector) or batch and width (recogniser) are dynamic.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {list(KINDS)}")
    if size is not None:
        parse_size(f"{size[0]}x{size[1]}", kind)
    height, width = size or ((64, 64) if kind == "det" else (REC_HEIGHT, 128))
    dummy = torch.zeros(1, 3, height, width)
    axes: dict[str, dict[int, str]] | None = None
    if size is None:
        axes = (
            {INPUT: {0: "batch", 2: "height", 3: "width"}, OUTPUT: {0: "batch", 2: "height", 3: "width"}}
            if kind == "det"
            else {INPUT: {0: "batch", 3: "width"}, OUTPUT: {0: "batch", 1: "steps"}}
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    module = module.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # the exporter warns about our shape checks (constant in a trace) and its own deprecation
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (dummy,),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes=axes,
                do_constant_folding=True,
            )
        os.replace(tmp, out)
    except Exception as exc:  # the exporter raises many unrelated types
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{out}: cannot export the {kind} network ({type(exc).__name__}: {exc})") from exc
    log.info(
        "exported %s network to %s (%s)", kind, out, "dynamic shapes" if size is None else f"fixed 1x3x{height}x{width}"
    )
    return out


def quantize_int8(src: Path, dst: Path) -> Path:
    """A dynamic INT8 copy of ``src`` (weights int8, activations quantised at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # the quantiser logs every tensor on the root logger
    try:
        # Only the matrix products: int8 convolutions (ConvInteger) ruin these small networks' text.
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ExportError(f"{src}: INT8 quantisation failed ({type(exc).__name__}: {exc})") from exc
    finally:
        root.setLevel(level)
    return dst


@dataclass
class Parity:
    """How an exported network compares with torch on real images."""

    kind: str
    onnx: str
    images: int = 0
    runs: int = 0  # network calls compared
    lines: int = 0
    max_abs_diff: float = 0.0
    mismatches: list[dict[str, str]] = field(default_factory=list)  # {"image", "torch", "onnx"}

    @property
    def same_text(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "onnx": self.onnx,
            "images": self.images,
            "runs": self.runs,
            "lines": self.lines,
            "max_abs_diff": self.max_abs_diff,
            "same_text": self.same_text,
            "mismatches": self.mismatches[:20],
        }

    def check(self, tolerance: float = TOLERANCE) -> Parity:
        """Raise ExportError unless the outputs agree within ``tolerance`` and the text is identical."""
        if self.max_abs_diff > tolerance:
            raise ExportError(
                f"{self.onnx}: output differs from torch by {self.max_abs_diff:.2e} (more than {tolerance:.0e})"
            )
        if self.mismatches:
            first = self.mismatches[0]
            raise ExportError(
                f"{self.onnx}: {len(self.mismatches)} line(s) read differently from torch, "
                f"e.g. in {first['image']}: torch {first['torch']!r}, onnx {first['onnx']!r}"
            )
        return self


class _TorchRunner:
    name = "torch-cpu"

    def __init__(self, module: nn.Module) -> None:
        self.module = module.eval()

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.module(torch.from_numpy(np.ascontiguousarray(batch))).numpy()


class _Memo:
    """Remembers a network's outputs by input, so the network not under test runs once per input
    although the pipeline reads every image twice."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.name = runner.name
        self._seen: dict[tuple[tuple[int, ...], bytes], np.ndarray] = {}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        key = (batch.shape, hashlib.blake2b(np.ascontiguousarray(batch).tobytes(), digest_size=16).digest())
        if key not in self._seen:
            self._seen[key] = self.runner(batch)
        return self._seen[key]


class _Twin:
    """Runs torch and ONNX Runtime on the same batch, keeps the largest difference, returns torch's."""

    name = "twin"

    def __init__(self, reference: Runner, candidate: Runner, parity: Parity) -> None:
        self.reference = reference
        self.candidate = candidate
        self.parity = parity

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        ref = self.reference(batch)
        got = self.candidate(batch)
        if got.shape != ref.shape:
            raise ExportError(f"{self.parity.onnx}: output shape {got.shape}, torch gives {ref.shape}")
        self.parity.runs += 1
        self.parity.max_abs_diff = max(self.parity.max_abs_diff, float(np.abs(got - ref).max(initial=0.0)))
        return ref


class FixedInput:
    """Feeds a fixed-shape network (batch 1) from the pipeline's variable batches.

    Detector: each image is resized to the fixed size and its map resized back. Recogniser: each
    crop is padded (or squeezed) to the fixed width; the output keeps that width's time steps.
    """

    def __init__(self, runner: Runner, kind: str, size: tuple[int, int]) -> None:
        self.runner = runner
        self.kind = kind
        self.height, self.width = size
        self.name = f"{runner.name}-fixed"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        outs = [self._one(sample) for sample in batch]
        return np.concatenate(outs, axis=0)

    def _one(self, sample: np.ndarray) -> np.ndarray:
        _, h, w = sample.shape
        hwc = sample.transpose(1, 2, 0)
        if self.kind == "det":
            resized = cv2.resize(hwc, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
            prob = self.runner(np.ascontiguousarray(resized.transpose(2, 0, 1)[None]))
            back = cv2.resize(prob[0, 0], (w, h), interpolation=cv2.INTER_LINEAR)
            return back[None, None]
        if w > self.width:
            hwc = cv2.resize(hwc, (self.width, h), interpolation=cv2.INTER_LINEAR)
            w = self.width
        padded = np.zeros((1, 3, h, self.width), np.float32)
        padded[0, :, :, :w] = hwc.transpose(2, 0, 1)
        return self.runner(padded)


def verify_onnx(
    kind: str,
    onnx_path: Path,
    modules: dict[str, nn.Module],
    files: ModelFiles,
    images: Sequence[Path],
    *,
    size: tuple[int, int] | None = None,
    threads: int = 1,
    settings: EngineSettings | None = None,
) -> Parity:
    """Compare the exported ``kind`` network at ``onnx_path`` with its torch module on ``images``.

    ``modules`` holds both torch networks ("det" and "rec"; the one not under test reads as usual)
    and ``files.charset`` the recogniser's labels. Returns the figures; call ``.check()`` to fail.
    """
    from engine.pipeline import assemble_engine
    from engine.preprocess import load_image

    if not images:
        raise ExportError("no images to verify the export on")
    settings = settings or EngineSettings(threads=threads)
    if size is not None and kind == "rec":
        settings = replace(settings, rec_batch_size=1)
    parity = Parity(kind, str(onnx_path))
    session: Runner = OrtRunner(Path(onnx_path), threads)
    if size is not None:
        session = FixedInput(session, kind, size)
    torch_runners: dict[str, Runner] = {k: _Memo(_TorchRunner(m)) for k, m in modules.items()}
    reference = torch_runners[kind] if size is None else FixedInput(torch_runners[kind], kind, size)
    twin = {**torch_runners, kind: _Twin(reference, session, parity)}
    alone = {**torch_runners, kind: session}
    with_twin = assemble_engine(settings, twin["det"], twin["rec"], files, "verify")
    with_onnx = assemble_engine(settings, alone["det"], alone["rec"], files, "verify")
    for path in images:
        image = load_image(str(path), max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes)
        want = [line.text for line in with_twin(image).lines]
        got = [line.text for line in with_onnx(image).lines]
        parity.images += 1
        parity.lines += len(want)
        if want != got:
            for i in range(max(len(want), len(got))):
                a = want[i] if i < len(want) else ""
                b = got[i] if i < len(got) else ""
                if a != b:
                    parity.mismatches.append({"image": Path(path).name, "torch": a, "onnx": b})
    log.info(
        "%s export %s: %d images, %d lines, max |diff| %.2e, %s",
        kind,
        onnx_path,
        parity.images,
        parity.lines,
        parity.max_abs_diff,
        "same text" if parity.same_text else f"{len(parity.mismatches)} lines differ",
    )
    return parity
