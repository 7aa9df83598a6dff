"""Cut a text line out of the page: perspective-rectified, upright."""

from __future__ import annotations

import cv2
import numpy as np


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Warp the 4-point box (tl, tr, br, bl) to an axis-aligned crop; tall crops are turned
    90 degrees so vertical text reads left to right."""
    quad = quad.astype(np.float32)
    w = int(round(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3]))))
    h = int(round(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2]))))
    w, h = max(w, 1), max(h, 1)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad, dst)
    crop = cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    if h >= 1.5 * w:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)
