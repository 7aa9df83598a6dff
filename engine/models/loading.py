"""Fill our torch modules from the packaged ONNX graphs.

The exported graphs list their parameters in execution order, and our modules register their
layers in the same order, so loading is a walk down both lists with a shape check at every step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.errors import ModelError


def _param_stream(onnx_path: Path) -> list[np.ndarray]:
    """The graph's learnt tensors in execution order (constants of activations etc. left out)."""
    import onnx  # a dependency only of weight loading
    from onnx import numpy_helper

    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # onnx raises several unrelated types for a bad file
        raise ModelError(f"{onnx_path}: cannot read ONNX model ({exc})") from exc
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {out: node.op_type for node in graph.node for out in node.output}
    stream: list[np.ndarray] = []
    for node in graph.node:
        params = [inits[i] for i in node.input if i in inits]
        if not params:
            continue
        if node.op_type in ("Conv", "ConvTranspose", "BatchNormalization", "MatMul"):
            stream.extend(params)
        elif node.op_type in ("Add", "Mul"):
            others = [producer.get(i) for i in node.input if i not in inits]
            is_bias = any(op in ("Conv", "ConvTranspose", "MatMul") for op in others)
            stream.extend(p for p in params if p.size > 1 or is_bias)
    return stream


def _slots(model: nn.Module) -> list[tuple[str, torch.Tensor, str]]:
    """Our tensors to fill, in registration order, with how each is stored in ONNX."""
    slots: list[tuple[str, torch.Tensor, str]] = []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            slots.append((f"{name}.weight", mod.weight, "same"))
            if mod.bias is not None:
                slots.append((f"{name}.bias", mod.bias, "flat"))
        elif isinstance(mod, nn.BatchNorm2d):
            for attr in ("weight", "bias", "running_mean", "running_var"):
                slots.append((f"{name}.{attr}", getattr(mod, attr), "flat"))
        elif isinstance(mod, nn.Linear):
            slots.append((f"{name}.weight", mod.weight, "transpose"))
            slots.append((f"{name}.bias", mod.bias, "flat"))
        elif isinstance(mod, nn.LayerNorm):
            slots.append((f"{name}.weight", mod.weight, "flat"))
            slots.append((f"{name}.bias", mod.bias, "flat"))
    return slots


@torch.no_grad()
def load_onnx_weights(model: nn.Module, onnx_path: Path) -> nn.Module:
    """Copy the ONNX graph's parameters into ``model``; raise ModelError on any mismatch."""
    stream = _param_stream(onnx_path)
    slots = _slots(model)
    if len(stream) != len(slots):
        raise ModelError(f"{onnx_path}: graph has {len(stream)} parameter tensors, our module {len(slots)}")
    for (name, target, kind), array in zip(slots, stream):
        value = torch.from_numpy(np.array(array, dtype=np.float32))
        if kind == "transpose":
            value = value.t()
        elif kind == "flat":
            value = value.reshape(-1)
        if tuple(value.shape) != tuple(target.shape):
            raise ModelError(f"{onnx_path}: {name} expects {tuple(target.shape)}, graph gives {tuple(value.shape)}")
        target.copy_(value)
    return model.eval()
