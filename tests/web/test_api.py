"""The results API on the real app, Redis and store: what each team sees, and what it is refused.

alice and bob (team alpha, the default team) see the root channel "" and "finance"; carol (team
beta) sees only "sales". Rows go straight into the store; image files are real, made with cv2.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient

from daemon.records import ResultRecord
from web.services import Services

BOX = [[40, 30], [300, 30], [300, 90], [40, 90]]
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def add_result(
    svc: Services,
    channel: str,
    filename: str = "page.png",
    *,
    text: str = "hello world",
    status: str = "done",
    created_at: float = T0,
    uploader: str | None = None,
    path: Path | None = None,
    tables: list[dict[str, Any]] | None = None,
) -> ResultRecord:
    """Store a result the way the recorder would: queued, then done or failed (with ``tables``, if
    any). A file already at its path gives the result its MD5 and size (the web serves only those
    bytes); else they are made up."""
    file = path or svc.settings.shared_dir / channel / filename
    md5, size = uuid.uuid4().hex, 1234
    if file.is_file():
        data = file.read_bytes()
        md5, size = hashlib.md5(data).hexdigest(), len(data)
    rec = svc.store.add_queued(
        ResultRecord(
            id=uuid.uuid4().hex,
            md5=md5,
            path=str(file),
            filename=filename,
            channel=channel,
            size=size,
            created_at=created_at,
            uploader=uploader,
        )
    )
    if status == "done":
        lines = [{"text": word, "points": BOX, "confidence": 0.9} for word in text.split("\n")]
        rec = svc.store.complete(
            rec.id,
            width=640,
            height=160,
            lines=lines,
            text=text,
            timings={"decode": 0.01, "detect": 0.1, "recognize": 0.2, "total": 0.31},
            engine_version="1",
            model_version="small",
            tables=tables,
            finished_at=created_at + 1,
        )
    elif status == "failed":
        rec = svc.store.fail(rec.id, "not an image", 1, created_at + 1)
    assert rec is not None
    return rec


def write_image(path: Path, ext: str = ".png", text: str = "hello world") -> bytes:
    image = np.full((160, 640, 3), 255, np.uint8)
    cv2.putText(image, text, (50, 75), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 2)
    ok, data = cv2.imencode(ext, image)
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())
    return data.tobytes()


@pytest.fixture
def rows(svc: Services) -> dict[str, ResultRecord]:
    """One result per channel plus a queued and a failed one, oldest first."""
    return {
        "root": add_result(svc, "", "root.png", text="invoice total 42", created_at=T0, uploader="bob"),
        "finance": add_result(svc, "finance", "fin.png", text="finance report", created_at=T0 + 10),
        "sales": add_result(svc, "sales", "sales.png", text="sales secret plan", created_at=T0 + 20),
        "queued": add_result(svc, "finance", "later.png", status="queued", created_at=T0 + 30),
        "failed": add_result(svc, "", "broken.png", status="failed", created_at=T0 + 40),
    }


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


ENDPOINTS = [
    "/api/v1/results",
    "/api/v1/results/{id}",
    "/api/v1/results/{id}/image",
    "/api/v1/results/{id}/annotated",
    "/api/v1/search?q=hello",
    "/api/v1/export",
]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_every_endpoint_needs_a_token(client: FlaskClient, rows: dict, url: str) -> None:
    response = client.get(url.format(id=rows["root"].id))
    assert response.status_code == 401 and response.get_json()["status"] == 401
    bad = client.get(url.format(id=rows["root"].id), headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    post = client.post(f"/api/v1/results/{rows['root'].id}/lines/0", json={"text": "x"})
    assert post.status_code == 401


def test_list_is_newest_first_and_scoped_to_the_team(client: FlaskClient, auth: dict, rows: dict) -> None:
    alpha = [rows[name].id for name in ("failed", "queued", "finance", "root")]
    assert ids(client.get("/api/v1/results", headers=auth["bob"])) == alpha
    assert ids(client.get("/api/v1/results", headers=auth["carol"])) == [rows["sales"].id]
    body = client.get("/api/v1/results", headers=auth["carol"]).get_json()
    assert body["counts"] == {"queued": 0, "processing": 0, "done": 1, "duplicate": 0, "failed": 0}
    assert (body["limit"], body["offset"], body["next_offset"]) == (50, 0, None)
    body = client.get("/api/v1/results", headers=auth["alice"]).get_json()
    assert body["counts"] == {"queued": 1, "processing": 0, "done": 2, "duplicate": 0, "failed": 1}
    assert all("path" not in item and item["channel"] in ("", "finance") for item in body["items"])


def test_list_pages_with_next_offset(client: FlaskClient, auth: dict, rows: dict) -> None:
    first = client.get("/api/v1/results?limit=3", headers=auth["bob"]).get_json()
    assert len(first["items"]) == 3 and first["next_offset"] == 3
    last = client.get("/api/v1/results?limit=3&offset=3", headers=auth["bob"]).get_json()
    assert [i["id"] for i in last["items"]] == [rows["root"].id] and last["next_offset"] is None
    exact = client.get("/api/v1/results?limit=4", headers=auth["bob"]).get_json()
    assert exact["next_offset"] is None  # nothing beyond, even though the page is full


FILTERS = [
    ("channel=finance", ["queued", "finance"]),
    ("channel=", ["failed", "root"]),
    ("channel=sales", []),  # another team's channel: nothing, not an error
    ("status=done", ["finance", "root"]),
    ("status=failed", ["failed"]),
    (f"since={T0 + 10}", ["failed", "queued", "finance"]),
    (f"since={T0 + 10}&until={T0 + 40}", ["queued", "finance"]),
    ("since=2023-11-14T22:13:30Z", ["failed", "queued", "finance"]),
    ("until=2023-11-14T22:13:30%2B00:00", ["root"]),
    ("since=2023-11-15", []),
    ("uploader=bob", ["root"]),
]
BAD_QUERIES = [
    "limit=0",
    "limit=501",
    "limit=abc",
    "limit=-1",
    "limit=1.5",
    "offset=-1",
    "offset=x",
    "status=bogus",
    "since=yesterday",
    "until=2024-13-01",
    "since=nan",
    "until=1e999",
]


def test_list_filters(client: FlaskClient, auth: dict, rows: dict) -> None:
    for query, expected in FILTERS:
        got = ids(client.get(f"/api/v1/results?{query}", headers=auth["alice"]))
        assert got == [rows[n].id for n in expected], query
    assert ids(client.get("/api/v1/results?channel=finance", headers=auth["carol"])) == []
    assert ids(client.get("/api/v1/results?uploader=bob", headers=auth["carol"])) == []


def test_list_refuses_bad_parameters(client: FlaskClient, auth: dict) -> None:
    for query in BAD_QUERIES:
        response = client.get(f"/api/v1/results?{query}", headers=auth["bob"])
        assert response.status_code == 400, query
        assert response.get_json()["status"] == 400 and query.split("=")[0] in response.get_json()["error"], query


def test_detail_has_corrections_and_hides_other_teams(client: FlaskClient, auth: dict, rows: dict) -> None:
    detail = client.get(f"/api/v1/results/{rows['finance'].id}", headers=auth["bob"])
    assert detail.status_code == 200
    body = detail.get_json()
    assert body["text"] == "finance report" and body["corrections"] == [] and "path" not in body
    other = client.get(f"/api/v1/results/{rows['finance'].id}", headers=auth["carol"])
    unknown = client.get("/api/v1/results/no-such-id", headers=auth["carol"])
    assert other.status_code == unknown.status_code == 404
    assert other.get_json() == unknown.get_json() == {"error": "result not found", "status": 404}
    assert client.get(f"/api/v1/results/{rows['sales'].id}", headers=auth["alice"]).status_code == 404


def test_search_is_scoped(client: FlaskClient, auth: dict, rows: dict) -> None:
    assert ids(client.get("/api/v1/search?q=secret", headers=auth["alice"])) == []
    found = client.get("/api/v1/search?q=secret", headers=auth["carol"])
    assert ids(found) == [rows["sales"].id] and found.get_json()["query"] == "secret"
    assert ids(client.get("/api/v1/search?q=REPORT", headers=auth["bob"])) == [rows["finance"].id]
    assert ids(client.get("/api/v1/search?q=.png&channel=finance", headers=auth["bob"])) == [
        rows["queued"].id,
        rows["finance"].id,
    ]
    assert ids(client.get("/api/v1/search?q=.png&limit=1", headers=auth["carol"])) == [rows["sales"].id]
    for query in ("", "?q=", "?q=%20%20", "?q=x&limit=0", "?q=%00abc"):
        response = client.get(f"/api/v1/search{query}", headers=auth["bob"])
        assert response.status_code == 400, query


def test_export_formats_parse_back(client: FlaskClient, auth: dict, rows: dict) -> None:
    response = client.get("/api/v1/export?format=csv", headers=auth["bob"])
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.data.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [r["id"] for r in table] == [rows[n].id for n in ("failed", "queued", "finance", "root")]
    assert list(table[0]) == ["id", "filename", "channel", "status", "page", "created_at", "finished_at", "text"]
    assert {r["page"] for r in table} == {"1"}  # images: one page each
    assert table[3]["created_at"] == "2023-11-14T22:13:20Z" and table[3]["text"] == "invoice total 42"
    assert table[1]["finished_at"] == ""
    items = json.loads(client.get("/api/v1/export?format=json&status=done", headers=auth["carol"]).data)
    assert [i["id"] for i in items] == [rows["sales"].id] and items[0]["lines"][0]["text"] == "sales secret plan"
    text = client.get("/api/v1/export?format=txt&channel=finance&status=done", headers=auth["bob"])
    assert text.mimetype == "text/plain"
    assert text.data.decode() == f"== fin.png ({rows['finance'].id}) ==\nfinance report\n"
    assert client.get("/api/v1/export?format=xml", headers=auth["bob"]).status_code == 400
    assert client.get("/api/v1/export?limit=5001", headers=auth["bob"]).status_code == 400


def test_export_pages_past_the_store_limit_and_guards_formulas(client: FlaskClient, auth: dict, svc: Services) -> None:
    for n in range(505):
        add_result(svc, "sales", f"{n}.png", text='=HYPERLINK("x")' if n == 0 else f"row {n}", created_at=T0 + n)
    add_result(svc, "finance", "hidden.png")
    items = json.loads(client.get("/api/v1/export?format=json", headers=auth["carol"]).data)
    assert len(items) == 505 and {i["channel"] for i in items} == {"sales"}
    assert [i["filename"] for i in items[:2]] == ["504.png", "503.png"]
    part = client.get("/api/v1/export?format=json&limit=502&offset=2", headers=auth["carol"])
    assert len(json.loads(part.data)) == 502 and part.headers["X-Result-Count"] == "502"
    table = list(csv.reader(io.StringIO(client.get("/api/v1/export", headers=auth["carol"]).data.decode("utf-8-sig"))))
    assert table[-1][-1] == '\'=HYPERLINK("x")'  # shown as text by Excel, not run


@pytest.mark.parametrize("ext, mimetype", [(".png", "image/png"), (".jpg", "image/jpeg")])
def test_image_is_served_with_its_format(
    client: FlaskClient, auth: dict, svc: Services, ext: str, mimetype: str
) -> None:
    data = write_image(svc.settings.shared_dir / "finance" / f"scan{ext}", ext)
    rec = add_result(svc, "finance", f"scan{ext}")
    response = client.get(f"/api/v1/results/{rec.id}/image", headers=auth["bob"])
    assert response.status_code == 200 and response.mimetype == mimetype and response.data == data
    assert f"filename=scan{ext}" in response.headers["Content-Disposition"]
    assert client.get(f"/api/v1/results/{rec.id}/image", headers=auth["carol"]).status_code == 404


def test_image_refusals(client: FlaskClient, auth: dict, svc: Services, tmp_path: Path) -> None:
    gone = add_result(svc, "", "gone.png")
    response = client.get(f"/api/v1/results/{gone.id}/image", headers=auth["bob"])
    assert response.status_code == 404 and response.get_json()["error"] == "source file no longer available"
    outside = tmp_path / "secret.png"
    write_image(outside)
    escaped = add_result(svc, "", "secret.png", path=outside)
    link = svc.settings.shared_dir / "link.png"
    link.symlink_to(outside)
    linked = add_result(svc, "", "link.png", path=link)
    dotted = add_result(svc, "", "dots.png", path=svc.settings.shared_dir / ".." / "secret.png")
    for rec in (escaped, linked, dotted):  # not the file read, in its channel's folder: gone (410), never served
        for kind in ("image", "annotated"):
            refused = client.get(f"/api/v1/results/{rec.id}/{kind}", headers=auth["bob"])
            assert refused.status_code == 410 and str(tmp_path) not in refused.get_json()["error"]
    (svc.settings.shared_dir / "notes.png").write_text("<html><script>alert(1)</script></html>")
    text = add_result(svc, "", "notes.png", status="failed")
    served = client.get(f"/api/v1/results/{text.id}/image", headers=auth["bob"])
    assert served.mimetype == "application/octet-stream" and served.headers["X-Content-Type-Options"] == "nosniff"
    refused = client.get(f"/api/v1/results/{text.id}/annotated", headers=auth["bob"])
    assert refused.status_code == 422 and str(svc.settings.shared_dir) not in refused.get_json()["error"]


def test_annotated_draws_the_boxes(client: FlaskClient, auth: dict, svc: Services) -> None:
    write_image(svc.settings.shared_dir / "boxes.jpg", ".jpg")
    rec = add_result(svc, "", "boxes.jpg")
    response = client.get(f"/api/v1/results/{rec.id}/annotated", headers=auth["alice"])
    assert response.status_code == 200 and response.mimetype == "image/png"
    image = cv2.imdecode(np.frombuffer(response.data, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (160, 640, 3)
    b, g, r = (int(v) for v in image[30, 170])  # on the box's top edge
    assert g > 120 and b < 80 and r < 80
    assert tuple(image[5, 5]) == (255, 255, 255)  # outside it, untouched
    assert client.get(f"/api/v1/results/{rec.id}/annotated", headers=auth["carol"]).status_code == 404
    copy = svc.settings.shared_dir / "finance" / "copy.jpg"  # a duplicate has no lines of its own
    write_image(copy, ".jpg")
    dup = svc.store.add_duplicate(
        replace(
            rec,
            id=uuid.uuid4().hex,
            path=str(copy),
            filename="copy.jpg",
            channel="finance",
            status="duplicate",
            duplicate_of=rec.id,
            lines=[],
        )
    )
    drawn = client.get(f"/api/v1/results/{dup.id}/annotated", headers=auth["bob"])
    b, g, r = (int(v) for v in cv2.imdecode(np.frombuffer(drawn.data, np.uint8), cv2.IMREAD_COLOR)[30, 170])
    assert g > 120 and b < 80 and r < 80  # the primary's boxes


@pytest.fixture
def emitted(svc: Services, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every socketio.emit call the app makes, recorded (and still performed)."""
    calls: list[tuple[Any, ...]] = []
    real = svc.socketio.emit

    def record(event: str, *args: Any, **kwargs: Any) -> Any:
        calls.append((event, *args, kwargs))
        return real(event, *args, **kwargs)

    monkeypatch.setattr(svc.socketio, "emit", record)
    return calls


def test_correction_is_stored_kept_and_broadcast(client: FlaskClient, auth: dict, rows: dict, emitted: list) -> None:
    before = time.time()
    url = f"/api/v1/results/{rows['finance'].id}/lines/0"
    response = client.post(url, json={"text": "finance report 2024"}, headers=auth["bob"])
    assert response.status_code == 200
    item = response.get_json()
    assert item["text"] == "finance report 2024" and "path" not in item
    assert item["lines"][0]["original_text"] == "finance report" and item["lines"][0]["corrected_by"] == "bob"
    client.post(url, json={"text": "finance report 2025"}, headers=auth["alice"])
    detail = client.get(f"/api/v1/results/{rows['finance'].id}", headers=auth["bob"]).get_json()
    assert [(c["user"], c["original"], c["text"]) for c in detail["corrections"]] == [
        ("bob", "finance report", "finance report 2024"),
        ("alice", "finance report 2024", "finance report 2025"),
    ]
    assert before <= detail["corrections"][0]["at"] <= time.time()
    assert detail["lines"][0]["original_text"] == "finance report"
    event, payload, options = emitted[0]
    assert event == "result" and payload == item and options == {"to": "team:alpha", "namespace": "/"}
    client.post(f"/api/v1/results/{rows['root'].id}/lines/0", json={"text": "x"}, headers=auth["bob"])
    assert emitted[-1][2]["to"] == "team:*default*"
    assert client.get("/api/v1/results", headers=auth["carol"]).get_json()["items"][0]["text"] == "sales secret plan"


CORRECTION_REFUSALS = [
    ("carol", 0, {"text": "x"}, 404),  # another team's result
    ("bob", 5, {"text": "x"}, 404),  # no such line
    ("bob", 0, {"txt": "x"}, 400),
    ("bob", 0, {"text": 5}, 400),
    ("bob", 0, ["x"], 400),
    ("bob", 0, {"text": "x" * 2001}, 400),
    ("bob", 0, {"text": "two\nlines"}, 400),
]


def test_correction_refusals(client: FlaskClient, auth: dict, rows: dict, emitted: list) -> None:
    for who, index, body, status in CORRECTION_REFUSALS:
        response = client.post(f"/api/v1/results/{rows['finance'].id}/lines/{index}", json=body, headers=auth[who])
        assert response.status_code == status and response.get_json()["status"] == status, (who, index, body)
    assert client.post("/api/v1/results/nope/lines/0", json={"text": "x"}, headers=auth["bob"]).status_code == 404
    assert (
        client.post(f"/api/v1/results/{rows['queued'].id}/lines/0", json={"text": "x"}, headers=auth["bob"]).status_code
        == 404
    )  # no lines yet
    assert emitted == []
    assert client.get(f"/api/v1/results/{rows['finance'].id}", headers=auth["bob"]).get_json()["corrections"] == []
