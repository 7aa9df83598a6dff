"""``teamocr ocr --tables DIR``'s files from a run's rows: a CSV per table as rows arrive, a workbook
per input with all of its tables (a document's pages' tables as sheets), same stems kept apart."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl

from daemon.offline.tables_out import TableFiles


def row(image: str, texts: list[str], page: int | None = None) -> dict:
    lines = [
        {"text": t, "points": [[i * 100, 0], [i * 100 + 80, 0], [i * 100 + 80, 20], [i * 100, 20]]}
        for i, t in enumerate(texts)
    ]
    cells = [{"row": 0, "col": i, "rowspan": 1, "colspan": 1, "text": t, "lines": [i]} for i, t in enumerate(texts)]
    out = {"image": image, "lines": lines, "tables": [{"rows": 1, "cols": len(texts), "cells": cells}]}
    if page is not None:
        out |= {"image": f"{image}#page={page}", "page": page}
    return out


def test_each_table_a_csv_and_each_input_a_workbook(tmp_path: Path) -> None:
    files = TableFiles(tmp_path / "out")
    files.add(row("a/scan.png", ["x", "y"]))
    files.add(row("b/scan.png", ["z", "w"]))  # the same stem: kept apart
    files.add(row("doc.pdf", ["p1"], page=1))
    files.add({"image": "doc.pdf#page=2", "page": 2, "lines": [], "tables": []})
    files.add(row("doc.pdf", ["p3a", "p3b"], page=3))
    files.add({"image": "bad.png", "error": "not an image", "lines": []})
    assert files.finish() == 4
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "doc-p1-table-1.csv", "doc-p3-table-1.csv", "doc.xlsx",
        "scan-2-table-1.csv", "scan-2.xlsx", "scan-table-1.csv", "scan.xlsx",
    ]  # fmt: skip
    text = (tmp_path / "out" / "scan-2-table-1.csv").read_bytes().decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [["z", "w"]]
    book = openpyxl.load_workbook(tmp_path / "out" / "doc.xlsx")
    assert book.sheetnames == ["p1 t1", "p3 t1"]
    assert [c.value for c in book["p3 t1"][1]] == ["p3a", "p3b"]  # its lines, not page 1's


def test_a_name_two_inputs_would_share_is_written_once_each(tmp_path: Path) -> None:
    files = TableFiles(tmp_path / "out")
    files.add(row("scan-p1.png", ["image"]))  # scan-p1-table-1.csv
    files.add(row("scan.pdf", ["page"], page=1))  # would be scan-p1-table-1.csv too
    assert files.finish() == 2
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["scan-p1-table-1-2.csv", "scan-p1-table-1.csv", "scan-p1.xlsx", "scan.xlsx"]
    texts = {(tmp_path / "out" / n).read_bytes().decode("utf-8-sig").strip() for n in names if n.endswith(".csv")}
    assert texts == {"image", "page"}
