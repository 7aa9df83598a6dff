"""Fine-tuning the recogniser with CTC on line crops.

Crops go in as the predictor feeds them (engine.recognition.predictor.prepare: height 48, aspect
kept, [-1, 1]); a batch is padded on the right with zeros like an inference batch, and each row's
CTC input length is its own width's time steps, the ones inference reads.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.recognition.predictor import HEIGHT, STRIDE, RecParams, TextRecognizerPredictor, prepare
from engine.torch_runner import TorchRunner
from engine.training.data import LineSample, read_image
from engine.training.evaluate import Tally, prediction_row, score_lines, write_jsonl

if TYPE_CHECKING:
    from engine.models.recognizer import TextRecognizer

MAX_TRAIN_WIDTH = 1600  # wider crops are squeezed (the longest lines cost the most memory)
NEW_ROW_STD = 0.01  # new dictionary entries start near "never seen"

log = logging.getLogger(__name__)


def extend_charset(module: nn.Module, charset: list[str], new_chars: Sequence[str]) -> list[str]:
    """Add ``new_chars`` to the dictionary and grow the CTC head to match (in place).

    New labels go before the trailing space, so ``charset[1:-1]`` stays a dictionary file's lines;
    their head rows start with small weights and the mean bias of the existing characters.
    """
    fresh = [c for c in dict.fromkeys(new_chars) if c not in set(charset)]
    if not fresh:
        return list(charset)
    head = cast(nn.Linear, module.head)  # a TextRecognizer's CTC head
    old_w, old_b = head.weight.data, head.bias.data
    n_new = len(fresh)
    new_head = nn.Linear(head.in_features, head.out_features + n_new).to(old_w.device)
    with torch.no_grad():
        rows_w = torch.randn(n_new, head.in_features, device=old_w.device) * NEW_ROW_STD
        rows_b = torch.full((n_new,), float(old_b[1:-1].mean()), device=old_w.device)
        new_head.weight.copy_(torch.cat([old_w[:-1], rows_w, old_w[-1:]]))
        new_head.bias.copy_(torch.cat([old_b[:-1], rows_b, old_b[-1:]]))
    module.head = new_head
    return [*charset[:-1], *fresh, charset[-1]]


def ctc_steps_needed(target: Sequence[int]) -> int:
    """Time steps CTC needs: one per character, plus a blank between repeated ones."""
    return len(target) + sum(1 for a, b in zip(target, target[1:]) if a == b)


def augment(crop: np.ndarray, rng: random.Random) -> np.ndarray:
    """Mild changes a real crop could have: a pixel or two of margin, contrast, blur."""
    h, w = crop.shape[:2]
    if rng.random() < 0.5 and h > 8 and w > 8:
        top, bottom = rng.randint(0, max(1, h // 16)), rng.randint(0, max(1, h // 16))
        left, right = rng.randint(0, max(1, h // 8)), rng.randint(0, max(1, h // 8))
        crop = crop[top : h - bottom or h, left : w - right or w]
    if rng.random() < 0.5:
        alpha, beta = rng.uniform(0.7, 1.2), rng.uniform(-25, 25)
        crop = cv2.convertScaleAbs(crop, alpha=alpha, beta=beta)
    if rng.random() < 0.2:
        crop = cv2.GaussianBlur(crop, (3, 3), 0)
    return np.ascontiguousarray(crop)


@dataclass
class RecTask:
    """The recogniser, its charset and a training split held in memory at height 48."""

    model_set: str
    module: nn.Module
    charset: list[str]
    train: Sequence[LineSample]
    test: Sequence[LineSample]
    workdir: Path
    augment: bool = True
    kind: str = "rec"
    _crops: list[np.ndarray] = field(default_factory=list, init=False, repr=False)
    _targets: list[list[int]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        index = {c: i for i, c in enumerate(self.charset)}
        too_narrow = []
        for sample in self.train:
            image = read_image(sample.image)
            h, w = image.shape[:2]
            width = min(MAX_TRAIN_WIDTH, max(STRIDE, int(math.ceil(HEIGHT * w / max(h, 1)))))
            # the crops are small at height 48, so the whole split stays in memory
            self._crops.append(cv2.resize(image, (width, HEIGHT), interpolation=cv2.INTER_LINEAR))
            self._targets.append([index[c] for c in sample.text])
            if width // STRIDE < ctc_steps_needed(self._targets[-1]):
                too_narrow.append(sample.image.name)
        if too_narrow:
            # CTC cannot emit more characters than time steps; these add nothing (zero_infinity)
            log.warning(
                "%d training crop(s) too narrow for their text at height 48, e.g. %s; they are "
                "not learnt from (crop wider, or split the text)",
                len(too_narrow),
                ", ".join(too_narrow[:5]),
            )

    def batches(self, rng: random.Random, batch_size: int) -> list[Sequence[int]]:
        """Shuffled, then sorted by width within pools of 8 batches so rows pad little."""
        order = list(range(len(self._crops)))
        rng.shuffle(order)
        pool = batch_size * 8
        out: list[Sequence[int]] = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: self._crops[i].shape[1])
            out += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(out)
        return out

    def loss(self, batch: Sequence[int], device: torch.device, rng: random.Random) -> torch.Tensor:
        crops = [augment(self._crops[i], rng) if self.augment else self._crops[i] for i in batch]
        inputs = [prepare(c, MAX_TRAIN_WIDTH) for c in crops]
        width = int(math.ceil(max(x.shape[2] for x in inputs) / STRIDE)) * STRIDE
        x = np.zeros((len(inputs), 3, HEIGHT, width), dtype=np.float32)
        for row, item in enumerate(inputs):
            x[row, :, :, : item.shape[2]] = item
        logits = cast("TextRecognizer", self.module).logits(torch.from_numpy(x).to(device))
        log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # T x N x C
        targets = [self._targets[i] for i in batch]
        input_lengths = torch.tensor([min(logits.shape[1], math.ceil(item.shape[2] / STRIDE)) for item in inputs])
        target_lengths = torch.tensor([len(t) for t in targets])
        flat = torch.tensor([c for t in targets for c in t], dtype=torch.long, device=logits.device)
        return F.ctc_loss(log_probs, flat, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=True)

    def evaluate(self, tag: str, device: str) -> dict[str, Any] | None:
        if not self.test:
            return None
        return evaluate_lines(
            self.module, self.charset, self.test, device, self.workdir / "predictions" / f"test_{tag}.jsonl"
        )


def read_lines_text(
    module: nn.Module, charset: list[str], crops: list[np.ndarray], device: str = "cpu"
) -> list[tuple[str, float]]:
    """Run the engine's recognition predictor over crops with ``module`` (left in eval mode)."""
    predictor = TextRecognizerPredictor(TorchRunner(module, torch.device(device)), charset, RecParams(batch_size=16))
    return predictor(crops)


def evaluate_lines(
    module: nn.Module, charset: list[str], samples: Sequence[LineSample], device: str, predictions: Path
) -> dict[str, Any]:
    """Each crop is a page holding one labelled line that fills it; accuracy as the benchmark scores it."""
    crops = [read_image(s.image) for s in samples]
    texts = read_lines_text(module, charset, crops, device)
    tally, rows = Tally(), []
    for sample, crop, (text, _) in zip(samples, crops, texts):
        h, w = crop.shape[:2]
        box = [[0, 0], [w, 0], [w, h], [0, h]]
        row = prediction_row(str(sample.image), [(text, box)])
        rows.append(row)
        tally.add(score_lines([{"text": sample.text, "points": box}], row["lines"]))
    write_jsonl(predictions, rows)
    return {**tally.metrics(), "predictions": str(predictions)}
