"""Run a network through torch (CPU or CUDA) or ONNX Runtime behind one callable interface.

The same packaged weights feed both: torch runs our own modules (engine.torch_runner), ONNX
Runtime runs the package's graph file (usually the faster choice on CPU). torch is imported only
when it is used: on a CPU host with ONNX Runtime it would cost ~200 MB of memory for nothing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.errors import ModelError

log = logging.getLogger(__name__)


class Runner(Protocol):
    """A network: float32 NCHW batch in, float32 array out."""

    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class OrtRunner:
    """The package's ONNX graph in an ONNX Runtime session."""

    def __init__(self, path: Path, threads: int, cuda: bool = False, spinning: bool = True) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # The arena makes both networks ~20% faster here. Shapes change with every image, so a
        # memory pattern never repeats (off), and the arena's peak is bounded by the pixel budget
        # of detection and the recogniser's batch size (1.35 GB over 100 screenshots, batch 4).
        opts.enable_cpu_mem_arena = True
        opts.enable_mem_pattern = False
        # Idle intra-op threads spin-wait between operators (ONNX Runtime's default). Measured on
        # 2 cores with 2 threads: 4-16% faster than sleeping at a moderate load, but 20-30% slower
        # when the host is oversubscribed (spinning threads steal the cores others need). With one
        # thread per worker process there is no pool to spin.
        if not spinning:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
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


def _cuda_available() -> bool:
    """Whether torch sees a CUDA device; without an NVIDIA driver on the host, torch is not loaded."""
    if not os.path.exists("/dev/nvidiactl") and not os.environ.get("CUDA_VISIBLE_DEVICES"):
        return False
    import torch

    return bool(torch.cuda.is_available())


def choose(backend: str, device: str) -> tuple[str, str]:
    """Pick backend and device ("cpu" or "cuda"): CUDA -> torch, CPU -> ONNX Runtime, unless configured."""
    if device not in ("auto", "cpu", "cuda"):
        raise ModelError(f"unknown device {device!r}; choose auto, cpu or cuda")
    if backend not in ("auto", "torch", "onnxruntime"):
        raise ModelError(f"unknown backend {backend!r}; choose auto, torch or onnxruntime")
    use_cuda = device == "cuda" or (device == "auto" and _cuda_available())
    if device == "cuda" and not _cuda_available():
        raise ModelError("device 'cuda' was asked for but torch sees no CUDA device")
    if backend == "auto":
        backend = "torch" if use_cuda else "onnxruntime"
    return backend, "cuda" if use_cuda else "cpu"
