"""Differentiable-binarisation post-processing: probability map -> scored 4-point boxes."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class DBParams:
    """Thresholds of the DB post-processing (all from config)."""

    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip_ratio: float = 1.6
    min_size: float = 3.0
    max_candidates: int = 3000


def order_quad(pts: np.ndarray) -> np.ndarray:
    """Order 4 points clockwise from top-left: tl, tr, br, bl."""
    pts = pts[np.argsort(pts[:, 0], kind="stable")]
    left, right = pts[:2], pts[2:]
    tl, bl = left[np.argsort(left[:, 1], kind="stable")]
    tr, br = right[np.argsort(right[:, 1], kind="stable")]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def _box_score(prob: np.ndarray, quad: np.ndarray) -> float:
    """Mean probability inside the quad (the "fast" score of DB)."""
    h, w = prob.shape
    x0 = int(np.clip(np.floor(quad[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(quad[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(quad[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(quad[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    shifted = (quad - np.array([x0, y0], dtype=np.float32)).astype(np.int32)
    cv2.fillPoly(mask, [shifted], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def boxes_from_probmap(prob: np.ndarray, params: DBParams) -> list[tuple[np.ndarray, float]]:
    """Boxes (4x2 float32, map pixels, ordered tl-tr-br-bl) and their scores."""
    if prob.ndim != 2:
        raise ValueError(f"probability map must be 2-D, got shape {prob.shape}")
    mask: np.ndarray = (prob > params.thresh).astype(np.uint8)
    mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out: list[tuple[np.ndarray, float]] = []
    for contour in contours[: params.max_candidates]:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if min(w, h) < params.min_size:
            continue
        quad = cv2.boxPoints(((cx, cy), (w, h), angle))
        score = _box_score(prob, quad)
        if score < params.box_thresh:
            continue
        # Offsetting a rectangle by d and taking the min-area rectangle of the rounded result
        # (DB's "unclip") is the same rectangle grown by d on every side.
        d = (w * h) * params.unclip_ratio / (2.0 * (w + h))
        w2, h2 = w + 2 * d, h + 2 * d
        if min(w2, h2) < params.min_size + 2:
            continue
        out.append((order_quad(cv2.boxPoints(((cx, cy), (w2, h2), angle))), score))
    return out
