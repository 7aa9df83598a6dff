"""Another team's results are never reachable: every endpoint of the OpenAPI document, with ids of
the other team, answers exactly as for an id that does not exist; lists, counts, searches, exports,
uploads and sockets show nothing of the other team, not even in a count or an error message.

alice and bob are team alpha (the default team: channels "" and "finance"), carol is team beta
("sales"). Rows go straight into the store, with real image files behind them.
"""

from __future__ import annotations

import json
import uuid
from io import BytesIO
from typing import Any

import pytest
import socketio
from flask import Flask
from flask.testing import FlaskClient

from daemon.queue.redisconn import RedisHandle
from daemon.results.events import SOCKETIO_CHANNEL
from tests.daemon.servicekit import wait_subscribed
from tests.polling import wait_until
from tests.web.browserkit import SocketClient, serving
from tests.web.conftest import login
from tests.web.test_api import add_result, write_image
from web.api import OPENAPI_DOCUMENT
from web.services import Services

OWNER = {"alpha": ("", "finance"), "beta": ("sales",)}
# Every operation that names a result, from the document (so a new one cannot be forgotten here).
ID_OPERATIONS = [
    (method.upper(), path)
    for path, item in json.loads(OPENAPI_DOCUMENT.read_text())["paths"].items()
    if "{result_id}" in path
    for method in item
    if method in ("get", "post", "put", "patch")  # DELETE is for admins: tests/web/test_lifecycle_api.py
]


@pytest.fixture
def rows(svc: Services) -> dict[str, Any]:
    made = {}
    for channel, name, text in (
        ("", "root.png", "alpha root invoice"),
        ("finance", "fin.png", "alpha finance invoice"),
        ("sales", "sales.png", "beta sales invoice"),
    ):
        write_image(svc.settings.shared_dir / channel / name, text=text)  # each its own content (MD5)
        table = {
            "rows": 1,
            "cols": 1,
            "cells": [{"row": 0, "col": 0, "rowspan": 1, "colspan": 1, "text": text, "lines": [0]}],
        }
        made[channel or "root"] = add_result(svc, channel, name, text=text, tables=[table])
    return made


def call(client: FlaskClient, method: str, path: str, result_id: str, headers: dict[str, str]) -> Any:
    url = (
        path.replace("{result_id}", result_id)
        .replace("{index}", "0")
        .replace("{page}", "1")
        .replace("{line}", "0")
        .replace("{table}", "1")
    )
    if method == "POST":
        return client.post(url, json={"text": "overwritten by another team"}, headers=headers)
    return client.get(url, headers=headers)


@pytest.mark.parametrize(("method", "path"), ID_OPERATIONS, ids=[f"{m} {p}" for m, p in ID_OPERATIONS])
@pytest.mark.parametrize(("user", "victims"), [("carol", ("root", "finance")), ("bob", ("sales",))])
def test_other_teams_ids_answer_like_unknown_ids(
    client: FlaskClient,
    auth: dict,
    rows: dict,
    svc: Services,
    method: str,
    path: str,
    user: str,
    victims: tuple[str, ...],
) -> None:
    unknown = call(client, method, path, uuid.uuid4().hex, auth[user])
    assert unknown.status_code == 404
    for victim in victims:
        before = svc.store.get(rows[victim].id)
        response = call(client, method, path, rows[victim].id, auth[user])
        assert response.status_code == 404, (victim, response.get_json())
        assert response.get_json() == unknown.get_json()  # the same words: nothing tells the two apart
        assert rows[victim].id not in response.get_data(as_text=True)
        assert svc.store.get(rows[victim].id) == before  # a correction never lands
    own = rows["sales" if user == "carol" else "root"]
    answer = call(client, method, path, own.id, auth[user])
    assert answer.status_code in (200, 202, 409), (
        answer.get_json()
    )  # the control: own ids work (a retry of a done one: 409)


def test_lists_counts_searches_and_exports_hold_only_the_own_team(client: FlaskClient, auth: dict, rows: dict) -> None:
    listed = client.get("/api/v1/results", headers=auth["carol"]).get_json()
    assert [i["id"] for i in listed["items"]] == [rows["sales"].id]
    assert sum(listed["counts"].values()) == 1  # counts are of the team's results only
    for channel in ("finance", "", "no-such-channel"):  # another team's channel looks like a missing one
        filtered = client.get("/api/v1/results", query_string={"channel": channel}, headers=auth["carol"])
        assert filtered.status_code == 200 and filtered.get_json()["items"] == []
    found = client.get("/api/v1/search", query_string={"q": "invoice"}, headers=auth["carol"]).get_json()
    assert [i["id"] for i in found["items"]] == [rows["sales"].id]
    for fmt in ("csv", "json", "txt"):
        export = client.get("/api/v1/export", query_string={"format": fmt}, headers=auth["carol"])
        assert export.status_code == 200 and export.headers["X-Result-Count"] == "1"
        assert "alpha" not in export.get_data(as_text=True)
    alpha = client.get("/api/v1/search", query_string={"q": "invoice"}, headers=auth["bob"]).get_json()
    assert {i["id"] for i in alpha["items"]} == {rows["root"].id, rows["finance"].id}


def test_uploads_to_another_teams_channel_look_like_uploads_to_a_missing_one(client: FlaskClient, auth: dict) -> None:
    answers = []
    for channel in ("finance", "", "no-such-channel"):
        data = {"files": [(BytesIO(b"\x89PNG\r\n\x1a\n"), "a.png")], "channel": channel or "uploads"}
        response = client.post("/api/v1/upload", data=data, headers=auth["carol"], content_type="multipart/form-data")
        answers.append((response.status_code, response.get_json()))
    assert answers[0] == answers[2] and answers[0][0] == 403, answers


def test_a_duplicate_of_another_teams_file_names_nothing_of_it(client: FlaskClient, auth: dict, svc: Services) -> None:
    content = write_image(svc.settings.shared_dir / "finance" / "shared.png")
    primary = svc.intake.submit(svc.settings.shared_dir / "finance" / "shared.png", "finance")
    assert primary is not None
    data = {"files": [(BytesIO(content), "mine.png")], "channel": "sales"}
    reply = client.post("/api/v1/upload", data=data, headers=auth["carol"], content_type="multipart/form-data")
    (item,) = reply.get_json()["items"]
    assert item["duplicate_of"] != primary["id"] and item["status"] != "duplicate"
    assert item["status"] == "queued" and primary["id"] not in reply.get_data(as_text=True)
    # within beta, the same content again is a duplicate of beta's own result
    again = client.post(
        "/api/v1/upload",
        data={"files": [(BytesIO(content), "again.png")], "channel": "sales"},
        headers=auth["carol"],
        content_type="multipart/form-data",
    )
    (dup,) = again.get_json()["items"]
    assert dup["status"] == "duplicate" and dup["duplicate_of"] == item["id"]


def test_sockets_cannot_join_another_teams_room(
    app: Flask, client: FlaskClient, users: dict, redis_handle: RedisHandle
) -> None:
    with serving(app) as url:
        carol = SocketClient(url, login(client, "carol")["access_token"], None)
        try:
            for event in ("join", "subscribe", "enter_room"):
                answer = carol.sio.call(event, {"room": "team:alpha", "rooms": ["team:alpha", "team:*"]}, timeout=10)
                assert "team:alpha" not in json.dumps(answer), (event, answer)
            wait_subscribed(redis_handle.client, SOCKETIO_CHANNEL)
            emitter = socketio.RedisManager(redis_handle.url, channel=SOCKETIO_CHANNEL, write_only=True)
            emitter.emit("result", {"id": "r-alpha", "channel": "finance"}, room="team:alpha", namespace="/")
            emitter.emit("result", {"id": "r-beta", "channel": "sales"}, room="team:beta", namespace="/")
            wait_until(lambda: carol.results, 60, "carol's own result")
            assert [r["id"] for r in carol.results] == ["r-beta"]
        finally:
            carol.close()
