"""INT8 recogniser: the packaged graph with its matrix products dynamically quantised, made once.

Only ``MatMul`` nodes are quantised (weights INT8 per tensor, activations quantised on the fly):
the sequence model and the CTC head over 18,710 classes. Convolutions stay float32: ONNX Runtime
runs dynamically quantised convolutions (``ConvInteger``) about 4x slower than float32 on CPU.
The file is written next to nothing shipped: into ``cache_dir``, named by the source's content
hash, atomically (several worker processes may make it at once), and reused afterwards. Nothing
is downloaded.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from engine.errors import ModelError

log = logging.getLogger(__name__)

QUANTISED_OPS = ("MatMul",)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/teamocr`` (``~/.cache/teamocr``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "teamocr"


def int8_model(source: Path, cache_dir: Path) -> Path:
    """The INT8 version of the graph ``source`` in ``cache_dir``, made on first use."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = cache_dir / f"{source.stem}-{digest}-int8-matmul.onnx"
    if target.is_file():
        return target
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise ModelError(f"{source}: INT8 needs onnxruntime's quantization tools ({exc})") from exc
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("quantising %s to INT8 (MatMul) into %s, once", source, target)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".int8-") as tmp:
        prepared, quantised = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_dynamic(str(prepared), str(quantised), weight_type=QuantType.QInt8,
                             op_types_to_quantize=list(QUANTISED_OPS))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{source}: cannot quantise it to INT8 ({exc})") from exc
        os.replace(quantised, target)  # atomic: a concurrent maker's file is as good as ours
    return target
