"""A result's tables and Markdown over the API: CSV and XLSX round-trip the grid (a merged cell
included), a correction shows in them, Markdown has the heading, the paragraph and the table, a
duplicate answers with its first result's reading, and a result stored without blocks is laid out
from its lines."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import openpyxl
from flask.testing import FlaskClient

from daemon.records import ResultRecord
from web.services import Services

T0 = 1_700_000_000.0
# A 3 x 4 grid: header row, then two rows; "Total" spans columns 0-2 of the last row.
CELLS = [
    ("Item", 0, 0, 1, 1),
    ("Qty", 0, 1, 1, 1),
    ("Price", 0, 2, 1, 1),
    ("Sum", 0, 3, 1, 1),
    ("苹果", 1, 0, 1, 1),
    ("2", 1, 1, 1, 1),
    ("3.50", 1, 2, 1, 1),
    ("=7.00", 1, 3, 1, 1),
    ("Total", 2, 0, 1, 3),
    ("007", 2, 3, 1, 1),
]


def box(x: float, y: float, w: float = 80, h: float = 20) -> list[list[float]]:
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]


def store_table_result(svc: Services, filename: str = "invoice.png", md5: str | None = None) -> ResultRecord:
    lines: list[dict[str, Any]] = [{"text": "Invoice 42", "points": box(10, 10, 200, 30), "confidence": 0.99}]
    lines.append({"text": "Thank you for your order.", "points": box(10, 60, 300), "confidence": 0.98})
    cells = []
    for text, row, col, rowspan, colspan in CELLS:
        cells.append(
            {"row": row, "col": col, "rowspan": rowspan, "colspan": colspan, "text": text, "lines": [len(lines)]}
        )
        lines.append({"text": text, "points": box(10 + 100 * col, 120 + 40 * row), "confidence": 0.95})
    table_lines = list(range(2, len(lines)))
    blocks = [
        {"kind": "heading", "lines": [0], "rows": [[0]], "bbox": [10, 10, 210, 40]},
        {"kind": "paragraph", "lines": [1], "rows": [[1]], "bbox": [10, 60, 310, 80]},
        {"kind": "table", "lines": table_lines, "rows": [table_lines], "bbox": [10, 120, 410, 220]},
    ]
    table = {"rows": 3, "cols": 4, "bbox": [10, 120, 410, 220], "ruled": True, "cells": cells}
    rec = svc.store.add_queued(
        ResultRecord(
            id=uuid.uuid4().hex,
            md5=md5 or uuid.uuid4().hex,
            path=str(svc.settings.shared_dir / filename),
            filename=filename,
            channel="",
            size=100,
            created_at=T0,
        )
    )
    done = svc.store.complete(
        rec.id,
        width=640,
        height=480,
        lines=lines,
        text="...",
        timings={"total": 0.1},
        engine_version="1",
        model_version="small",
        finished_at=T0 + 1,
        blocks=blocks,
        tables=[table],
    )
    assert done is not None and done.tables == [table] and done.blocks == blocks
    return done


def test_csv_and_xlsx_round_trip_the_grid_with_its_merged_cell(client: FlaskClient, auth: dict, svc: Services) -> None:
    rec = store_table_result(svc)
    response = client.get(f"/api/v1/results/{rec.id}/tables/1.csv", headers=auth["bob"])
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "invoice-table-1.csv" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows == [
        ["Item", "Qty", "Price", "Sum"],
        ["苹果", "2", "3.50", "'=7.00"],  # a formula-like cell stays text
        ["Total", "", "", "007"],
    ]

    response = client.get(f"/api/v1/results/{rec.id}/tables.xlsx", headers=auth["bob"])
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data())).active
    assert sheet.title == "Table 1"
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values == [["Item", "Qty", "Price", "Sum"], ["苹果", 2, 3.5, "=7.00"], ["Total", None, None, "007"]]
    assert sheet["D2"].data_type == "s"  # text, never a formula
    assert [str(r) for r in sheet.merged_cells.ranges] == ["A3:C3"]

    listed = client.get(f"/api/v1/results/{rec.id}/tables", headers=auth["bob"]).get_json()
    assert listed["tables"][0]["rows"] == 3 and listed["tables"][0]["cols"] == 4
    assert client.get(f"/api/v1/results/{rec.id}/tables/2.csv", headers=auth["bob"]).status_code == 404


def test_a_correction_shows_in_the_tables(client: FlaskClient, auth: dict, svc: Services) -> None:
    rec = store_table_result(svc)
    index = next(i for i, line in enumerate(rec.lines) if line["text"] == "Qty")
    post = client.post(f"/api/v1/results/{rec.id}/lines/{index}", json={"text": "Quantity"}, headers=auth["bob"])
    assert post.status_code == 200, post.get_json()
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(f"/api/v1/results/{rec.id}/tables/1.csv", headers=auth["bob"]).get_data().decode("utf-8-sig")
            )
        )
    )
    assert rows[0] == ["Item", "Quantity", "Price", "Sum"]
    cells = client.get(f"/api/v1/results/{rec.id}/tables", headers=auth["bob"]).get_json()["tables"][0]["cells"]
    assert cells[1]["text"] == "Quantity"


def test_markdown_has_the_heading_the_paragraph_and_the_table(client: FlaskClient, auth: dict, svc: Services) -> None:
    rec = store_table_result(svc)
    response = client.get(f"/api/v1/results/{rec.id}/export?format=md", headers=auth["bob"])
    assert response.status_code == 200 and response.mimetype == "text/markdown"
    text = response.get_data(as_text=True)
    assert text.startswith("# invoice.png\n\n## Invoice 42\n\nThank you for your order.\n\n")
    assert (
        "| Item | Qty | Price | Sum |\n| --- | --- | --- | --- |\n| 苹果 | 2 | 3.50 | =7.00 |\n| Total |  |  | 007 |"
        in text
    )
    assert text.count("Total") == 1  # a table's lines are not written again as text
    many = client.get("/api/v1/export?format=md", headers=auth["bob"])
    assert many.status_code == 200 and "| Item | Qty | Price | Sum |" in many.get_data(as_text=True)
    assert client.get(f"/api/v1/results/{rec.id}/export?format=doc", headers=auth["bob"]).status_code == 400


def test_a_duplicate_answers_with_its_first_reading(client: FlaskClient, auth: dict, svc: Services) -> None:
    primary = store_table_result(svc, md5="ab" * 16)
    dup = svc.store.add_duplicate(
        ResultRecord(
            id=uuid.uuid4().hex,
            md5=primary.md5,
            path=str(svc.settings.shared_dir / "copy.png"),
            filename="copy.png",
            channel="",
            size=100,
            created_at=T0 + 5,
            status="duplicate",
            duplicate_of=primary.id,
        )
    )
    response = client.get(f"/api/v1/results/{dup.id}/tables/1.csv", headers=auth["bob"])
    assert response.status_code == 200 and "copy-table-1.csv" in response.headers["Content-Disposition"]
    assert "Total" in response.get_data(as_text=True)


def test_a_result_without_blocks_is_laid_out_from_its_lines(client: FlaskClient, auth: dict, svc: Services) -> None:
    rec = svc.store.add_queued(
        ResultRecord(
            id=uuid.uuid4().hex, md5=uuid.uuid4().hex, path=str(svc.settings.shared_dir / "old.png"),
            filename="old.png", channel="", size=1, created_at=T0,
        )
    )  # fmt: skip
    lines = [
        {"text": "left one", "points": box(10, 10, 150), "confidence": 0.9},
        {"text": "right one", "points": box(400, 10, 150), "confidence": 0.9},
        {"text": "left two", "points": box(10, 40, 150), "confidence": 0.9},
        {"text": "right two", "points": box(400, 40, 150), "confidence": 0.9},
    ]
    svc.store.complete(
        rec.id, width=600, height=100, lines=lines, text="", timings={}, engine_version="1",
        model_version="small", finished_at=T0 + 1,
    )  # fmt: skip
    detail = client.get(f"/api/v1/results/{rec.id}", headers=auth["bob"]).get_json()
    assert sorted(i for block in detail["blocks"] for i in block["lines"]) == [0, 1, 2, 3]
    text = client.get(f"/api/v1/results/{rec.id}/export", headers=auth["bob"]).get_data(as_text=True)
    assert all(word in text for word in ("left one", "right two"))
    assert client.get(f"/api/v1/results/{rec.id}/tables.xlsx", headers=auth["bob"]).status_code == 200
    corrected = client.post(f"/api/v1/results/{rec.id}/lines/0", json={"text": "left 1"}, headers=auth["bob"])
    assert corrected.status_code == 200
    assert corrected.get_json()["blocks"] == detail["blocks"]  # the answer (and its socket event) laid out too


def test_a_stored_table_that_cannot_be_laid_out_is_a_422_naming_the_file_and_the_table(
    client: FlaskClient, auth: dict, svc: Services
) -> None:
    rec = svc.store.add_queued(
        ResultRecord(
            id=uuid.uuid4().hex, md5=uuid.uuid4().hex, path=str(svc.settings.shared_dir / "bad.png"),
            filename="bad.png", channel="", size=1, created_at=T0,
        )
    )  # fmt: skip
    lines = [{"text": "cell", "points": box(10, 10), "confidence": 0.9}]
    cells = [{"row": "0", "col": 0, "rowspan": 1, "colspan": 1, "text": "cell", "lines": [0]}]
    svc.store.complete(
        rec.id, width=600, height=100, lines=lines, text="cell", timings={}, engine_version="1",
        model_version="small", finished_at=T0 + 1, tables=[{"rows": 1, "cols": 1, "cells": cells}],
        blocks=[{"kind": "table", "lines": [0], "rows": [[0]], "bbox": [10, 10, 90, 30]}],
    )  # fmt: skip
    for url in (
        f"/api/v1/results/{rec.id}/tables/1.csv",
        f"/api/v1/results/{rec.id}/tables.xlsx",
        f"/api/v1/results/{rec.id}/export?format=md",
        "/api/v1/export?format=md",
    ):
        response = client.get(url, headers=auth["bob"])
        assert response.status_code == 422, (url, response.get_data(as_text=True))
        error = response.get_json()["error"]
        assert "bad.png" in error and "table 1: cell 1's row must be a whole number, got '0'" in error, (url, error)
    assert client.get(f"/api/v1/results/{rec.id}/tables", headers=auth["bob"]).status_code == 200
