"""Tables and results as files, from the engine's JSON shape: cell text from lines, CSV, XLSX, Markdown."""

from __future__ import annotations

import io

import numpy as np
import openpyxl
import pytest

from engine.errors import TableError
from engine.markdown import escape, table_markdown, to_markdown
from engine.orientation import to_source
from engine.table_files import cell_text, grid, table_csv, tables_xlsx
from engine.table_shape import MAX_CELLS


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


def cell(row: object, col: object, text: str, rowspan: object = 1, colspan: object = 1) -> dict:
    return {"row": row, "col": col, "rowspan": rowspan, "colspan": colspan, "text": text, "lines": []}


def test_a_stored_grid_is_cut_to_where_its_cells_reach_and_cells_outside_it_are_left_out() -> None:
    huge = {"rows": 10**12, "cols": 10**12, "cells": [cell(0, 0, "a"), cell(1, 1, "b", rowspan=2)]}
    assert grid(huge, []) == [["a", ""], ["", "b"], ["", ""]]  # as far as b's span reaches
    outside = {"rows": 2, "cols": 2, "cells": [cell(0, 0, "a", colspan=5), cell(2, 0, "no"), cell(0, -1, "no")]}
    assert grid(outside, []) == [["a", ""]]  # one row: nothing reaches the second
    assert table_markdown(huge, []) == "| a |  |\n| --- | --- |\n|  | b |\n|  |  |"
    sheet = openpyxl.load_workbook(io.BytesIO(tables_xlsx([huge, outside], []))).worksheets[1]
    assert [str(r) for r in sheet.merged_cells.ranges] == ["A1:B1"]  # colspan 5 cut at the grid's 2 columns
    assert grid({"rows": 3, "cols": 3, "cells": []}, []) == []


def test_a_grid_over_the_bound_is_refused_naming_the_table() -> None:
    side = int(MAX_CELLS**0.5) + 1
    absurd = {"rows": 10**9, "cols": 10**9, "page": 2, "cells": [cell(side - 1, side - 1, "far")]}
    with pytest.raises(ValueError, match=r"table 2 \(page 2\): its grid of 1,001 x 1,001 positions is over"):
        tables_xlsx([{"rows": 1, "cols": 1, "cells": [cell(0, 0, "x")]}, absurd], [])
    with pytest.raises(TableError, match="^table 1 \\(page 2\\): its grid"):
        to_markdown({"lines": [], "blocks": [], "tables": [absurd]})
    with pytest.raises(ValueError, match="^t3: its grid"):
        table_csv(absurd, [], "t3")
    with pytest.raises(ValueError, match="^table: its grid of 1,000,000,000 x 1 positions"):
        grid({"rows": 10**12, "cols": 1, "cells": [cell(0, 0, "tall", rowspan=10**9)]}, [])


@pytest.mark.parametrize(
    ("table", "cause"),
    [
        ({"rows": "3", "cols": 2, "cells": []}, "rows must be a whole number, got '3'"),
        ({"rows": 3, "cols": 2.0, "cells": []}, "cols must be a whole number, got 2.0"),
        ({"rows": -1, "cols": 2, "cells": []}, "rows and cols must be 0 or more"),
        ({"rows": 3, "cols": 2, "cells": [cell(0, 0, "a"), cell("1", 0, "b")]}, "cell 2's row must be a whole number"),
        ({"rows": 3, "cols": 2, "cells": [cell(0, True, "a")]}, "cell 1's col must be a whole number, got True"),
        ({"rows": 3, "cols": 2, "cells": [cell(0, 0, "a", rowspan=None)]}, "cell 1's rowspan must be a whole"),
        ({"rows": 3, "cols": 2, "cells": ["a"]}, "cell 1 must be an object, got str"),
        ({"rows": 3, "cols": 2, "cells": {"row": 0}}, "its cells must be a list, got dict"),
    ],
)
def test_a_position_that_is_not_a_whole_number_is_refused_naming_the_table(table: dict, cause: str) -> None:
    with pytest.raises(ValueError, match="^table: ") as caught:
        grid(table, [])
    assert cause in str(caught.value)
    with pytest.raises(ValueError, match="^table 1: "):
        tables_xlsx([table], [])


def test_a_merge_that_overlaps_an_earlier_one_is_left_out_of_the_workbook() -> None:
    cells = [
        cell(0, 0, "wide", colspan=2),
        cell(0, 1, "tall", rowspan=2),  # its top-left is under "wide": left out
        cell(1, 0, "below", colspan=2),  # overlaps only "tall", which is not merged
        cell(2, 0, "a", rowspan=2, colspan=2),
        cell(3, 1, "b", rowspan=1, colspan=2),  # (3, 1) is under "a"
    ]
    table = {"rows": 4, "cols": 3, "cells": cells}
    sheet = openpyxl.load_workbook(io.BytesIO(tables_xlsx([table], []))).active
    assert sorted(str(r) for r in sheet.merged_cells.ranges) == ["A1:B1", "A2:B2", "A3:B4"]
    assert [sheet["A1"].value, sheet["A2"].value, sheet["A3"].value] == ["wide", "below", "a"]


@pytest.mark.parametrize(
    ("text", "value", "number_format"),
    [
        ("12", 12, "0"),
        ("1.50", 1.5, "0.00"),  # a number, shown with the decimals it was written with
        ("-12.30", -12.3, "0.00"),
        ("0.000", 0.0, "0.000"),
        ("123456789012345", 123456789012345, "0"),  # 15 digits: all shown, no 1.23E+14
        ("0.000123456789012345", 0.000123456789012345, "0.000000000000000000"),  # leading zeros are not significant
        ("1234567890123456", "1234567890123456", "General"),  # 16 significant digits: Excel would round it
        ("1234567890.123456", "1234567890.123456", "General"),
        ("-0", "-0", "General"),
        ("-0.00", "-0.00", "General"),
        ("007", "007", "General"),
        (".5", ".5", "General"),
        ("1e5", "1e5", "General"),
        ("1,000", "1,000", "General"),
    ],
)
def test_a_number_goes_into_the_workbook_only_as_it_reads(text: str, value: object, number_format: str) -> None:
    table = {"rows": 1, "cols": 1, "cells": [cell(0, 0, text)]}
    got = openpyxl.load_workbook(io.BytesIO(tables_xlsx([table], []))).active["A1"]
    assert (got.value, got.number_format) == (value, number_format)
    assert isinstance(got.value, str) == isinstance(value, str)  # text stays text, a number a number


def test_markdown_escapes_what_it_would_take_for_markup() -> None:
    assert escape("# not a heading") == "\\# not a heading"
    assert escape("1. not a list") == "1\\. not a list"
    assert escape("a*b_c [x]") == "a\\*b\\_c \\[x\\]"
    assert escape("~~not struck~~") == "\\~\\~not struck\\~\\~"
    item = {
        "lines": [line("• first", 0, 0), line("2) second", 0, 30), line("a|b", 0, 80)],
        "blocks": [{"kind": "list", "lines": [0, 1]}, {"kind": "paragraph", "lines": [2]}],
        "tables": [],
    }
    assert to_markdown(item) == "- first\n2) second\n\na|b\n"


def test_a_markdown_table_cell_escapes_inline_markup_and_keeps_its_rows() -> None:
    texts = ["*bold* _it_", "[x](y) `c`", "<b>a|b</b>", "back\\slash", "# kept\nsecond row"]
    table = {"rows": 2, "cols": 5, "cells": [cell(1, col, text) for col, text in enumerate(texts)]}
    body = table_markdown(table, []).splitlines()[2]
    assert body == (
        "| \\*bold\\* \\_it\\_ | \\[x\\](y) \\`c\\` | \\<b>a\\|b\\</b> | back\\\\slash | # kept<br>second row |"
    )


def test_a_document_s_pages_are_apart_by_a_rule() -> None:
    item = {
        "pages": [{"page": 1}, {"page": 2}],
        "lines": [{**line("one", 0, 0), "page": 1}, {**line("two", 0, 0), "page": 2}],
        "blocks": [{"kind": "paragraph", "lines": [0], "page": 1}, {"kind": "paragraph", "lines": [1], "page": 2}],
    }
    assert to_markdown(item) == "one\n\n---\n\ntwo\n"


@pytest.mark.parametrize("empty", [[1], [2], [4], [2, 3], [1, 4]])
def test_an_empty_page_leaves_one_rule_between_the_pages_that_have_text(empty: list[int]) -> None:
    texts = {number: f"page {number}" for number in range(1, 5) if number not in empty}
    lines = [{**line(text, 0, 0), "page": number} for number, text in texts.items()]
    item = {
        "filename": "doc.pdf",
        "pages": [{"page": number} for number in range(1, 5)],
        "lines": lines,
        "blocks": [{"kind": "paragraph", "lines": [i], "page": ln["page"]} for i, ln in enumerate(lines)],
        "tables": [{"rows": 1, "cols": 1, "page": 4, "cells": []}],  # no cells: writes nothing
    }
    assert to_markdown(item) == "# doc.pdf\n\n" + "\n\n---\n\n".join(texts.values()) + "\n"
