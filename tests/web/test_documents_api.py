"""A document's pages through the API, on the real app, Redis and store, with a real PDF in the
shared folder: each page's picture and its boxes, the result's page fields, and refusals."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from typing import Any

import cv2
import numpy as np
from flask.testing import FlaskClient

from daemon.records import ResultRecord
from tests.engine.docmakers import mixed_pdf
from web.services import Services

BOX = [[200, 40], [560, 40], [560, 90], [200, 90]]  # on page 2 (the scan), in its rendered pixels


def stored_file(svc: Services, name: str, data: bytes, **reading: Any) -> ResultRecord:
    """``name`` in finance (team alpha) holding ``data``, stored as intake does; done with
    ``reading`` (as the recorder stores a worker's result) unless it is empty."""
    path = svc.settings.shared_dir / "finance" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    rec = svc.store.add_queued(
        ResultRecord(
            id=uuid.uuid4().hex,
            md5=hashlib.md5(data).hexdigest(),
            path=str(path),
            filename=name,
            channel="finance",
            size=len(data),
            created_at=1.0,
        )
    )
    if not reading:
        return rec
    done = svc.store.complete(
        rec.id, timings={"total": 1.0}, engine_version="e", model_version="m", finished_at=2.0, **reading
    )
    assert done is not None
    return done


def stored_document(svc: Services) -> ResultRecord:
    """report.pdf in finance (team alpha), stored as a worker reads it: two pages, lines on each."""
    lines = [
        {"text": "Quarterly report 2026", "points": [[200, 250], [700, 250], [700, 290], [200, 290]],
         "confidence": 1.0, "source": "pdf", "page": 1},
        {"text": "Quarterly report 2026", "points": BOX, "confidence": 0.98, "source": "ocr", "page": 2},
    ]  # fmt: skip
    pages = [{"page": 1, "width": 1653, "height": 2339, "rotation": 0}, {"page": 2, "width": 1200, "height": 667}]
    return stored_file(
        svc, "report.pdf", mixed_pdf(), width=1653, height=2339, lines=lines,
        text="Quarterly report 2026\n\f\nQuarterly report 2026", page_count=2, pages=pages,
    )  # fmt: skip


def png_of(response: Any) -> np.ndarray:
    assert response.status_code == 200 and response.mimetype == "image/png", response.get_data(as_text=True)[:200]
    image = cv2.imdecode(np.frombuffer(response.data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_each_page_has_its_picture_and_its_boxes(client: FlaskClient, auth: dict, svc: Services) -> None:
    rec = stored_document(svc)
    item = client.get(f"/api/v1/results/{rec.id}", headers=auth["bob"]).get_json()
    assert item["page_count"] == 2 and [p["page"] for p in item["pages"]] == [1, 2]
    assert [line["page"] for line in item["lines"]] == [1, 2]
    first = png_of(client.get(f"/api/v1/results/{rec.id}/pages/1/image", headers=auth["bob"]))
    assert first.shape[:2] == (2339, 1653)  # A4 at engine.pdf_dpi (200)
    second = png_of(client.get(f"/api/v1/results/{rec.id}/pages/2/image", headers=auth["bob"]))
    assert second.shape[:2] == (667, 1200)  # the scan's page, 432 x 240 pt
    drawn = png_of(client.get(f"/api/v1/results/{rec.id}/pages/2/annotated", headers=auth["bob"]))
    b, g, r = (int(v) for v in drawn[40, 380])  # on the top edge of page 2's box
    assert g > 120 and b < 80 and r < 80
    plain_first = png_of(client.get(f"/api/v1/results/{rec.id}/annotated", headers=auth["bob"]))
    assert plain_first.shape[:2] == (2339, 1653)  # /annotated of a document: its first page
    assert tuple(int(v) for v in plain_first[40, 380]) == (255, 255, 255)  # page 2's box is not on page 1


def test_pages_that_are_not_there_and_other_teams(client: FlaskClient, auth: dict, svc: Services) -> None:
    rec = stored_document(svc)
    for page in (0, 3, 99):
        response = client.get(f"/api/v1/results/{rec.id}/pages/{page}/image", headers=auth["bob"])
        assert response.status_code == 404 and "page" in response.get_json()["error"]
    for kind in ("image", "annotated"):  # carol is team beta: finance's result does not exist for her
        response = client.get(f"/api/v1/results/{rec.id}/pages/1/{kind}", headers=auth["carol"])
        assert response.status_code == 404 and response.get_json()["error"] == "result not found"
    (svc.settings.shared_dir / "finance" / "report.pdf").write_bytes(mixed_pdf()[:-10] + b"changed!!\n")
    changed = client.get(f"/api/v1/results/{rec.id}/pages/1/image", headers=auth["bob"])
    assert changed.status_code == 410  # not the bytes that were read: never rendered


def test_search_names_the_pages_and_csv_has_a_row_per_page(client: FlaskClient, auth: dict, svc: Services) -> None:
    rec = stored_document(svc)
    svc.store.correct(rec.id, 1, "Annual summary 2026", "bob", 3.0)  # page 2's line now differs
    found = client.get("/api/v1/search", query_string={"q": "annual"}, headers=auth["bob"]).get_json()
    assert [i["id"] for i in found["items"]] == [rec.id] and found["hits"] == [{"id": rec.id, "pages": [2]}]
    both = client.get("/api/v1/search", query_string={"q": "2026"}, headers=auth["bob"]).get_json()
    assert both["hits"] == [{"id": rec.id, "pages": [1, 2]}]
    table = list(
        csv.DictReader(io.StringIO(client.get("/api/v1/export", headers=auth["bob"]).data.decode("utf-8-sig")))
    )
    assert [(r["id"], r["page"], r["text"]) for r in table] == [
        (rec.id, "1", "Quarterly report 2026"),
        (rec.id, "2", "Annual summary 2026"),
    ]


def test_a_line_is_corrected_by_page_and_line(client: FlaskClient, auth: dict, svc: Services) -> None:
    rec = stored_document(svc)
    url = f"/api/v1/results/{rec.id}/pages/2/lines/0"
    item = client.post(url, json={"text": "Quarterly report 2027"}, headers=auth["bob"]).get_json()
    assert [line["text"] for line in item["lines"]] == ["Quarterly report 2026", "Quarterly report 2027"]
    assert item["lines"][1]["page"] == 2 and item["lines"][1]["original_text"] == "Quarterly report 2026"
    missing = client.post(f"/api/v1/results/{rec.id}/pages/2/lines/1", json={"text": "x"}, headers=auth["bob"])
    assert missing.status_code == 404 and "no line 1" in missing.get_json()["error"]
    other = client.post(url, json={"text": "x"}, headers=auth["carol"])
    assert other.status_code == 404 and other.get_json()["error"] == "result not found"
