"""Retry, re-read, versions and delete against the running service (intake, one worker process, the
recorder, the store): a re-read keeps the old reading as a version, a retry reads a failed file
again, a delete removes the result (admins only), and a failed primary no longer claims its content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.polling import wait_until
from tests.web.conftest import PASSWORD, bearer, login
from tests.web.test_ocr_api import OCR, client, image_bytes, key, multipart, web
from web.services import services

__all__ = ["client", "key", "web"]  # the running service's fixtures, shared with test_ocr_api

BROKEN_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def admin(client: FlaskClient) -> dict[str, str]:
    return bearer(login(client, "alice")["access_token"])


def read(client: FlaskClient, headers: dict[str, str], data: bytes, name: str) -> dict[str, Any]:
    body: dict[str, Any] = client.post(OCR, headers=headers, **multipart(data, name)).get_json()
    return body


def item(client: FlaskClient, headers: dict[str, str], rid: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(f"/api/v1/results/{rid}", headers=headers).get_json()
    return answer


def test_reprocess_keeps_the_old_reading_as_a_version(client: FlaskClient, tmp_path: Path) -> None:
    alice = admin(client)
    first = read(client, alice, image_bytes(tmp_path, "Contract 6610 signed", 21), "contract.png")
    assert first["status"] == "done"
    client.post(f"/api/v1/results/{first['id']}/lines/0", json={"text": "corrected line"}, headers=alice)
    response = client.post("/api/v1/reprocess", json={"ids": [first["id"]]}, headers=alice)
    assert response.status_code == 202 and response.get_json()["queued"] == 1

    def versions() -> list[dict[str, Any]]:
        return client.get(f"/api/v1/results/{first['id']}/versions", headers=alice).get_json()["items"]

    wait_until(lambda: len(versions()) == 1, 120, "the re-read")
    (old,) = versions()
    assert old["version"] == 1 and "corrected line" in old["text"]  # the reading as it was, correction too
    now = item(client, alice, first["id"])
    assert now["status"] == "done" and "6610" in now["text"] and "corrected line" not in now["text"]
    bad = client.post("/api/v1/reprocess", json={}, headers=alice)
    assert bad.status_code == 400 and "name the results" in bad.get_json()["error"]
    member = client.post(
        "/api/v1/reprocess", json={"all": True}, headers=bearer(login(client, "carol")["access_token"])
    )
    assert member.status_code == 403


def test_a_failed_result_is_retried_and_its_content_read_as_new_when_dropped_again(
    client: FlaskClient, key: dict[str, str]
) -> None:
    failed = read(client, key, BROKEN_PNG + b"a", "broken.png")
    assert failed["status"] == "failed"
    before = item(client, key, failed["id"])
    response = client.post(f"/api/v1/results/{failed['id']}/retry", headers=key)
    assert response.status_code == 202

    def again() -> dict[str, Any] | None:
        now = item(client, key, failed["id"])
        return now if now["status"] == "failed" and now["finished_at"] != before["finished_at"] else None

    wait_until(again, 120, "the retry to end")  # the same bad bytes fail again, their cause recorded
    other = read(client, key, BROKEN_PNG + b"a", "broken-again.png")  # the same content, dropped again
    assert other["id"] != failed["id"] and other.get("duplicate_of") is None and other["status"] == "failed"
    done = read(client, key, BROKEN_PNG[:8] + b"\x00", "nothing.png")
    done_retry = client.post(f"/api/v1/results/{done['id']}/retry", headers=key)
    assert done_retry.status_code in (202, 409)


def test_only_an_admin_deletes_and_only_their_teams(web: Flask, client: FlaskClient, tmp_path: Path) -> None:
    alice = admin(client)
    made = read(client, alice, image_bytes(tmp_path, "Memo 7720 filed", 22), "memo.png")
    carol = bearer(login(client, "carol")["access_token"])
    assert client.delete(f"/api/v1/results/{made['id']}", headers=carol).status_code == 403  # a member
    services(web).accounts.add_user("dave", PASSWORD, "beta", admin=True)
    dave = bearer(login(client, "dave")["access_token"])
    theirs = client.delete(f"/api/v1/results/{made['id']}", headers=dave)
    unknown = client.delete(f"/api/v1/results/{'0' * 32}", headers=dave)
    assert theirs.status_code == unknown.status_code == 404 and theirs.get_json() == unknown.get_json()
    response = client.delete(f"/api/v1/results/{made['id']}", headers=alice)
    assert response.status_code == 200 and response.get_json()["source_deleted"] is False
    assert client.get(f"/api/v1/results/{made['id']}", headers=alice).status_code == 404
    again = read(client, alice, image_bytes(tmp_path, "Memo 7720 filed", 22), "m.png")
    assert again["status"] == "done" and again["duplicate_of"] is None  # its content is read as new
