"""Fine-tuning the DB detector on ICDAR 2015-style pages.

The packaged detector keeps only DB's probability branch, so that is what we train: the target is
each text polygon shrunk inward by D = A (1 - r^2) / L (A its area, L its perimeter, r = 0.4, the
DB paper's rule; inference's "unclip" grows it back by about that much), the loss a balanced BCE
(all positives, the hardest negatives up to three times as many) plus a dice loss. ``###`` boxes
and boxes too small to shrink are left out of the loss. Shrinking is an erosion of the polygon's
mask by D (a distance transform), which works for any polygon without a geometry library.

Training pages are scaled the way inference scales them (DetResize), jittered, and cut into
square crops that usually hold text.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.detection.predictor import DetResize, normalise
from engine.training.data import PageSample, read_image
from engine.training.evaluate import Tally, prediction_row, score_lines, write_jsonl

if TYPE_CHECKING:
    from engine.models.detector import TextDetector

SHRINK_RATIO = 0.4
MIN_BOX_SIDE = 3.0  # boxes thinner than this (training pixels) are ignored
NEGATIVE_RATIO = 3.0  # hard negatives per positive pixel in the BCE
BCE_WEIGHT = 1.0
DICE_WEIGHT = 1.0


def shrink_mask(shape: tuple[int, int], points: np.ndarray, ratio: float = SHRINK_RATIO) -> np.ndarray | None:
    """Boolean H x W mask of the polygon shrunk by DB's distance; None when nothing is left."""
    h, w = shape
    pts = np.asarray(points, dtype=np.float64)
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    perimeter = float(np.sum(np.linalg.norm(pts - np.roll(pts, 1, axis=0), axis=1)))
    if area < 1 or perimeter <= 0:
        return None
    distance = area * (1 - ratio**2) / perimeter
    x0, y0 = max(0, int(np.floor(x.min())) - 1), max(0, int(np.floor(y.min())) - 1)
    x1, y1 = min(w, int(np.ceil(x.max())) + 2), min(h, int(np.ceil(y.max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    local = np.zeros((y1 - y0 + 2, x1 - x0 + 2), np.uint8)  # a zero rim so the border counts as outside
    cv2.fillPoly(local, [np.round(pts - [x0 - 1, y0 - 1]).astype(np.int32)], 1)
    # distances run from pixel centres to the nearest outside pixel's centre: half a pixel more
    # than to the polygon's edge
    inside = cv2.distanceTransform(local, cv2.DIST_L2, 5) > distance + 0.5
    if not inside.any():
        return None
    out = np.zeros((h, w), bool)
    out[y0:y1, x0:x1] = inside[1 : 1 + y1 - y0, 1 : 1 + x1 - x0]
    return out


def targets(shape: tuple[int, int], boxes: Sequence[tuple[np.ndarray, bool]]) -> tuple[np.ndarray, np.ndarray]:
    """(shrunk text map, loss mask), float32 H x W, from (points, ignore) pairs in these pixels."""
    gt = np.zeros(shape, np.float32)
    mask = np.ones(shape, np.float32)
    for points, ignore in boxes:
        rect_w, rect_h = cv2.minAreaRect(points.astype(np.float32))[1]
        shrunk = None if ignore or min(rect_w, rect_h) < MIN_BOX_SIDE else shrink_mask(shape, points)
        if shrunk is None:
            cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 0.0)
        else:
            gt[shrunk] = 1.0
    return gt, mask


def db_loss(logits: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Balanced BCE with hard negatives, plus dice, over N x 1 x H x W maps."""
    bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
    positive = gt * mask
    negative = (1 - gt) * mask
    n_pos = int(positive.sum())
    n_neg = min(int(negative.sum()), int(max(n_pos, 1) * NEGATIVE_RATIO))
    neg_losses = (bce * negative).flatten()
    hardest = torch.topk(neg_losses, n_neg).values if n_neg else neg_losses[:0]
    balanced = ((bce * positive).sum() + hardest.sum()) / max(1, n_pos + n_neg)
    prob = torch.sigmoid(logits)
    dice = 1 - 2 * (prob * gt * mask).sum() / ((prob * mask).sum() + (gt * mask).sum() + 1e-6)
    return BCE_WEIGHT * balanced + DICE_WEIGHT * dice


@dataclass
class DetTask:
    """The detector and the pages; ``size`` is the side of the square training crops."""

    model_set: str
    module: nn.Module
    train: Sequence[PageSample]
    test: Sequence[PageSample]
    workdir: Path
    ocr_for: Any  # callable(det module) -> OcrEngine (with the pretrained recogniser), for scoring
    size: int = 640
    resize: DetResize = DetResize()
    kind: str = "det"
    charset: list[str] | None = None

    def batches(self, rng: random.Random, batch_size: int) -> list[Sequence[int]]:
        order = list(range(len(self.train)))
        rng.shuffle(order)
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def sample(self, page: PageSample, rng: random.Random) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One training crop: normalised 3 x S x S image, its text map and its loss mask."""
        image = read_image(page.image)
        h, w = image.shape[:2]
        scale = self.resize.scale_for(h, w) * rng.uniform(0.7, 1.3)
        image = cv2.resize(
            image,
            (max(1, round(w * scale)), max(1, round(h * scale))),
            interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA,
        )
        rh, rw = image.shape[:2]
        boxes = [(b.points * [rw / w, rh / h], b.ignore) for b in page.boxes]
        s = self.size
        x0, y0 = self._origin(rw, rh, [p for p, ign in boxes if not ign], rng)
        canvas = np.zeros((s, s, 3), np.uint8)  # inference pads with black too
        part = image[y0 : y0 + s, x0 : x0 + s]
        canvas[: part.shape[0], : part.shape[1]] = part
        shifted = [(p - [x0, y0], ign) for p, ign in boxes]
        gt, mask = targets((s, s), shifted)
        return normalise(canvas)[0], gt, mask

    def _origin(self, w: int, h: int, boxes: list[np.ndarray], rng: random.Random) -> tuple[int, int]:
        s = self.size
        if boxes and rng.random() < 0.9:
            centre = boxes[rng.randrange(len(boxes))].mean(axis=0)
            x = int(np.clip(centre[0] - rng.uniform(0.1, 0.9) * s, 0, max(0, w - s)))
            y = int(np.clip(centre[1] - rng.uniform(0.1, 0.9) * s, 0, max(0, h - s)))
            return x, y
        return rng.randint(0, max(0, w - s)), rng.randint(0, max(0, h - s))

    def loss(self, batch: Sequence[int], device: torch.device, rng: random.Random) -> torch.Tensor:
        items = [self.sample(self.train[i], rng) for i in batch]
        x = torch.from_numpy(np.stack([it[0] for it in items])).to(device)
        gt = torch.from_numpy(np.stack([it[1] for it in items]))[:, None].to(device)
        mask = torch.from_numpy(np.stack([it[2] for it in items]))[:, None].to(device)
        return db_loss(cast("TextDetector", self.module).logits(x), gt, mask)

    def evaluate(self, tag: str, device: str) -> dict[str, Any] | None:
        if not self.test:
            return None
        return evaluate_pages(self.ocr_for(self.module), self.test, self.workdir / "predictions" / f"test_{tag}.jsonl")


def page_label(page: PageSample) -> dict[str, Any]:
    """A test page as a labelled row of the benchmark's format."""
    return {
        "image": page.name,
        "lines": [{"text": b.text, "points": b.points.tolist(), "ignore": b.ignore} for b in page.boxes],
    }


def evaluate_pages(ocr: Any, pages: Sequence[PageSample], predictions: Path) -> dict[str, Any]:
    """Whole-page OCR of each test page, scored against its boxes' texts."""
    tally, rows = Tally(), []
    for page in pages:
        result = ocr(read_image(page.image))
        row = prediction_row(page.name, ((line.text, line.points) for line in result.lines))
        rows.append(row)
        label = page_label(page)
        tally.add(score_lines(label["lines"], row["lines"]))
    write_jsonl(predictions, rows)
    return {**tally.metrics(), "predictions": str(predictions)}
