"""Fine-tuned model files: one ``torch.save``'d dict of plain tensors, strings and numbers.

A checkpoint holds what it takes to rebuild the module without the packaged ONNX graph: which
network (``kind`` "det" or "rec" and the ``model_set`` whose architecture it uses), the weights,
the recogniser's CTC labels (they may have grown with ``--extend-dict``), and free-form ``meta``
(JSON-like: metrics, data, epochs). Training state for ``--resume`` (optimiser, step) rides along
under ``training`` and is ignored by :func:`load_checkpoint`.

Files are read with ``torch.load(weights_only=True)``, so loading never runs pickled code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import ModelError

FORMAT = "teamocr-checkpoint"
VERSION = 1
KINDS = ("det", "rec")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint.

    ``charset`` is the CTC label list as :func:`engine.weights.load_charset` returns it: index 0 is
    ``"<blank>"`` and the last entry ``" "``, so ``charset[1:-1]`` are a dictionary file's lines.
    It is None for a detector.
    """

    kind: str
    model_set: str
    module: nn.Module
    charset: list[str] | None
    meta: dict[str, Any] = field(default_factory=dict)


def build_module(kind: str, model_set: str, classes: int | None = None) -> nn.Module:
    """An untrained network of the given kind and set; ``classes`` sizes a recogniser's head."""
    if kind == "det":
        from engine.models.detector import DET_SPECS, TextDetector

        if model_set not in DET_SPECS:
            raise ModelError(f"unknown model set {model_set!r}; choose one of {sorted(DET_SPECS)}")
        return TextDetector(DET_SPECS[model_set])
    if kind == "rec":
        from engine.models.recognizer import REC_SPECS, TextRecognizer

        if model_set not in REC_SPECS:
            raise ModelError(f"unknown model set {model_set!r}; choose one of {sorted(REC_SPECS)}")
        spec = REC_SPECS[model_set]
        return TextRecognizer(replace(spec, classes=classes) if classes else spec)
    raise ModelError(f"unknown model kind {kind!r}; choose one of {list(KINDS)}")


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    kind: str,
    model_set: str,
    module: nn.Module,
    charset: list[str] | None,
    meta: dict[str, Any],
    training: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint atomically (temporary file, then rename); return its path."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "rec" and not charset:
        raise ValueError("a recogniser checkpoint needs its charset")
    path = Path(path)
    state = {name: t.detach().to("cpu").clone() for name, t in module.state_dict().items()}
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "model_set": model_set,
        "state_dict": state,
        "charset": list(charset) if charset is not None else None,
        "meta": dict(meta),
    }
    if training is not None:
        payload["training"] = training
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw checkpoint dict (training state included), checked to be ours."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise ModelError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path}: not a teamocr checkpoint")
    if payload.get("version") != VERSION:
        raise ModelError(f"{path}: checkpoint version {payload.get('version')} is not {VERSION}")
    if payload.get("kind") not in KINDS:
        raise ModelError(f"{path}: unknown model kind {payload.get('kind')!r}")
    return payload


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Rebuild the module from a checkpoint (weights loaded, eval mode, on the CPU)."""
    payload = read_payload(path)
    kind, model_set, charset = payload["kind"], payload["model_set"], payload["charset"]
    module = build_module(kind, model_set, len(charset) if kind == "rec" and charset else None)
    try:
        module.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit the {model_set} {kind} network ({exc})") from exc
    return Checkpoint(
        kind, model_set, module.eval(), list(charset) if charset is not None else None, dict(payload.get("meta") or {})
    )
