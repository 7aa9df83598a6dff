"""Run a network through torch (CPU or CUDA) or ONNX Runtime behind one callable interface.

The same packaged weights feed both: torch runs our own modules, ONNX Runtime runs the
package's graph file (usually the faster choice on CPU).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from engine.errors import ModelError

log = logging.getLogger(__name__)


class Runner(Protocol):
    """A network: float32 NCHW batch in, float32 array out."""

    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TorchRunner:
    """Our torch module on one device; fp16 only where asked (CUDA)."""

    def __init__(self, module: nn.Module, device: torch.device, half: bool = False) -> None:
        self.device = device
        self.half = half and device.type == "cuda"
        self.module = module.to(device).eval()
        if self.half:
            self.module = self.module.half()
        self.name = f"torch-{device.type}{'-fp16' if self.half else ''}"

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch)
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        if self.half:
            x = x.half()
        return self.module(x).float().cpu().numpy()


class OrtRunner:
    """The package's ONNX graph in an ONNX Runtime session."""

    def __init__(self, path: Path, threads: int, cuda: bool = False) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Input shapes change with every image: an arena keeps the largest ever seen and a memory
        # pattern never repeats, so both only grow the process (2.7 GB over 100 screenshots).
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{path}: ONNX Runtime cannot load it ({exc})") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.name = "onnxruntime-" + ("cuda" if providers[0].startswith("CUDA") else "cpu")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


def resolve_threads(threads: int) -> int:
    """0 means every core this process may use."""
    if threads > 0:
        return threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def choose(backend: str, device: str) -> tuple[str, torch.device]:
    """Pick backend and device: CUDA -> torch, CPU -> ONNX Runtime, unless configured."""
    if device not in ("auto", "cpu", "cuda"):
        raise ModelError(f"unknown device {device!r}; choose auto, cpu or cuda")
    if backend not in ("auto", "torch", "onnxruntime"):
        raise ModelError(f"unknown backend {backend!r}; choose auto, torch or onnxruntime")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was asked for but torch sees no CUDA device")
    dev = torch.device("cuda" if use_cuda else "cpu")
    if backend == "auto":
        backend = "torch" if use_cuda else "onnxruntime"
    return backend, dev
