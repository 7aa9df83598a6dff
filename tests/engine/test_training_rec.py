"""Fine-tuning the recogniser on the CPU: the loss falls, and the saved model reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.training.checkpoint import load_checkpoint
from engine.training.data import read_rec_dataset
from engine.training.loop import TrainOptions, fit
from engine.training.progress import JsonProgress
from engine.training.rec import RecTask, extend_charset, read_lines_text
from engine.training.runtime import pretrained
from tests.engine.trainkit import TEXTS, hard_crop, write_rec_set


class Recorder(JsonProgress):
    """The real JSON progress, written to a list."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

        class Sink:
            def write(inner, text: str) -> None:
                self.rows += [json.loads(line) for line in text.splitlines() if line]

            def flush(inner) -> None:
                pass

        super().__init__(Sink())  # type: ignore[arg-type]


def test_finetune_lowers_the_loss_and_the_checkpoint_reads(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    module, charset = pretrained("rec", "tiny")
    data = read_rec_dataset(write_rec_set(tmp_path / "data"), charset)
    task = RecTask("tiny", module, charset, data.train, data.test, tmp_path / "work", augment=False)
    progress = Recorder()
    result = fit(
        task, TrainOptions(epochs=10, batch_size=8, lr=1e-4, eval_each_epoch=False), tmp_path / "work", progress
    )

    losses = [row["loss"] for row in progress.rows if row["type"] == "progress"]
    assert len(losses) == 10
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])
    assert progress.rows[-1] == {"type": "done", **result}
    assert result["test_after"]["accuracy"] > result["test_before"]["accuracy"]
    assert (tmp_path / "work" / "predictions" / "test_before.jsonl").is_file()

    loaded = load_checkpoint(result["checkpoint"])  # a fresh module, weights from the file
    assert (loaded.kind, loaded.model_set, loaded.charset) == ("rec", "tiny", charset)
    assert loaded.module is not module and not loaded.module.training
    base, _ = pretrained("rec", "tiny")
    crops = [hard_crop(t) for t in TEXTS]
    before = [text for text, _ in read_lines_text(base, charset, crops)]
    after = [text for text, _ in read_lines_text(loaded.module, loaded.charset, crops)]
    assert sum(a == t for a, t in zip(after, TEXTS)) > sum(b == t for b, t in zip(before, TEXTS))
    assert after[0] == "hello 42"


def test_resume_continues_from_last(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    module, charset = pretrained("rec", "tiny")
    data = read_rec_dataset(write_rec_set(tmp_path / "data", TEXTS[:4], test=[]), charset)
    work = tmp_path / "work"
    first = fit(
        RecTask("tiny", module, charset, data.train, (), work, augment=False),
        TrainOptions(epochs=1, batch_size=4, lr=1e-4),
        work,
        Recorder(),
    )
    assert first["epochs"] == 1 and first["test_before"] is None
    progress = Recorder()
    again = fit(
        RecTask("tiny", load_checkpoint(work / "last.pt").module, charset, data.train, (), work, augment=False),
        TrainOptions(epochs=2, batch_size=4, lr=1e-4),
        work,
        progress,
        resume=work / "last.pt",
    )
    steps = [row["step"] for row in progress.rows if row["type"] == "progress"]
    assert steps == [2] and again["epochs"] == 2


def test_extend_dict_grows_the_head_and_keeps_what_it_read() -> None:
    module, charset = pretrained("rec", "tiny")
    crops = [hard_crop(t, shear=0.2, blur=0.5, contrast=1.0) for t in TEXTS[:3]]
    before = read_lines_text(module, charset, crops)
    grown = extend_charset(module, charset, ["\u2603", "a", "\u265e"])
    assert grown == [*charset[:-1], "\u2603", "\u265e", " "]
    assert module.head.out_features == len(grown)
    after = read_lines_text(module, grown, crops)
    assert [t for t, _ in after] == [t for t, _ in before]


def test_unknown_characters_are_refused_unless_extending(tmp_path: Path) -> None:
    from engine.training.validate import DataError

    module, charset = pretrained("rec", "tiny")
    root = write_rec_set(tmp_path / "data", ["snow \u2603", "ok"], test=["ok"])
    with pytest.raises(DataError) as err:
        read_rec_dataset(root, charset)
    assert "train.txt:1: characters not in the model's dictionary: '\u2603' (U+2603)" in str(err.value)
    data = read_rec_dataset(root, charset, extend_dict=True)
    assert data.new_chars == ("\u2603",)


def test_guard_drop_is_reported_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    module, charset = pretrained("rec", "tiny")
    data = read_rec_dataset(write_rec_set(tmp_path / "data", TEXTS[:2], test=[]), charset)
    seen: list[str] = []

    def guard(tag: str) -> dict:
        seen.append(tag)
        return {"images": 3, "accuracy": 0.99 if tag == "before" else 0.98}

    with caplog.at_level("WARNING"):
        result = fit(
            RecTask("tiny", module, charset, data.train, (), tmp_path / "w", augment=False),
            TrainOptions(epochs=1, batch_size=2, lr=1e-5),
            tmp_path / "w",
            Recorder(),
            guard=guard,
        )
    assert seen == ["before", "after"] and result["guard_after"]["accuracy"] == 0.98
    assert "GUARD: accuracy on the guard set fell by 1.0 points" in caplog.text


def test_crops_too_narrow_for_their_text_are_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import cv2

    module, charset = pretrained("rec", "tiny")
    root = write_rec_set(tmp_path / "data", ["ok"], test=[])
    cv2.imwrite(str(root / "crops" / "narrow.png"), np.full((48, 40, 3), 255, np.uint8))
    (root / "train.txt").write_text("crops/00.png\tok\ncrops/narrow.png\taabbccdd\n", encoding="utf-8")
    data = read_rec_dataset(root, charset)
    with caplog.at_level("WARNING"):
        RecTask("tiny", module, charset, data.train, (), tmp_path / "w")
    assert "1 training crop(s) too narrow for their text at height 48, e.g. narrow.png" in caplog.text
