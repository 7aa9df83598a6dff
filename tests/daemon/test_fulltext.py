"""A result's text rebuilt after a correction keeps its rows on a page read turned, and keeps a
document's pages apart: the same text the engine gave, but for the corrected words."""

from __future__ import annotations

import numpy as np

from daemon.results.fulltext import full_text
from engine.orientation import to_source
from engine.types import PAGE_BREAK

# Two rows of two words on an upright 600 x 200 page, each box's first edge running left to right;
# the rows lie further apart than a line is tall, so they are two blocks (a blank line between).
UPRIGHT = [
    ("Invoice", [[10, 10], [110, 10], [110, 40], [10, 40]]),
    ("1043", [[130, 10], [200, 10], [200, 40], [130, 40]]),
    ("Total", [[10, 80], [90, 80], [90, 110], [10, 110]]),
    ("12.50", [[110, 80], [190, 80], [190, 110], [110, 110]]),
]


def lines_turned(degrees: int) -> list[dict]:
    """The lines as the engine stores them for that page photographed turned: boxes in the pixels
    of the turned image (to_source of the upright boxes), texts unchanged."""
    return [
        {"text": text, "points": to_source(np.asarray(points, float), degrees, 200, 600).tolist()}
        if degrees in (90, 270)
        else {"text": text, "points": to_source(np.asarray(points, float), degrees, 600, 200).tolist()}
        for text, points in UPRIGHT
    ]


def test_rows_of_a_page_read_turned_stay_rows() -> None:
    for degrees in (0, 90, 180, 270):
        assert full_text(lines_turned(degrees), []) == "Invoice 1043\n\nTotal 12.50", degrees


def test_a_documents_pages_stay_apart_and_an_empty_page_keeps_its_place() -> None:
    lines = [{**line, "page": 1} for line in lines_turned(0)] + [{**lines_turned(180)[0], "page": 3}]
    pages = [{"page": 1}, {"page": 2, "error": "cannot be rendered"}, {"page": 3}]
    assert full_text(lines, pages).split(PAGE_BREAK) == ["Invoice 1043\n\nTotal 12.50", "", "Invoice"]
