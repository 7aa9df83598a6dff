"""Optional image enhancements applied before detection and recognition.

Each step is kept in the default configuration only where the benchmark showed it helps
(see the README's Engine section for the measurements); all stay available by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np


def to_gray(image: np.ndarray) -> np.ndarray:
    """Drop colour (3-channel gray, as the networks expect 3 channels)."""
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def clahe(image: np.ndarray) -> np.ndarray:
    """Local contrast equalisation on the lightness channel."""
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


def denoise(image: np.ndarray) -> np.ndarray:
    """Edge-preserving smoothing (bilateral; non-local means is too slow for a live service)."""
    return cv2.bilateralFilter(image, 5, 40, 40)


def binarise(image: np.ndarray) -> np.ndarray:
    """Adaptive (local mean) threshold to black on white."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    bw = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 31, 15)
    return cv2.cvtColor(bw, cv2.COLOR_GRAY2BGR)


def dark_mode(image: np.ndarray) -> np.ndarray:
    """Invert images that are mostly dark (dark-theme screenshots) to dark text on light."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA)
    return 255 - image if float(small.mean()) < 100 else image


STEPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gray": to_gray,
    "clahe": clahe,
    "denoise": denoise,
    "binarise": binarise,
    "dark": dark_mode,
}


def parse_steps(spec: str) -> tuple[str, ...]:
    """ "dark,clahe" -> ("dark", "clahe"); an unknown name is a ValueError naming it."""
    names = tuple(s.strip() for s in spec.split(",") if s.strip())
    for name in names:
        if name not in STEPS:
            raise ValueError(f"unknown enhancement {name!r}; choose from {', '.join(STEPS)}")
    return names


def apply(image: np.ndarray, steps: Sequence[str]) -> np.ndarray:
    """Run the named steps in order."""
    for name in steps:
        image = STEPS[name](image)
    return image
