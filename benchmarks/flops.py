"""Know the floor: the CPU's peak GFLOP/s and the floating-point work the engine's networks do.

    python benchmarks/flops.py [--threads N] [--seconds S]      # prints peak GFLOP/s, the
                                                                 # models' FLOPs per input size

``peak_gflops`` times a large float32 matrix product in ONNX Runtime (the same MLAS kernels the
engine's networks run on) with a given number of intra-op threads: the practical peak of this
CPU for this library. ``FlopModel`` counts multiply-adds (x2) of every Conv, ConvTranspose,
MatMul and Gemm of a network for a concrete input shape, from the graph itself (ONNX Runtime's
symbolic shape inference), and fits them as a function of the input size (detection: linear in
H x W; recognition: per line, a x W + b x W^2, the quadratic part being the attention of the
neck), so a benchmark can count the work of every call it made without re-inferring each shape.
``CountingRunner`` wraps a runner and notes the FLOPs of each batch it runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

COUNTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def peak_gflops(threads: int, seconds: float = 3.0, sizes: tuple[int, ...] = (1024, 1536, 2048)) -> float:
    """Best GFLOP/s of N x N float32 matmuls (2 N^3 FLOPs each) in ONNX Runtime with ``threads``,
    over a few sizes (the best size depends on the caches), ``seconds`` in all."""
    return max(_matmul_gflops(threads, seconds / len(sizes), size) for size in sizes)


def _matmul_gflops(threads: int, seconds: float, size: int) -> float:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [size, size])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "peak", [a, b], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"a": rng.random((size, size), dtype=np.float32), "b": rng.random((size, size), dtype=np.float32)}
    session.run(None, feeds)
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def graph_flops(path: Path, shape: tuple[int, ...]) -> float:
    """FLOPs (2 x multiply-adds) of the counted ops for one run on an input of ``shape``."""
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = onnx.load(str(path))
    for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim, shape):
        dim.Clear()
        dim.dim_value = value
    model = SymbolicShapeInference.infer_shapes(model, auto_merge=True)

    def dims(info: Any) -> list[int]:  # a dimension left symbolic is the batch, 1 here
        return [d.dim_value if d.HasField("dim_value") else 1 for d in info.type.tensor_type.shape.dim]

    shapes = {vi.name: dims(vi) for vi in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    shapes.update({init.name: list(init.dims) for init in model.graph.initializer})
    total = 0.0
    for node in model.graph.node:
        if node.op_type not in COUNTED_OPS:
            continue
        x, w, out = shapes.get(node.input[0]), shapes.get(node.input[1]), shapes.get(node.output[0])
        if x is None or w is None or out is None:
            raise ValueError(f"{path}: no shape for {node.op_type} {node.name}")
        if node.op_type == "Conv":
            total += 2.0 * float(np.prod(out)) * float(np.prod(w[1:]))
        elif node.op_type == "ConvTranspose":
            total += 2.0 * float(np.prod(x)) * float(np.prod(w[1:]))
        else:  # MatMul, Gemm: out elements x the shared dimension
            total += 2.0 * float(np.prod(out)) * x[-1]
    return total


@dataclass
class FlopModel:
    """FLOPs of one network as a function of its input: detection a x H x W (+ c); recognition
    N x (a x W + b x W^2 + c)."""

    kind: str  # "det" or "rec"
    coef: tuple[float, ...]

    @classmethod
    def fit(cls, path: Path, kind: str) -> FlopModel:
        if kind == "det":
            sizes = [(320, 320), (640, 960), (960, 1280)]
            x = np.array([[h * w, 1.0] for h, w in sizes])
            y = np.array([graph_flops(path, (1, 3, h, w)) for h, w in sizes])
        elif kind == "rec":
            widths = [160, 480, 960, 1920]
            x = np.array([[w, w * w, 1.0] for w in widths], dtype=np.float64)
            y = np.array([graph_flops(path, (1, 3, 48, w)) for w in widths])
        else:
            raise ValueError(f"kind must be det or rec, got {kind!r}")
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        return cls(kind, tuple(float(c) for c in coef))

    def __call__(self, shape: tuple[int, ...]) -> float:
        n, _, h, w = shape
        if self.kind == "det":
            a, c = self.coef
            return n * (a * h * w + c)
        a, b, c = self.coef
        return n * (a * w + b * w * w + c)


@dataclass
class CountingRunner:
    """A runner that adds up the FLOPs of the batches it runs (the shapes are noted, the FLOPs
    counted from them when asked, so the timed loop pays only for a list append)."""

    runner: Any
    model: FlopModel
    shapes: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.runner.name)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(tuple(batch.shape))
        return self.runner(batch)

    def flops(self) -> float:
        return sum(self.model(shape) for shape in self.shapes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="intra-op threads (default 2)")
    parser.add_argument("--seconds", type=float, default=3.0, metavar="S", help="time spent on the peak")
    parser.add_argument("--model-set", default="small", help="engine model set (default small)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine.weights import model_files

    files = model_files(args.model_set)
    for threads in sorted({1, args.threads}):
        print(f"peak float32 matmul, {threads} thread(s): {peak_gflops(threads, args.seconds):.1f} GFLOP/s")
    det, rec = FlopModel.fit(files.det, "det"), FlopModel.fit(files.rec, "rec")
    print(
        f"detection: {det((1, 3, 800, 1280)) / 1e9:.2f} GFLOP for 800 x 1280 ({det.coef[0] / 1e3:.1f} kFLOP per pixel)"
    )
    for width in (160, 480, 1280):
        print(f"recognition: {rec((1, 3, 48, width)) / 1e9:.3f} GFLOP for one 48 x {width} line")
    return 0


if __name__ == "__main__":
    sys.exit(main())
