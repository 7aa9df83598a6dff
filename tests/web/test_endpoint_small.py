"""The small ones of issue 13, on the real app: corrections stay one line, members see no server
path in errors, answers carry nosniff and no-store, the dashboard connects to its own origin only,
and the slow store reads (search, export) run where the app runs long calls (web.offload)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from daemon.records import ResultRecord
from tests.web.test_api import T0, add_result
from web.offload import Offload
from web.services import Services


@pytest.mark.parametrize(
    "text",
    ["a\u2028b", "a\u2029b", "a\x85b", "a\tb", "a\nb", "a\rb", "a\x9bb", "\u2028"],
    ids=["U+2028", "U+2029", "U+0085", "tab", "newline", "return", "C1", "alone"],
)
def test_a_correction_that_would_split_a_label_line_is_refused(
    client: FlaskClient, auth: dict, svc: Services, text: str
) -> None:
    rec = add_result(svc, "", "line.png")
    response = client.post(f"/api/v1/results/{rec.id}/lines/0", json={"text": text}, headers=auth["bob"])
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error.startswith("text must be one line") and f"U+{ord(text[1] if len(text) > 1 else text):04X}" in error
    assert svc.store.corrections(rec.id) == []


def test_a_correction_of_one_line_is_kept(client: FlaskClient, auth: dict, svc: Services) -> None:
    rec = add_result(svc, "", "line.png")
    text = "合计 12.50 — “quoted” · ½"
    response = client.post(f"/api/v1/results/{rec.id}/lines/0", json={"text": text}, headers=auth["bob"])
    assert response.status_code == 200 and response.get_json()["lines"][0]["text"] == text


def failed(svc: Services, channel: str, filename: str, error: str) -> ResultRecord:
    rec = add_result(svc, channel, filename, status="queued", created_at=T0)
    out = svc.store.fail(rec.id, error, 3, T0 + 1)
    assert out is not None
    return out


def test_errors_shown_to_members_hold_no_server_path(client: FlaskClient, auth: dict, svc: Services) -> None:
    share = svc.settings.shared_dir
    failed(svc, "sales", "a.png", f"a.png: its folder {share}/sales is gone (share unmounted?)")
    failed(
        svc, "sales", "b.png", f"failed after 3 attempts: OSError: [Errno 5] Input/output error: '{share}/sales/b.png'"
    )
    failed(
        svc, "sales", "c.png", "failed after 3 attempts: RuntimeError: cannot load /root/.cache/teamocr/rec-int8.onnx"
    )
    failed(svc, "sales", "d.png", f"d.png: its folder {share} is not the folder it was queued in")
    expected = {
        "a.png": "a.png: its folder sales is gone (share unmounted?)",
        "b.png": "failed after 3 attempts: OSError: [Errno 5] Input/output error: 'sales/b.png'",
        "c.png": "failed after 3 attempts: RuntimeError: cannot load rec-int8.onnx",
        "d.png": "d.png: its folder the shared folder is not the folder it was queued in",
    }
    listed = client.get("/api/v1/results", headers=auth["carol"])
    assert {item["filename"]: item["error"] for item in listed.get_json()["items"]} == expected
    found = client.get("/api/v1/search?q=b.png", headers=auth["carol"]).get_json()["items"]
    assert [item["error"] for item in found] == [expected["b.png"]]
    one = next(item for item in listed.get_json()["items"] if item["filename"] == "c.png")
    assert client.get(f"/api/v1/results/{one['id']}", headers=auth["carol"]).get_json()["error"] == expected["c.png"]
    exported = client.get("/api/v1/export?format=json", headers=auth["carol"])
    assert {item["filename"]: item["error"] for item in json.loads(exported.data)} == expected
    for answer in (listed, exported):
        assert str(share) not in answer.get_data(as_text=True) and "/root/" not in answer.get_data(as_text=True)
    assert svc.store.get(one["id"]).error.endswith("/root/.cache/teamocr/rec-int8.onnx")  # kept for the operator


def test_api_and_export_answers_carry_nosniff_and_no_store(client: FlaskClient, auth: dict, svc: Services) -> None:
    rec = add_result(svc, "", "h.png")
    answers = {
        "list": client.get("/api/v1/results", headers=auth["bob"]),
        "detail": client.get(f"/api/v1/results/{rec.id}", headers=auth["bob"]),
        "export": client.get("/api/v1/export?format=csv", headers=auth["bob"]),
        "search": client.get("/api/v1/search?q=hello", headers=auth["bob"]),
        "refused": client.get("/api/v1/results"),
        "not found": client.get("/api/v1/results/nope", headers=auth["bob"]),
        "image gone": client.get(f"/api/v1/results/{rec.id}/image", headers=auth["bob"]),
        "me": client.get("/api/v1/auth/me", headers=auth["bob"]),
        "healthz": client.get("/healthz"),
        "metrics": client.get("/metrics", headers=auth["bob"]),
    }
    for what, answer in answers.items():
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", what
        assert answer.headers.get("Cache-Control") == "no-store", what
    assert answers["export"].status_code == 200 and list(csv.reader(io.StringIO(answers["export"].text)))
    page = client.get("/")
    assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["Cache-Control"] == "no-cache"


def connect_src(client: FlaskClient, host: str) -> list[str]:
    policy = client.get("/", headers={"Host": host}).headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert directives["script-src"] == ["'self'"] and directives["frame-ancestors"] == ["'none'"]
    return directives["connect-src"]


def test_the_dashboard_connects_to_its_own_origin_only(client: FlaskClient) -> None:
    assert connect_src(client, "ocr.example.com:8443") == [
        "'self'",
        "ws://ocr.example.com:8443",
        "wss://ocr.example.com:8443",
    ]
    assert connect_src(client, "127.0.0.1:8080") == ["'self'", "ws://127.0.0.1:8080", "wss://127.0.0.1:8080"]
    assert connect_src(client, "[::1]:8080") == ["'self'", "ws://[::1]:8080", "wss://[::1]:8080"]
    for hostile in ("evil.example *", "x;script-src *", "a b", "*"):
        assert connect_src(client, hostile) == ["'self'"], hostile  # never a blanket source, never injected


def test_search_and_export_read_the_store_off_the_event_loop(client: FlaskClient, auth: dict, svc: Services) -> None:
    """The app's Offload is where long calls go (gevent's thread pool when served); record what goes there."""
    from web.exports import export_bytes

    add_result(svc, "", "invoice.png", text="invoice total")
    sent: list[Any] = []

    def run(fn: Any, *args: Any) -> Any:
        sent.append(fn)
        return fn(*args)

    svc.offload = Offload(run=run)
    found = client.get("/api/v1/search?q=invoice", headers=auth["bob"])
    assert found.status_code == 200 and len(found.get_json()["items"]) == 1
    assert sent == [svc.store.search]
    sent.clear()
    exported = client.get("/api/v1/export?format=txt", headers=auth["bob"])
    assert exported.status_code == 200 and b"invoice total" in exported.data
    assert sent == [export_bytes]  # the pages are read in there too, not only rendered
