"""Tables and results as files, from the engine's JSON shape: cell text from lines, CSV, XLSX, Markdown."""

from __future__ import annotations

import io

import numpy as np
import openpyxl
import pytest

from engine.markdown import escape, to_markdown
from engine.orientation import to_source
from engine.table_files import cell_text, table_csv, tables_xlsx


def line(text: str, x: float, y: float) -> dict:
    return {"text": text, "points": [[x, y], [x + 50, y], [x + 50, y + 20], [x, y + 20]], "confidence": 0.9}


def test_a_cell_reads_its_lines_row_by_row_and_joins_cjk_without_spaces() -> None:
    lines = [line("二", 60, 0), line("一", 0, 2), line("next", 0, 40)]
    assert cell_text({"lines": [0, 1, 2], "text": "old"}, lines) == "一二\nnext"
    assert cell_text({"lines": [], "text": "kept"}, lines) == "kept"
    assert cell_text({"lines": [9], "text": "out of range"}, lines) == "out of range"


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_cell_on_a_turned_page_reads_its_lines_in_the_upright_order(degrees: int) -> None:
    # drawn upright, then put back in the pixels of the page as it came (turned): the stored frame
    upright = [line("second row", 0, 30), line("first", 0, 0), line("row", 60, 2)]
    lines = [
        {**ln, "points": to_source(np.array(ln["points"], dtype=np.float64), degrees, 800, 600).tolist()}
        for ln in upright
    ]
    assert cell_text({"lines": [0, 1, 2]}, lines) == "first row\nsecond row"


def test_xlsx_drops_characters_xml_cannot_hold_and_names_sheets_by_page() -> None:
    tables = [
        {
            "rows": 1,
            "cols": 1,
            "page": 2,
            "cells": [{"row": 0, "col": 0, "rowspan": 1, "colspan": 1, "text": "a\x07b", "lines": []}],
        },
        {
            "rows": 1,
            "cols": 1,
            "page": 2,
            "cells": [{"row": 0, "col": 0, "rowspan": 1, "colspan": 1, "text": "-1", "lines": []}],
        },
    ]
    book = openpyxl.load_workbook(io.BytesIO(tables_xlsx(tables, [])))
    assert book.sheetnames == ["p2 t1", "p2 t2"]
    assert book["p2 t1"]["A1"].value == "ab" and book["p2 t2"]["A1"].value == -1
    assert openpyxl.load_workbook(io.BytesIO(tables_xlsx([], []))).sheetnames == ["No tables"]
    assert table_csv(tables[1], []) == "\ufeff'-1\r\n".encode()


def test_markdown_escapes_what_it_would_take_for_markup() -> None:
    assert escape("# not a heading") == "\\# not a heading"
    assert escape("1. not a list") == "1\\. not a list"
    assert escape("a*b_c [x]") == "a\\*b\\_c \\[x\\]"
    item = {
        "lines": [line("• first", 0, 0), line("2) second", 0, 30), line("a|b", 0, 80)],
        "blocks": [{"kind": "list", "lines": [0, 1]}, {"kind": "paragraph", "lines": [2]}],
        "tables": [],
    }
    assert to_markdown(item) == "- first\n2) second\n\na|b\n"


def test_a_document_s_pages_are_apart_by_a_rule() -> None:
    item = {
        "pages": [{"page": 1}, {"page": 2}],
        "lines": [{**line("one", 0, 0), "page": 1}, {**line("two", 0, 0), "page": 2}],
        "blocks": [{"kind": "paragraph", "lines": [0], "page": 1}, {"kind": "paragraph", "lines": [1], "page": 2}],
    }
    assert to_markdown(item) == "one\n\n---\n\ntwo\n"
