"""Detection predictor: resize within a pixel budget (tall pages in strips), run, post-process.

``detect_many`` runs images whose network input has the same shape in one batch (up to
``batch_size``): screenshots come in a handful of window and screen sizes, so a worker holding
several jobs often has some. A batch that fails is retried image by image, so one bad image fails
alone.

With ``DetResize.text_height`` set, each image's scale is chosen from a first pass at a low
scale (:mod:`engine.detection.autoscale`): large text is detected on fewer pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.backends import Runner
from engine.detection.autoscale import factor, line_height
from engine.detection.postprocess import DBParams, boxes_from_probmap


@dataclass(frozen=True)
class DetResize:
    """How an image is scaled for detection."""

    min_side: int = 736  # smaller images are enlarged so small text survives
    max_upscale: float = 2.0  # ... but never more than this (a 720x160 banner is not 3300x736)
    max_side: int = 4000  # a very long side is shrunk to this
    max_pixels: int = 4_000_000  # one network pass covers at most this many pixels; more -> strips
    strip_overlap: int = 128  # strip overlap (network pixels), above the tallest line expected
    text_height: float = 0.0  # > 0: shrink an image while its smaller lines stay this tall (a probe pass decides)
    probe: float = 0.5  # the probe pass's share of the usual scale, and the least share chosen

    def scale_for(self, h: int, w: int) -> float:
        """The factor an h x w image is scaled by before detection."""
        scale = 1.0
        if min(h, w) < self.min_side:
            scale = min(self.min_side / min(h, w), self.max_upscale)
        if max(h, w) * scale > self.max_side:
            scale = self.max_side / max(h, w)
        return scale


Boxes = list[tuple[np.ndarray, float]]


def normalise(image: np.ndarray) -> np.ndarray:
    """BGR uint8 HxWx3 -> float32 1x3xHxW in [-1, 1]."""
    x = image.astype(np.float32)
    x *= 1.0 / 127.5
    x -= 1.0
    return x.transpose(2, 0, 1)[None]


def fill_batch(images: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """Images (each at most height x width) -> float32 Nx3xHxW in [-1, 1], padded at the
    bottom and right with black (-1), written in place: no padded or float copy of each image."""
    batch = np.full((len(images), 3, height, width), -1.0, dtype=np.float32)
    for row, image in zip(batch, images):
        h, w = image.shape[:2]
        view = row[:, :h, :w]
        np.multiply(image.transpose(2, 0, 1), np.float32(1.0 / 127.5), out=view, casting="unsafe")
        view -= 1.0
    return batch


def _round32(v: float) -> int:
    return max(32, int(round(v / 32.0)) * 32)


def _ceil32(v: int) -> int:
    return max(32, -(-v // 32) * 32)


class TextDetectorPredictor:
    """Image in, boxes (in the image's own pixels) with scores out. Safe to share across threads."""

    def __init__(self, runner: Runner, params: DBParams, resize: DetResize, batch_size: int = 1) -> None:
        self.runner = runner
        self.params = params
        self.resize = resize
        self.batch_size = max(1, batch_size)

    def scale_for(self, h: int, w: int) -> float:
        """Scale factor applied before detection."""
        return self.resize.scale_for(h, w)

    def __call__(self, image: np.ndarray) -> Boxes:
        out = self.detect_many([image])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def detect_many(self, images: Sequence[np.ndarray]) -> list[Boxes | Exception]:
        """Boxes for each image, or the exception that image raised (the others still run)."""
        if self.resize.text_height <= 0:
            found = self._detect_at(images, dict.fromkeys(range(len(images)), 1.0))
            return [found[i] for i in range(len(images))]
        probe = self.resize.probe
        found = self._detect_at(images, dict.fromkeys(range(len(images)), probe))
        again: dict[int, float] = {}
        for i, boxes in found.items():
            if isinstance(boxes, Exception):  # the usual pass decides
                again[i] = 1.0
                continue
            height = line_height(boxes)  # in the image's pixels
            usual = self.scale_for(*images[i].shape[:2])
            share = factor(None if height is None else height * usual, self.resize.text_height, probe)
            if share > probe:
                again[i] = share
        found.update(self._detect_at(images, again))
        return [found[i] for i in range(len(images))]

    def _detect_at(self, images: Sequence[np.ndarray], shares: dict[int, float]) -> dict[int, Boxes | Exception]:
        """Boxes of the images ``shares`` names, each detected at that share of its usual scale;
        images whose network inputs have the same shape go in one batch."""
        out: dict[int, Boxes | Exception] = {}
        resized: dict[int, np.ndarray] = {}
        for i, share in shares.items():
            try:
                resized[i] = self._resized(images[i], share)
            except Exception as exc:  # noqa: BLE001 - one image's failure is its own
                out[i] = exc
        groups: dict[tuple[int, int], list[int]] = {}
        for i, small in resized.items():
            h, w = small.shape[:2]
            if h * w > self.resize.max_pixels:  # tall page: strips, on its own
                groups[(-i - 1, 0)] = [i]
            else:
                groups.setdefault((_ceil32(h), _ceil32(w)), []).append(i)
        for members in groups.values():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                for i, found in zip(chunk, self._run_chunk([resized[i] for i in chunk])):
                    out[i] = found if isinstance(found, Exception) else self._to_image(found, images[i], resized[i])
        return out

    def _resized(self, image: np.ndarray, share: float = 1.0) -> np.ndarray:
        h, w = image.shape[:2]
        scale = self.scale_for(h, w) * share
        rh, rw = _round32(h * scale), _round32(w * scale)
        if (rh, rw) == (h, w):
            return image
        return cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)

    def _run_chunk(self, chunk: list[np.ndarray]) -> Sequence[Boxes | Exception]:
        """One network pass for the chunk; when it fails, each image again alone."""
        try:
            if len(chunk) == 1:
                return [self._detect_strips(chunk[0])]
            return self._detect_batch(chunk)
        except Exception as exc:  # noqa: BLE001 - isolated below
            if len(chunk) == 1:
                return [exc]
        return [self._run_chunk([image])[0] for image in chunk]

    @staticmethod
    def _to_image(boxes: Boxes, image: np.ndarray, resized: np.ndarray) -> Boxes:
        """Network pixels -> the image's own pixels."""
        h, w = image.shape[:2]
        rh, rw = resized.shape[:2]
        scale = np.array([w / rw, h / rh], dtype=np.float32)
        results = []
        for quad, score in boxes:
            quad = quad * scale
            quad[:, 0] = np.clip(quad[:, 0], 0, w)
            quad[:, 1] = np.clip(quad[:, 1], 0, h)
            results.append((quad, score))
        return results

    def _detect_strips(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """One pass when within budget, else overlapping horizontal strips.

        A box belongs to the strip whose core (its share of the overlap split in half) holds its
        centre, so a line seen by two strips is kept once.
        """
        h, w = image.shape[:2]
        if h * w <= self.resize.max_pixels:
            return self._detect(image)
        overlap = self.resize.strip_overlap
        strip_h = max(overlap * 2, (self.resize.max_pixels // w) // 32 * 32)
        step = strip_h - overlap
        count = max(1, math.ceil((h - overlap) / step))
        out = []
        for i in range(count):
            top = min(i * step, max(0, h - strip_h))
            bottom = min(h, top + strip_h)
            core_top = 0 if i == 0 else top + overlap / 2
            core_bottom = h if i == count - 1 else bottom - overlap / 2
            for quad, score in self._detect(image[top:bottom]):
                quad = quad + np.array([0, top], dtype=np.float32)
                cy = float(quad[:, 1].mean())
                if core_top <= cy < core_bottom:
                    out.append((quad, score))
        return out

    def _detect(self, image: np.ndarray) -> Boxes:
        return self._detect_batch([image])[0]

    def _detect_batch(self, images: list[np.ndarray]) -> list[Boxes]:
        """Images whose sizes round up to the same multiple of 32 -> boxes of each."""
        ph = _ceil32(max(image.shape[0] for image in images))
        pw = _ceil32(max(image.shape[1] for image in images))
        probs = self.runner(fill_batch(images, ph, pw))
        return [
            boxes_from_probmap(prob[0, : image.shape[0], : image.shape[1]], self.params)
            for prob, image in zip(probs, images)
        ]
