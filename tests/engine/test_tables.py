"""Tables (engine.tables, engine.table_lines): ruled and unruled tables drawn here with PIL and
read by the real engine; the grid finder on drawn rules alone; tables through the JSON a page and
a document are kept and sent as."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.layout import page_blocks
from engine.pipeline import OcrEngine
from engine.table_lines import find_grids
from engine.tables import Cell, Table, find_tables
from engine.types import DocumentResult, PageResult, TextLine

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"  # Debian's fonts-dejavu-core
RULE = (110, 110, 110)


def bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def ruled_page(merge: set[tuple[int, int]], texts: list[list[str]], size: int = 22) -> np.ndarray:
    """A 3 x 4 ruled table; the vertical rule at the left of column c is left out in row r for
    each (r, c) in ``merge``, so that cell spans its left neighbour."""
    image = Image.new("RGB", (900, 360), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, size)
    xs, ys = [50, 250, 450, 650, 850], [60, 130, 200, 270]
    for y in ys:
        draw.line([(xs[0], y), (xs[-1], y)], fill=RULE, width=2)
    for r in range(3):
        for c, x in enumerate(xs):
            if (r, c) not in merge:
                draw.line([(x, ys[r]), (x, ys[r + 1])], fill=RULE, width=2)
    for r, row in enumerate(texts):
        for c, text in enumerate(row):
            if text:
                draw.text((xs[c] + 15, ys[r] + 20), text, fill="black", font=font)
    return bgr(image)


def grid_of(table: Table) -> dict[tuple[int, int], tuple[int, int, str]]:
    return {(c.row, c.col): (c.rowspan, c.colspan, c.text) for c in table.cells}


def test_a_ruled_table_with_a_merged_cell_gives_its_grid(ort_engine: OcrEngine) -> None:
    texts = [
        ["Name", "Pages", "Size", "Status"],
        ["report.pdf", "12 pages merged", "", "done"],
        ["scan.png", "3", "410 KB", "queued"],
    ]
    page = ort_engine(ruled_page({(1, 2)}, texts))
    assert len(page.tables) == 1
    table = page.tables[0]
    assert (table.rows, table.cols, table.ruled) == (3, 4, True)
    assert grid_of(table) == {
        (0, 0): (1, 1, "Name"),
        (0, 1): (1, 1, "Pages"),
        (0, 2): (1, 1, "Size"),
        (0, 3): (1, 1, "Status"),
        (1, 0): (1, 1, "report.pdf"),
        (1, 1): (1, 2, "12 pages merged"),
        (1, 3): (1, 1, "done"),
        (2, 0): (1, 1, "scan.png"),
        (2, 1): (1, 1, "3"),
        (2, 2): (1, 1, "410 KB"),
        (2, 3): (1, 1, "queued"),
    }
    x0, y0, x1, y1 = table.bbox
    assert abs(x0 - 50) <= 3 and abs(y0 - 60) <= 3 and abs(x1 - 850) <= 3 and abs(y1 - 270) <= 3
    for cell in table.cells:  # each cell's lines are the page's lines holding its text
        assert " ".join(page.lines[i].text for i in cell.lines) == cell.text
    # the table's lines are one block of the page, read row by row
    assert [b.kind for b in page.page_blocks()] == ["table"]
    assert page.text.splitlines()[1] == "report.pdf 12 pages merged done"
    assert page.timings["tables"] < 1.0
    kept = PageResult.from_dict(page.to_dict())  # a document's page kept while the rest are read
    data = kept.to_dict()
    assert data["tables"] == page.to_dict()["tables"] and data["blocks"] == page.to_dict()["blocks"]


def test_a_table_of_aligned_columns_without_rules_gives_its_grid(ort_engine: OcrEngine) -> None:
    image = Image.new("RGB", (1000, 420), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 20)
    xs = (40, 380, 560, 760)
    rows = [("Name", "Pages", "Size", "Status")]
    rows += [(f"invoice_{k}.pdf", str(3 * k + 1), f"{120 + 7 * k} KB", ("done", "queued")[k % 2]) for k in range(6)]
    for r, row in enumerate(rows):
        for x, text in zip(xs, row):
            draw.text((x, 40 + 48 * r), text, fill="black", font=font)
    page = ort_engine(bgr(image))
    assert len(page.tables) == 1
    table = page.tables[0]
    assert (table.rows, table.cols, table.ruled) == (7, 4, False)
    got = [[c.text.replace(" ", "") for c in table.cells if c.row == r] for r in range(table.rows)]
    assert got == [[text.replace(" ", "") for text in row] for row in rows]  # the recogniser may drop a space
    assert all(c.rowspan == c.colspan == 1 for c in table.cells)


def test_tables_can_be_turned_off(ort_engine: OcrEngine) -> None:
    texts = [["Name", "Pages", "Size", "Status"], ["a.pdf", "1", "2 KB", "done"], ["b.png", "3", "4 KB", "queued"]]
    page = ort_engine.tuned({"tables": False})(ruled_page(set(), texts))
    assert page.tables == ()
    assert "tables" not in page.timings


def test_the_grid_finder_sees_row_and_column_spans() -> None:
    image = np.full((400, 700, 3), 255, np.uint8)
    xs, ys = [40, 240, 440, 640], [40, 120, 200, 280, 360]
    for y in ys:
        cv2.line(image, (xs[0], y), (xs[-1], y), (200, 200, 200), 1)  # light grey, as spreadsheets draw
    for x in xs:
        cv2.line(image, (x, ys[0]), (x, ys[-1]), (200, 200, 200), 1)
    cv2.line(image, (xs[1] + 1, ys[2]), (xs[2] - 1, ys[2]), (255, 255, 255), 3)  # (1, 1) spans two rows
    grids = find_grids(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert len(grids) == 1
    grid = grids[0]
    assert len(grid.xs) == 4 and len(grid.ys) == 5
    assert not grid.horizontal[2][1] and all(grid.horizontal[2][c] for c in (0, 2))
    texts = ["h0", "h1", "h2", "a", "tall", "b", "c", "d", "e", "f", "g"]
    centres = [(0, 0), (0, 1), (0, 2), (1, 0), (1.5, 1), (1, 2), (2, 0), (2, 2), (3, 0), (3, 1), (3, 2)]
    boxes = np.array([[xs[int(c)] + 20, ys[0] + 80 * r + 30, xs[int(c)] + 80, ys[0] + 80 * r + 50] for r, c in centres])
    boxes[4, [1, 3]] = [ys[1] + 70, ys[1] + 90]
    (table,) = find_tables(boxes, texts, [], grids)
    assert (table.rows, table.cols) == (4, 3)
    assert grid_of(table)[(1, 1)] == (2, 1, "tall")
    assert len(table.cells) == 11


def test_a_form_of_labels_and_values_is_no_table() -> None:
    boxes, texts = [], []
    for k in range(6):
        y = 40 + 50 * k
        boxes += [[40, y, 200, y + 20], [400, y, 640, y + 20]]
        texts += [f"Setting {k}:", f"the value of setting {k}"]
    quads = [np.array([[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]], float) for b in boxes]
    blocks = page_blocks(quads, texts)
    assert [b.kind for b in blocks] == ["table"]  # the layout reads it row by row...
    assert find_tables(np.array(boxes, float), texts, blocks) == []  # ... but it is a form


def test_tables_go_through_a_page_and_a_documents_json() -> None:
    def box(x: float, y: float) -> tuple[tuple[float, float], ...]:
        return ((x, y), (x + 50, y), (x + 50, y + 20), (x, y + 20))

    lines = tuple(TextLine(t, box(60 * k, 0), 0.9) for k, t in enumerate(("a", "b", "c", "d")))  # type: ignore[arg-type]
    cells = (
        Cell(0, 0, 1, 2, (0, 1), "a b"),
        Cell(1, 0, 1, 1, (2,), "c"),
        Cell(1, 1, 1, 1, (3,), "d"),
    )
    table = Table(2, 2, cells, (0.0, 0.0, 110.0, 50.0), ruled=True)
    page = PageResult(lines, 200, 100, tables=(table,))
    data = page.to_dict()
    assert data["tables"] == [
        {
            "rows": 2,
            "cols": 2,
            "bbox": [0.0, 0.0, 110.0, 50.0],
            "ruled": True,
            "cells": [
                {"row": 0, "col": 0, "rowspan": 1, "colspan": 2, "text": "a b", "lines": [0, 1]},
                {"row": 1, "col": 0, "rowspan": 1, "colspan": 1, "text": "c", "lines": [2]},
                {"row": 1, "col": 1, "rowspan": 1, "colspan": 1, "text": "d", "lines": [3]},
            ],
        }
    ]
    assert PageResult.from_dict(data).tables == (table,)
    doc = DocumentResult((page, None, page), {2: "broken"}, 3).to_dict()
    assert [t["page"] for t in doc["tables"]] == [1, 3]
    assert doc["tables"][1]["cells"][0]["lines"] == [4, 5]
    assert [doc["lines"][i]["text"] for i in doc["tables"][1]["cells"][2]["lines"]] == ["d"]


def test_a_page_turned_a_quarter_keeps_its_table_in_the_images_pixels(ort_engine: OcrEngine) -> None:
    texts = [
        ["Name", "Pages", "Size", "Status"],
        ["report.pdf", "12", "3 KB", "done"],
        ["scan.png", "3", "4 KB", "queued"],
    ]
    turned = cv2.rotate(ruled_page(set(), texts), cv2.ROTATE_90_COUNTERCLOCKWISE)  # 360 x 900 -> 900 x 360
    page = ort_engine(turned)
    assert page.rotation == 90
    (table,) = page.tables
    assert (table.rows, table.cols) == (3, 4)
    assert [c.text for c in table.cells if c.row == 0] == texts[0]
    x0, y0, x1, y1 = table.bbox  # the upright table (50..850 x 60..270) in the turned image's pixels
    assert abs(x0 - 60) <= 3 and abs(x1 - 270) <= 3 and abs(y0 - 50) <= 3 and abs(y1 - 850) <= 3
