"""Checkpoint files: round trip, refusal of foreign files, and the progress stream's shape."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from engine.errors import ModelError
from engine.training.checkpoint import build_module, load_checkpoint, read_payload, save_checkpoint
from engine.training.progress import BarProgress, JsonProgress


def test_round_trip_keeps_weights_charset_and_meta(tmp_path: Path) -> None:
    module = build_module("rec", "tiny", classes=5)
    charset = ["<blank>", "a", "b", "c", " "]
    path = save_checkpoint(
        tmp_path / "x" / "best.pt",
        kind="rec",
        model_set="tiny",
        module=module,
        charset=charset,
        meta={"epoch": 3, "test": {"accuracy": 0.9}},
        training={"step": 7},
    )
    loaded = load_checkpoint(path)
    assert (loaded.kind, loaded.model_set, loaded.charset, loaded.meta) == (
        "rec",
        "tiny",
        charset,
        {"epoch": 3, "test": {"accuracy": 0.9}},
    )
    assert not loaded.module.training
    for (name, a), (_, b) in zip(module.state_dict().items(), loaded.module.state_dict().items()):
        assert torch.equal(a, b), name
    assert read_payload(path)["training"] == {"step": 7}
    assert not list((tmp_path / "x").glob(".*.tmp"))


def test_foreign_and_broken_files_are_refused(tmp_path: Path) -> None:
    torch.save({"something": 1}, tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a teamocr checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ModelError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    det = build_module("det", "tiny")
    path = save_checkpoint(tmp_path / "det.pt", kind="det", model_set="tiny", module=det, charset=None, meta={})
    payload = read_payload(path)
    payload["model_set"] = "small"
    torch.save(payload, tmp_path / "wrong.pt")
    with pytest.raises(ModelError, match="do not fit the small det network"):
        load_checkpoint(tmp_path / "wrong.pt")
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path / "r.pt", kind="rec", model_set="tiny", module=det, charset=None, meta={})


def test_progress_json_and_bar() -> None:
    out = io.StringIO()
    progress = JsonProgress(out)
    progress.step(1, 1, 2, float("nan"), 1e-4)
    progress.done({"checkpoint": "w/best.pt"})
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows == [
        {"type": "progress", "epoch": 1, "step": 1, "steps": 2, "loss": None, "lr": 1e-4},
        {"type": "done", "checkpoint": "w/best.pt"},
    ]
    err = io.StringIO()
    bar = BarProgress(err, interval=0.0, width=4)
    bar.step(1, 1, 2, 0.5, 1e-4)
    bar.step(1, 2, 2, 0.5, 1e-4)
    bar.end_epoch()
    assert "[##..] 1/2 loss 0.5000" in err.getvalue() and err.getvalue().endswith("\n")
