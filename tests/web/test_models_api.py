"""The admin model API on the real app, a real (embedded) Redis and the real command line.

Versions, switching the current one, and fine-tune jobs: their state in Redis, their progress
over Socket.IO to the team's admins only, and a failing step reported with its cause.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from daemon.versions.operations import add_from_onnx
from daemon.versions.registry import CURRENT_KEY, ModelRegistry
from engine.weights import model_files
from tests.polling import wait_until
from tests.web.browserkit import SocketClient, serving
from tests.web.conftest import PASSWORD, bearer, login
from web.app import create_app
from web.models_api import training_jobs
from web.services import Services, services
from web.training import TrainingCommands


def test_endpoints_are_for_admins_only(client: FlaskClient, auth: dict[str, dict[str, str]]) -> None:
    calls = [
        ("get", "/api/v1/models", None),
        ("post", "/api/v1/models/current", {"version": "PP-OCRv6-tiny"}),
        ("post", "/api/v1/training", {"kind": "rec", "source": "corrections"}),
        ("get", "/api/v1/training", None),
        ("get", "/api/v1/training/abc", None),
    ]
    for method, url, body in calls:
        assert getattr(client, method)(url, json=body).status_code == 401, url
        response = getattr(client, method)(url, json=body, headers=auth["bob"])
        assert response.status_code == 403, url
        assert response.get_json()["error"]  # the app's JSON error shape
    assert client.get("/api/v1/models", headers=auth["alice"]).status_code == 200


def test_versions_and_switching(client: FlaskClient, auth: dict[str, dict[str, str]], svc: Services) -> None:
    tiny = model_files("tiny")
    add_from_onnx(
        ModelRegistry.for_data_dir(svc.settings.data_dir),
        "PP-OCRv6-tiny",
        {"rec": tiny.rec},
        [],
        name="tiny-2",
        note="copy",
        team="alpha",
    )
    listing = client.get("/api/v1/models", headers=auth["alice"]).get_json()
    assert listing["current"] == "PP-OCRv6-small"
    names = [v["version"] for v in listing["versions"]]
    assert names == ["PP-OCRv6-small", "PP-OCRv6-tiny", "tiny-2"]
    assert all("/" not in v["det"] and "/" not in v["charset"] for v in listing["versions"])  # no server paths
    assert listing["versions"][2]["parent"] == "PP-OCRv6-tiny"

    # switching every team's model is an operator's right (issue 13): alpha's admin is refused
    refused = client.post("/api/v1/models/current", json={"version": "tiny-2"}, headers=auth["alice"])
    assert refused.status_code == 403
    svc.accounts.add_user("olga", PASSWORD, "ops", role="operator")
    operator = bearer(login(client, "olga")["access_token"])
    response = client.post("/api/v1/models/current", json={"version": "tiny-2"}, headers=operator)
    assert response.status_code == 200 and response.get_json() == {"current": "tiny-2"}
    assert svc.redis.get(CURRENT_KEY) == "tiny-2"
    assert client.get("/api/v1/models", headers=auth["alice"]).get_json()["current"] == "tiny-2"

    unknown = client.post("/api/v1/models/current", json={"version": "v9"}, headers=operator)
    assert unknown.status_code == 404 and "unknown model version 'v9'" in unknown.get_json()["error"]
    assert client.post("/api/v1/models/current", json={}, headers=operator).status_code == 400
    assert svc.redis.get(CURRENT_KEY) == "tiny-2"


@pytest.fixture
def failing_app(settings: Settings, redis_handle: RedisHandle) -> Iterator[Flask]:
    """The app whose fine-tune commands are the real CLI given an option it refuses (step 1 fails)."""
    commands = TrainingCommands(prefix=[sys.executable, "-m", "cli", "--no-such-option"])
    app, _ = create_app(settings, redis_url=redis_handle.url, training=commands)
    app.config["TESTING"] = True
    yield app
    training_jobs(app).wait(60)
    svc = services(app)
    svc.store.close()
    svc.accounts.close()


def test_a_failing_job_is_reported_to_the_teams_admins(failing_app: Flask) -> None:
    svc = services(failing_app)
    svc.accounts.add_user("alice", "correct horse battery", "alpha", admin=True)
    svc.accounts.add_user("bob", "correct horse battery", "alpha")
    client = failing_app.test_client()
    tokens = {name: login(client, name) for name in ("alice", "bob")}
    headers = {"Authorization": f"Bearer {tokens['alice']['access_token']}"}
    with serving(failing_app) as url:
        admin, member = (
            SocketClient(url, tokens["alice"]["access_token"]),
            SocketClient(url, tokens["bob"]["access_token"]),
        )
        seen: dict[str, list[dict[str, Any]]] = {"alice": [], "bob": []}
        admin.sio.on("training", seen["alice"].append)
        member.sio.on("training", seen["bob"].append)
        try:
            response = client.post("/api/v1/training", json={"kind": "rec", "source": "corrections"}, headers=headers)
            assert response.status_code == 202, response.get_json()
            job = response.get_json()
            assert job["state"] == "queued" and job["team"] == "alpha" and job["user"] == "alice"
            training_jobs(failing_app).wait(60)
            state = client.get(f"/api/v1/training/{job['id']}", headers=headers).get_json()
            assert state["state"] == "failed"
            assert "`teamocr corrections export` failed (exit 2)" in state["error"]
            assert "usage: teamocr" in state["error"]  # the command's own complaint
            wait_until(lambda: [e for e in seen["alice"] if e["state"] == "failed"], 60, "the failure event")
            assert [e["state"] for e in seen["alice"]][:1] == ["exporting"]
            assert seen["bob"] == []  # members do not get training events
            latest = client.get("/api/v1/training", headers=headers).get_json()["job"]
            assert latest["id"] == job["id"]
        finally:
            admin.close()
            member.close()


def test_bad_training_requests(client: FlaskClient, auth: dict[str, dict[str, str]]) -> None:
    bad_kind = client.post("/api/v1/training", json={"kind": "layout"}, headers=auth["alice"])
    assert bad_kind.status_code == 400 and "kind must be one of" in bad_kind.get_json()["error"]
    bad_source = client.post("/api/v1/training", json={"source": "web"}, headers=auth["alice"])
    assert bad_source.status_code == 400
    assert client.get("/api/v1/training/nope", headers=auth["alice"]).status_code == 404
    assert client.get("/api/v1/training", headers=auth["alice"]).get_json() == {"job": None}


# -- a real fine-tune job: corrections -> `teamocr corrections export` -> `teamocr train rec` ->
# `teamocr model add`, all real commands, with a tiny model set, a few corrected lines and 2 steps


def corrected_results(settings: Settings, count: int = 6) -> None:
    """Stored results with their images in the shared folder, each with a corrected first line."""
    import cv2

    from daemon.records import ResultRecord
    from daemon.results.store import STORE_NAME, SqliteStore
    from tests.engine.trainkit import page

    store = SqliteStore(settings.data_dir / STORE_NAME)
    try:
        for i in range(count):
            image, quads = page(["hello world", f"total {i}3.50"])
            path = settings.shared_dir / f"r{i}.png"
            cv2.imwrite(str(path), image)
            lines = [
                {"text": t, "points": q.tolist(), "confidence": 0.9}
                for t, q in zip(["hel1o wor1d", f"total {i}3.50"], quads)
            ]
            store.add_queued(
                ResultRecord(
                    id=f"r{i}",
                    md5=f"r{i}",
                    path=str(path),
                    filename=path.name,
                    channel="",
                    size=path.stat().st_size,
                    created_at=1.0,
                )
            )
            store.complete(
                f"r{i}",
                width=image.shape[1],
                height=image.shape[0],
                lines=lines,
                text="",
                timings={},
                engine_version="e",
                model_version="PP-OCRv6-tiny",
                finished_at=2.0,
            )
            store.correct(f"r{i}", 0, "hello world", "alice", 3.0)
    finally:
        store.close()


@pytest.fixture
def training_app(settings: Settings, redis_handle: RedisHandle) -> Iterator[Flask]:
    from dataclasses import replace

    from tests.daemon.servicekit import REPO

    tiny = replace(settings, engine=replace(settings.engine, model_set="tiny", threads=1))
    commands = TrainingCommands(
        train_extra=["--epochs", "1", "--max-steps", "2", "--batch-size", "4", "--no-augment"],
        add_extra=["--images", str(REPO / "tests" / "images" / "golden_en.png")],
    )
    app, _ = create_app(tiny, redis_url=redis_handle.url, training=commands)
    yield app
    training_jobs(app).wait(240)
    svc = services(app)
    svc.store.close()
    svc.accounts.close()


def test_a_fine_tune_job_registers_a_new_version(training_app: Flask) -> None:
    svc = services(training_app)
    corrected_results(svc.settings)
    svc.accounts.add_user("alice", "correct horse battery", "alpha", admin=True)
    client = training_app.test_client()
    headers = {"Authorization": f"Bearer {login(client, 'alice')['access_token']}"}
    seen: list[dict[str, Any]] = []
    training_jobs(training_app).emit = lambda _event, job, room: seen.append({**job, "room": room})
    job = client.post("/api/v1/training", json={"kind": "rec", "source": "corrections"}, headers=headers).get_json()
    busy = client.post("/api/v1/training", json={}, headers=headers)
    assert busy.status_code == 409 and job["id"] in busy.get_json()["error"]  # one job at a time
    training_jobs(training_app).wait(240)
    state = client.get(f"/api/v1/training/{job['id']}", headers=headers).get_json()
    assert state["state"] == "done", state["error"]
    assert state["result"]["checkpoint"].endswith(".pt")
    states = [e["state"] for e in seen]
    assert states[0] == "exporting" and states[-1] == "done" and "registering" in states
    assert {e["room"] for e in seen} == {"admins:alpha"}
    steps = [e["progress"] for e in seen if e["state"] == "training" and e["progress"]]
    assert steps and steps[-1]["step"] == steps[-1]["steps"] == 2
    listing = client.get("/api/v1/models", headers=headers).get_json()
    new = listing["versions"][-1]
    assert new["version"] == state["version"] and new["change"] == "fine-tune rec"
    assert new["parent"] == "PP-OCRv6-tiny" and new["metrics"]["parity"]["rec"]["same_text"]
    assert listing["current"] == "PP-OCRv6-tiny"  # registered, not switched to


def test_a_job_left_running_by_an_earlier_web_process_is_marked_failed(
    settings: Settings, redis_handle: RedisHandle
) -> None:
    import json

    from web.training import KEY_PREFIX, LATEST_KEY

    client = redis_handle.client
    client.set(KEY_PREFIX + "old1", json.dumps({"id": "old1", "team": "alpha", "state": "training"}))
    client.hset(LATEST_KEY, "alpha", "old1")
    app, _ = create_app(settings, redis_url=redis_handle.url)
    try:
        state = training_jobs(app).get("old1")
        assert state is not None and state["state"] == "failed" and "interrupted" in state["error"]
    finally:
        services(app).store.close()
        services(app).accounts.close()
