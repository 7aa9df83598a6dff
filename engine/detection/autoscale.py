"""Per-image detection scale from the text a cheap first pass finds.

Detection costs in proportion to its input's pixels, and large text needs few of them. With
``DetResize.text_height`` set, each image is first detected at ``DetResize.probe`` times its
usual scale; the height of its smaller lines there (a low percentile of the boxes' short sides,
so that a few headings do not decide for the body text) says how far the image may shrink and its
text still stand ``text_height`` network pixels tall. An image that may shrink to the probe's
scale keeps the probe's boxes; one that may shrink somewhat is detected again at that scale; one
whose text is small, or where the probe finds nothing, is detected at its usual scale.
"""

from __future__ import annotations

import numpy as np

PERCENTILE = 10  # the "smaller lines" of a page: its 10th percentile of line heights
FULL_ABOVE = 0.85  # a factor above this saves too little to leave the usual scale


def line_height(boxes: list[tuple[np.ndarray, float]]) -> float | None:
    """The low-percentile short side of the boxes (4x2 quads), or None without boxes."""
    if not boxes:
        return None
    quads = np.stack([quad for quad, _ in boxes]).astype(np.float64)
    sides = np.linalg.norm(quads - np.roll(quads, -1, axis=1), axis=2)  # tl-tr, tr-br, br-bl, bl-tl
    short = np.minimum(sides[:, 0] + sides[:, 2], sides[:, 1] + sides[:, 3]) / 2
    return float(np.percentile(short, PERCENTILE))


def factor(height: float | None, text_height: float, probe: float) -> float:
    """The share of its usual scale to detect an image at, from its line height at the usual
    scale (None: nothing found): in [probe, 1], 1 when shrinking would save little."""
    if height is None or height <= 0:
        return 1.0
    wanted = text_height / height
    if wanted > FULL_ABOVE:
        return 1.0
    return max(probe, wanted)
