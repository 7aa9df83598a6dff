"""A page's lines put in reading order: broken lines merged back, blocks found and ordered.

The geometry is :mod:`engine.layout`'s, done on the upright page (``engine.orientation``): lines
keep their boxes in the pixels of the image as it came, so they are turned upright for the layout
and the merged boxes are turned back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from engine.layout import Block, boxes_of, broken_groups, cores, join_texts, page_blocks
from engine.orientation import to_source, to_upright
from engine.types import TextLine


def boxes_quad(boxes: np.ndarray) -> np.ndarray:
    """The 4-point box around ``(n, 4)`` boxes."""
    x0, y0 = boxes[:, :2].min(axis=0)
    x1, y1 = boxes[:, 2:].max(axis=0)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def arrange(
    lines: Sequence[TextLine], width: int, height: int, rotation: int = 0
) -> tuple[tuple[TextLine, ...], tuple[Block, ...]]:
    """``lines`` (any order; boxes in the pixels of the ``width`` x ``height`` image that was
    turned ``rotation`` degrees to read it) merged where the detector broke one visual line in
    pieces, in reading order, with the page's blocks (their ``lines`` index the returned lines,
    their ``bbox`` is in the image's pixels)."""
    if not lines:
        return (), ()
    upright = [to_upright(np.asarray(line.points, dtype=np.float64), rotation, width, height) for line in lines]
    core = [boxes_quad(box[None]) for box in cores(boxes_of(upright), [line.source == "ocr" for line in lines])]
    merged: list[TextLine] = []
    quads: list[np.ndarray] = []
    for group in broken_groups(boxes_of(core), [line.text for line in lines]):
        if len(group) == 1:
            merged.append(lines[group[0]])
            quads.append(core[group[0]])
            continue
        parts = [lines[i] for i in group]
        quad = boxes_quad(boxes_of([upright[i] for i in group]))
        chars = [max(1, len(part.text)) for part in parts]
        confidence = float(np.average([part.confidence for part in parts], weights=chars))
        points = tuple((float(x), float(y)) for x, y in to_source(quad, rotation, width, height))
        merged.append(replace(parts[0], text=join_texts([p.text for p in parts]), points=points, confidence=confidence))  # type: ignore[arg-type]
        quads.append(boxes_quad(boxes_of([core[i] for i in group])))
    blocks = page_blocks(quads, [line.text for line in merged])
    order = [i for block in blocks for i in block.lines]
    position = {old: new for new, old in enumerate(order)}
    ordered = tuple(merged[i] for i in order)
    out = []
    for block in blocks:
        pts = np.array([p for i in block.lines for p in merged[i].points])
        bbox = (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))
        out.append(
            Block(
                kind=block.kind,
                lines=tuple(position[i] for i in block.lines),
                rows=tuple(tuple(position[i] for i in row) for row in block.rows),
                bbox=bbox,
            )
        )
    return ordered, tuple(out)
