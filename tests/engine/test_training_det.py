"""Fine-tuning the detector on the CPU: shrunk targets, the loss falls, the saved model detects."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from config.settings import EngineSettings
from engine.training.checkpoint import load_checkpoint
from engine.training.data import read_det_dataset
from engine.training.det import DetTask, shrink_mask, targets
from engine.training.loop import TrainOptions, fit
from engine.training.progress import JsonProgress
from engine.training.runtime import make_ocr, pretrained
from tests.engine.trainkit import write_det_set


def test_shrink_follows_the_db_rule() -> None:
    quad = np.array([[10, 10], [110, 10], [110, 40], [10, 40]], np.float32)  # 100 x 30
    mask = shrink_mask((60, 130), quad)
    d = 100 * 30 * (1 - 0.4**2) / 260  # 9.7 px
    ys, xs = np.nonzero(mask)
    assert abs((ys.max() - ys.min() + 1) - (30 - 2 * d)) <= 2
    assert abs((xs.max() - xs.min() + 1) - (100 - 2 * d)) <= 2
    tiny = np.array([[5, 50], [60, 50], [60, 52], [5, 52]], np.float32)  # too thin to shrink
    gt, loss_mask = targets((60, 130), [(quad, False), (quad + [0, 0], True), (tiny, False)])
    assert gt[25, 60] == 1 and loss_mask[25, 60] == 0  # "###" over a box masks it out of the loss
    assert gt[51, 30] == 0 and loss_mask[51, 30] == 0 and loss_mask[5, 5] == 1


def test_finetune_detector_few_steps(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    root = write_det_set(
        tmp_path / "data",
        {"a.png": ["hello world", "second line 42"], "b.png": ["total 13.50", "invoice"]},
        {"c.png": ["alpha beta", "gamma 7"]},
    )
    data = read_det_dataset(root)
    det, _ = pretrained("det", "tiny")
    rec, charset = pretrained("rec", "tiny")
    settings = EngineSettings(model_set="tiny", device="cpu", threads=2)
    task = DetTask(
        "tiny",
        det,
        data.train,
        data.test,
        tmp_path / "work",
        lambda module: make_ocr(module, rec, charset, settings),
        size=256,
    )

    def fixed_batch_loss(module: torch.nn.Module) -> float:
        probe = DetTask("tiny", module, data.train, (), tmp_path / "probe", None, size=256)
        with torch.no_grad():
            return float(probe.loss([0, 1], torch.device("cpu"), random.Random(7)))

    start_loss = fixed_batch_loss(det)
    lines: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            lines.extend(text.splitlines())

        def flush(self) -> None:
            pass

    result = fit(
        task,
        TrainOptions(epochs=4, batch_size=2, lr=1e-5, eval_each_epoch=False),
        tmp_path / "work",
        JsonProgress(Sink()),
    )  # type: ignore[arg-type]
    rows = [json.loads(line) for line in lines]
    losses = [r["loss"] for r in rows if r["type"] == "progress"]
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert rows[-1]["type"] == "done" and rows[-1]["checkpoint"].endswith("best.pt")
    assert result["test_before"]["accuracy"] == 1.0

    loaded = load_checkpoint(result["checkpoint"])
    assert loaded.kind == "det" and loaded.charset is None
    assert fixed_batch_loss(loaded.module) < 0.8 * start_loss
    page = make_ocr(loaded.module, rec, charset, settings).ocr(root / "test_images" / "c.png")
    assert [line.text for line in page.lines] == ["alpha beta", "gamma 7"]
