"""INT8 recogniser: the packaged graph's matrix products dynamically quantised, made once.

ONNX Runtime runs dynamically quantised convolutions (``ConvInteger``) about 4x slower than
float32 on CPU, but dynamically quantised matrix products (``MatMulInteger``, VNNI where the CPU
has it) faster. Most of the recogniser's work is pointwise (1 x 1) convolutions, which are matrix
products over the channels, so they are rewritten first as ``Transpose -> MatMul (+ Add bias) ->
Transpose``, exactly equal in float32. Then every ``MatMul`` (those, the sequence model's and the
CTC head's over 18,710 classes) is quantised: weights INT8 per output channel, activations
quantised on the fly. Other convolutions (3 x 3, depthwise, strided) stay float32.

The file is written into ``cache_dir``, named by the source's content hash and the recipe,
atomically (several worker processes may make it at once), and reused afterwards. Nothing is
downloaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from engine.errors import ModelError

log = logging.getLogger(__name__)

RECIPE = "pw-matmul-int8-pc"  # part of the file name: a new recipe makes a new file


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/teamocr`` (``~/.cache/teamocr``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "teamocr"


def int8_model(source: Path, cache_dir: Path) -> Path:
    """The INT8 version of the graph ``source`` in ``cache_dir``, made on first use."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = cache_dir / f"{source.stem}-{digest}-{RECIPE}.onnx"
    if target.is_file():
        return target
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise ModelError(f"{source}: INT8 needs onnx and onnxruntime's quantization tools ({exc})") from exc
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("quantising %s to INT8 into %s, once", source, target)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".int8-") as tmp:
        rewritten, prepared, quantised = (Path(tmp) / n for n in ("pw.onnx", "prepared.onnx", "int8.onnx"))
        try:
            model = onnx.load(str(source))
            count = pointwise_to_matmul(model)
            onnx.save(model, str(rewritten))
            quant_pre_process(str(rewritten), str(prepared), skip_symbolic_shape=True)
            quantize_dynamic(
                str(prepared),
                str(quantised),
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul"],
                per_channel=True,
            )
        except Exception as exc:  # onnx and onnxruntime raise their own untyped errors
            raise ModelError(f"{source}: cannot quantise it to INT8 ({exc})") from exc
        log.info("%s: %d pointwise convolutions as matrix products", source, count)
        os.replace(quantised, target)  # atomic: a concurrent maker's file is as good as ours
    return target


def pointwise_to_matmul(model: Any) -> int:
    """Rewrite, in place, each 1 x 1, stride 1, unpadded, ungrouped Conv with a constant weight as
    Transpose(NHWC) -> MatMul -> Add(bias) -> Transpose(NCHW); returns how many."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    nodes, count = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = weights.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if (
            weight is None
            or list(weight.dims[2:]) != [1, 1]
            or attrs.get("group", 1) != 1
            or any(v != 1 for v in attrs.get("strides", [1, 1]))
            or any(attrs.get("pads", [0]))
            or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
        ):
            nodes.append(node)
            continue
        count += 1
        base = f"pw{count}_{node.output[0]}"
        matrix = numpy_helper.to_array(weight)[:, :, 0, 0].T.copy()  # C_in x C_out
        graph.initializer.append(numpy_helper.from_array(matrix, base + "_w"))
        nodes.append(
            helper.make_node("Transpose", [node.input[0]], [base + "_nhwc"], perm=[0, 2, 3, 1], name=base + "_in")
        )
        product = base + "_mm"
        nodes.append(helper.make_node("MatMul", [base + "_nhwc", base + "_w"], [product], name=product))
        if len(node.input) > 2 and node.input[2]:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [base + "_bias"], name=base + "_bias"))
            product = base + "_bias"
        nodes.append(helper.make_node("Transpose", [product], [node.output[0]], perm=[0, 3, 1, 2], name=base + "_out"))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:  # the replaced 4-D weights
        graph.initializer.remove(init)
    return count
