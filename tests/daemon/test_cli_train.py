"""`teamocr train`: the JSON progress the dashboard reads, checkpoints, and data refused up front."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cli.main import main
from engine.training.checkpoint import load_checkpoint
from tests.engine.trainkit import TEXTS, write_rec_set


def test_train_rec_prints_json_progress_and_saves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_rec_set(tmp_path / "data", TEXTS[:4], test=TEXTS[:2])
    work = tmp_path / "run"
    code = main(
        [
            "train",
            "rec",
            "--data",
            str(data),
            "--model-set",
            "tiny",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--progress",
            "json",
            "--workdir",
            str(work),
            "--no-augment",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    progress = [r for r in rows if r["type"] == "progress"]
    assert [set(r) for r in progress] == [{"type", "epoch", "step", "steps", "loss", "lr"}] * 2
    assert [(r["epoch"], r["step"], r["steps"]) for r in progress] == [(1, 1, 2), (2, 2, 2)]
    done = rows[-1]
    assert done["type"] == "done" and done["checkpoint"] == str(work / "best.pt")
    assert done["test_before"]["images"] == 2 and "accuracy" in done["test_after"]
    assert (work / "last.pt").is_file() and (work / "predictions" / "test_before.jsonl").is_file()
    assert load_checkpoint(done["checkpoint"]).meta["data"] == str(data.resolve())


def test_bad_data_is_refused_with_every_problem(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = write_rec_set(tmp_path / "data", TEXTS[:2])
    (data / "train.txt").write_text(
        "crops/00.png\thello 42\n\ncrops\\01.png\tx\nmissing.png\ty \u2603\n", encoding="utf-8"
    )
    with caplog.at_level(logging.ERROR):
        code = main(["train", "rec", "--data", str(data), "--model-set", "tiny", "--workdir", str(tmp_path / "w")])
    assert code == 2
    assert "3 problem(s)" in caplog.text
    for n in (2, 3, 4):
        assert f"train.txt:{n}:" in caplog.text
    assert not (tmp_path / "w").exists()


def test_extend_dict_grows_the_checkpoint_charset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_rec_set(tmp_path / "data", ["snow \u2603", "ok"], test=[])
    code = main(
        [
            "train",
            "rec",
            "--data",
            str(data),
            "--model-set",
            "tiny",
            "--extend-dict",
            "--epochs",
            "1",
            "--progress",
            "json",
            "--workdir",
            str(tmp_path / "w"),
        ]
    )
    assert code == 0
    done = json.loads(capsys.readouterr().out.splitlines()[-1])
    loaded = load_checkpoint(done["checkpoint"])
    assert loaded.charset is not None and loaded.charset[-2:] == ["\u2603", " "]
    assert loaded.module.head.out_features == len(loaded.charset)
    assert loaded.meta["added_chars"] == "\u2603" and done["test_before"] is None
