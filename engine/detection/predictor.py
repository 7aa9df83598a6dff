"""Detection predictor: resize within a pixel budget (tall pages in strips), run, post-process."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from engine.backends import Runner
from engine.detection.postprocess import DBParams, boxes_from_probmap


@dataclass(frozen=True)
class DetResize:
    """How an image is scaled for detection."""

    min_side: int = 736          # smaller images are enlarged so small text survives
    max_upscale: float = 2.0     # ... but never more than this (a 720x160 banner is not 3300x736)
    max_side: int = 4000         # a very long side is shrunk to this
    max_pixels: int = 4_000_000  # one network pass covers at most this many pixels; more -> strips
    strip_overlap: int = 128     # strip overlap (network pixels), above the tallest line expected


def normalise(image: np.ndarray) -> np.ndarray:
    """BGR uint8 HxWx3 -> float32 1x3xHxW in [-1, 1]."""
    x = image.astype(np.float32)
    x *= 1.0 / 127.5
    x -= 1.0
    return x.transpose(2, 0, 1)[None]


def _round32(v: float) -> int:
    return max(32, int(round(v / 32.0)) * 32)


class TextDetectorPredictor:
    """Image in, boxes (in the image's own pixels) with scores out. Safe to share across threads."""

    def __init__(self, runner: Runner, params: DBParams, resize: DetResize) -> None:
        self.runner = runner
        self.params = params
        self.resize = resize

    def scale_for(self, h: int, w: int) -> float:
        """Scale factor applied before detection."""
        r = self.resize
        scale = 1.0
        if min(h, w) < r.min_side:
            scale = min(r.min_side / min(h, w), r.max_upscale)
        if max(h, w) * scale > r.max_side:
            scale = r.max_side / max(h, w)
        return scale

    def __call__(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        h, w = image.shape[:2]
        scale = self.scale_for(h, w)
        rh, rw = _round32(h * scale), _round32(w * scale)
        resized = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA) \
            if (rh, rw) != (h, w) else image
        sx, sy = w / rw, h / rh
        results = []
        for quad, score in self._detect_strips(resized):
            quad = quad * np.array([sx, sy], dtype=np.float32)
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

    def _detect(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        h, w = image.shape[:2]
        ph, pw = _round32(h), _round32(w)
        if (ph, pw) != (h, w):
            image = cv2.copyMakeBorder(image, 0, max(0, ph - h), 0, max(0, pw - w), cv2.BORDER_CONSTANT, value=0)
        prob = self.runner(normalise(image))[0, 0, :h, :w]
        return boxes_from_probmap(prob, self.params)
