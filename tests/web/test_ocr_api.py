"""One-call OCR (``POST /api/v1/ocr`` and the ``POST /api/ocr`` alias) against the running service:
the real intake, one real worker process, the recorder and the store, with an API key or a login."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from daemon.queue.streams import HEARTBEATS
from tests.daemon.servicekit import make_settings, running, text_image
from tests.engine.docmakers import scanned_pdf
from tests.polling import wait_until
from tests.web.conftest import PASSWORD, bearer, login
from web.app import create_app
from web.services import services

OCR = "/api/v1/ocr"
MAX_BODY = 3_000_000


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    tmp = tmp_path_factory.mktemp("ocr-api")
    base = make_settings(tmp)
    settings = replace(
        base,
        teams=replace(base.teams, default_team="alpha", channels="finance=alpha, sales=beta"),
        web=replace(base.web, max_request_bytes=MAX_BODY),
    )
    settings.shared_dir.mkdir(parents=True, exist_ok=True)
    with running(settings, workers=1) as handle:
        wait_until(lambda: handle.client.hlen(HEARTBEATS) > 0, 120, "the worker's first heartbeat")
        app, _ = create_app(settings, redis_url=handle.url)
        app.config["TESTING"] = True
        svc = services(app)
        svc.accounts.add_user("alice", PASSWORD, "alpha", admin=True)
        svc.accounts.add_user("carol", PASSWORD, "beta")
        yield app
        svc.store.close()
        svc.accounts.close()


@pytest.fixture(scope="module")
def client(web: Flask) -> FlaskClient:
    return web.test_client()


@pytest.fixture(scope="module")
def key(client: FlaskClient) -> dict[str, str]:
    """alice's API key: what a script sends."""
    login_headers = bearer(login(client, "alice")["access_token"])
    made = client.post("/api/v1/keys", json={"name": "script"}, headers=login_headers).get_json()
    return bearer(made["key"])


def image_bytes(tmp: Path, words: str, seed: int) -> bytes:
    return text_image(tmp / f"{seed}.png", words, seed).read_bytes()


def multipart(data: bytes, name: str, field: str = "file") -> dict[str, Any]:
    return {"data": {field: (io.BytesIO(data), name)}, "content_type": "multipart/form-data"}


def test_one_call_answers_with_the_reading(client: FlaskClient, key: dict[str, str], tmp_path: Path) -> None:
    response = client.post(OCR, headers=key, **multipart(image_bytes(tmp_path, "Invoice 2210 paid", 1), "inv.png"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "done" and "invoice 2210" in body["text"].lower()
    assert body["lines"] and {"text", "confidence", "points", "page"} <= set(body["lines"][0])
    assert body["total_time"] > 0 and "total" in body["timings"] and body["duplicate_of"] is None
    item = client.get(f"/api/v1/results/{body['id']}", headers=key).get_json()
    assert item["status"] == "done" and item["uploader"] == "alice"  # the same road as an upload


def test_a_raw_body_and_a_duplicate(client: FlaskClient, key: dict[str, str], tmp_path: Path) -> None:
    data = image_bytes(tmp_path, "Receipt 3301 total", 2)
    first = client.post(f"{OCR}?filename=shot", data=data, headers={**key, "Content-Type": "image/png"})
    assert first.status_code == 200 and "3301" in first.get_json()["text"], first.get_json()
    again = client.post(OCR, data=data, headers={**key, "Content-Type": "image/png"})
    body = again.get_json()
    assert again.status_code == 200 and body["duplicate_of"] == first.get_json()["id"]
    assert body["text"] == first.get_json()["text"] and body["id"] != first.get_json()["id"]


def test_a_pdf_answers_with_its_pages(client: FlaskClient, key: dict[str, str]) -> None:
    pdf = scanned_pdf(["golden_en.png", "golden_zh.png"])
    response = client.post(OCR, headers=key, **multipart(pdf, "two.pdf"))
    body = response.get_json()
    assert response.status_code == 200 and body["page_count"] == 2, body
    assert {line["page"] for line in body["lines"]} == {1, 2} and "\f" in body["text"]


def test_past_the_wait_it_answers_202_with_the_id(client: FlaskClient, key: dict[str, str], tmp_path: Path) -> None:
    data = image_bytes(tmp_path, "Order 4412 shipped", 3)
    response = client.post(f"{OCR}?wait=0", headers=key, **multipart(data, "later.png"))
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] in ("queued", "processing") and body["poll"] == f"/api/v1/results/{body['id']}"

    def done() -> bool:
        return client.get(body["poll"], headers=key).get_json()["status"] == "done"

    wait_until(done, 120, "the polled result")


def test_refusals(client: FlaskClient, key: dict[str, str], tmp_path: Path) -> None:
    broken = client.post(OCR, headers=key, **multipart(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "cut.png"))
    assert broken.status_code == 422 and broken.get_json()["status"] == "failed"
    assert broken.get_json()["error"]
    text = client.post(OCR, headers=key, **multipart(b"just some notes\n", "notes.txt"))
    assert text.status_code == 400 and "not an image or PDF" in text.get_json()["error"]
    html = client.post(OCR, headers=key, **multipart(b"<!DOCTYPE html><html></html>", "page.png"))
    assert html.status_code == 400 and "looks like HTML" in html.get_json()["error"], html.get_json()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.png", image_bytes(tmp_path, "Zip", 4))
    zipped = client.post(OCR, headers=key, **multipart(archive.getvalue(), "batch.zip"))
    assert zipped.status_code == 400 and "one image or PDF" in zipped.get_json()["error"]
    assert client.post(OCR, headers=key, data=b"", content_type="image/png").status_code == 400
    assert client.post(f"{OCR}?wait=500", headers=key, data=b"x", content_type="image/png").status_code == 400
    assert client.post(OCR, **multipart(b"x", "a.png")).status_code == 401
    huge = client.post(OCR, headers=key, data=b"\x89PNG\r\n\x1a\n" + bytes(MAX_BODY), content_type="image/png")
    assert huge.status_code == 413 and huge.is_json
    expired = client.post(OCR, headers=bearer("tmk_000000000000_" + "A" * 43), **multipart(b"x", "a.png"))
    assert expired.status_code == 401 and "unknown API key" in expired.get_json()["error"]
    carol = bearer(login(client, "carol")["access_token"])
    other = client.post(
        f"{OCR}?channel=finance", headers=carol, **multipart(image_bytes(tmp_path, "Not hers", 6), "a.png")
    )
    assert other.status_code == 403  # not her team's channel, as for uploads


def test_the_api_ocr_alias_answers_in_the_crnn_services_shape(
    client: FlaskClient, key: dict[str, str], tmp_path: Path
) -> None:
    data = image_bytes(tmp_path, "Ticket 5520 valid", 5)
    response = client.post("/api/ocr", headers=key, data={"image": (io.BytesIO(data), "t.png"), "lang": "ch"})
    body = response.get_json()
    assert response.status_code == 200 and body["success"] is True, body
    assert any("5520" in entry["text"] for entry in body["text"])
    assert set(body["text"][0]) == {"text", "confidence"} and body["total_time"] > 0
    missing = client.post("/api/ocr", headers=key, data={"lang": "ch"}, content_type="multipart/form-data")
    assert missing.status_code == 400 and missing.get_json()["success"] is False
