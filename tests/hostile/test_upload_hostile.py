"""Hostile input through ``POST /api/v1/upload``: every kind its own test case, never a 5xx.

The same table as the folder run (``makers.KINDS``), sent as one multipart part named like the kind
(the multipart filename carries the spaces, Chinese, emoji, newline and 255-byte names). Each ends
in a clear 4xx JSON error, a per-file error entry in the 202 reply, or an accepted upload whose
record (read back through the API, processed by the running daemon's worker) ends done with the
text or failed with a readable cause. Kinds an upload cannot carry (FIFOs, links, folders, files
changed behind the reader's back) are listed in ``makers.FOLDER_ONLY`` and tested through the folder.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.hostile import makers
from tests.hostile.conftest import RESULT_SECONDS, Daemon
from tests.hostile.makers import FOLDER_ONLY, KINDS, Kind
from tests.polling import wait_until
from web.upload_names import numbered, safe_name

UPLOAD_SALT = 500  # the folder run uses salts from 0
FINAL = ("done", "failed", "duplicate")


def post(client: FlaskClient, headers: dict[str, str], content: bytes, filename: str) -> TestResponse:
    return client.post(
        "/api/v1/upload",
        data={"files": [(BytesIO(content), filename)]},
        headers=headers,
        content_type="multipart/form-data",
    )


def final_item(client: FlaskClient, headers: dict[str, str], result_id: str) -> dict[str, Any]:
    def get() -> dict[str, Any] | None:
        response = client.get(f"/api/v1/results/{result_id}", headers=headers)
        assert response.status_code in (200, 404), response.get_json()
        body = response.get_json()
        return body if response.status_code == 200 and body["status"] in FINAL else None

    return wait_until(get, RESULT_SECONDS, f"result {result_id} to finish", interval=0.1)


@pytest.mark.parametrize("kind", [k for k in KINDS if k.upload is not None], ids=lambda k: k.name)
def test_upload_kind(web_client: FlaskClient, alice: dict[str, str], daemon: Daemon, kind: Kind) -> None:
    assert kind.upload is not None
    response = post(web_client, alice, kind.make(UPLOAD_SALT + KINDS.index(kind)), kind.filename)
    assert response.status_code < 500
    body = response.get_json()
    assert body is not None, "every answer is JSON"
    expect = kind.upload
    if expect.status == "refused":
        if response.status_code >= 400:
            assert expect.fragment in body["error"], body
        else:
            assert response.status_code == 202 and body["items"] == [], body
            assert any(expect.fragment in e["error"] for e in body["errors"]), body["errors"]
        daemon.assert_alive()
        return
    assert response.status_code == 202, body
    (item,) = body["items"]
    assert item["filename"] == safe_name(kind.filename)
    result = final_item(web_client, alice, item["id"])
    assert result["filename"] == item["filename"] and "path" not in result
    if expect.status == "done":
        assert result["status"] == "done", result["error"]
        assert expect.fragment in result["text"].lower(), result["text"]
    else:
        assert result["status"] == "failed", result
        assert result["error"] and expect.fragment in result["error"], result["error"]
        assert str(daemon.settings.shared_dir) not in result["error"]
    daemon.assert_alive()


def test_hostile_kinds_inside_a_zip(web_client: FlaskClient, alice: dict[str, str], daemon: Daemon) -> None:
    """The byte kinds again, as members of one ZIP (member names are made safe like part names)."""
    inside = [
        k
        for k in KINDS
        if k.upload is not None
        and k.upload.status in ("done", "failed")
        and not k.filename.endswith((".zip", ".svg"))
        and k.name != "over_size_limit"
    ]
    members = [(f"deep/{k.name}/{k.filename}", k.make(UPLOAD_SALT + 100 + KINDS.index(k))) for k in inside]
    response = post(web_client, alice, makers.make_zip(members), "hostile.zip")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["errors"] == [] and len(body["items"]) == len(inside)
    for kind, item in zip(inside, body["items"]):
        assert kind.upload is not None
        # "cut (2).jpg": the single-part run above put a "cut.jpg" in the same folder already
        assert item["filename"] in {numbered(safe_name(kind.filename), n) for n in range(1, 4)}, item
        result = final_item(web_client, alice, item["id"])
        assert result["status"] == kind.upload.status, (kind.name, result)
        found = result["text"].lower() if kind.upload.status == "done" else result["error"]
        assert kind.upload.fragment in found, (kind.name, found)
    daemon.assert_alive()


def test_body_over_the_request_limit_is_json_413(
    web_client: FlaskClient, alice: dict[str, str], daemon: Daemon
) -> None:
    response = post(web_client, alice, bytes(daemon.settings.web.max_request_bytes + 1), "big.png")
    assert response.status_code == 413
    assert "larger than" in response.get_json()["error"]
    daemon.assert_alive()


def test_not_a_multipart_body(web_client: FlaskClient, alice: dict[str, str]) -> None:
    response = web_client.post("/api/v1/upload", data=b"\x89PNG not multipart", headers=alice, content_type="image/png")
    assert response.status_code == 400 and "no files sent" in response.get_json()["error"]


def test_broken_multipart_body(web_client: FlaskClient, alice: dict[str, str]) -> None:
    body = b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n\x89PNG'
    response = web_client.post(
        "/api/v1/upload", data=body, headers=alice, content_type="multipart/form-data; boundary=xyz"
    )
    assert response.status_code == 400, response.get_json()


def test_name_that_is_not_utf8(web_client: FlaskClient, alice: dict[str, str]) -> None:
    """Raw Latin-1 bytes in the multipart filename: werkzeug drops the part; a 400, never a 5xx."""
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="re\xe7u \xff.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + makers.one_pixel(UPLOAD_SALT + 90) + b"\r\n--xyz--\r\n"
    )
    response = web_client.post(
        "/api/v1/upload", data=body, headers=alice, content_type="multipart/form-data; boundary=xyz"
    )
    assert response.status_code == 400 and response.get_json()["error"]


def test_folder_only_kinds_are_named() -> None:
    """The table says why each kind the upload cannot carry is tested through the folder only."""
    assert all(reason for reason in FOLDER_ONLY.values())
    assert {k.name for k in KINDS}.isdisjoint(FOLDER_ONLY)
