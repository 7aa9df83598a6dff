"""A result's text rebuilt from its lines (after a correction), as the engine builds it.

Blocks are found as the engine finds them (``engine.layout.page_blocks``: columns, paragraphs,
tables, a blank line between blocks) in the frame where the lines run left to right: a page read
turned (``engine.orientation``) keeps its boxes in the pixels of the image as it came, so the
boxes are first turned by the direction most of them run in (``engine.levelling.level``). A
document's pages are rebuilt one by one and joined by ``engine.types.PAGE_BREAK``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.layout import blocks_text, page_blocks
from engine.levelling import level
from engine.types import PAGE_BREAK, block_dict


def full_text(lines: list[dict[str, Any]], pages: list[dict[str, Any]]) -> str:
    """The text of ``lines``: blocks of each page, the pages (``pages``: a document's) joined."""
    if not pages:
        return page_text(lines)
    return PAGE_BREAK.join(
        page_text([line for line in lines if line.get("page", 1) == number]) for number in range(1, len(pages) + 1)
    )


def page_text(lines: list[dict[str, Any]]) -> str:
    """One page's text: its lines in blocks, a row's lines joined by a space."""
    quads = level([np.asarray(line["points"], dtype=np.float64) for line in lines])
    texts = [line["text"] for line in lines]
    return blocks_text(texts, page_blocks(quads, texts, [line.get("source", "ocr") == "ocr" for line in lines]))


def layout_blocks(lines: list[dict[str, Any]], pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks of a result stored without them (read before blocks were kept), found from its
    lines as the engine finds them: ``engine.types.block_dict``'s shape, with ``page`` for a
    document's, their ``lines`` indices into ``lines``."""
    out: list[dict[str, Any]] = []
    for number in range(1, len(pages) + 1) if pages else [None]:
        index = [i for i, line in enumerate(lines) if number is None or line.get("page", 1) == number]
        picked = [lines[i] for i in index]
        quads = level([np.asarray(line["points"], dtype=np.float64) for line in picked])
        texts = [line["text"] for line in picked]
        for block in page_blocks(quads, texts, [line.get("source", "ocr") == "ocr" for line in picked]):
            found = block_dict(block, 0, number)
            found["lines"] = [index[i] for i in found["lines"]]
            found["rows"] = [[index[i] for i in row] for row in found["rows"]]
            points = np.array([p for i in found["lines"] for p in lines[i]["points"]], dtype=np.float64)
            lo, hi = points.min(axis=0), points.max(axis=0)  # in the image's pixels, not the levelled frame
            found["bbox"] = [round(float(v), 1) for v in (lo[0], lo[1], hi[0], hi[1])]
            out.append(found)
    return out
