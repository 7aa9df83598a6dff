"""Models across teams, on the real app, a real (embedded) Redis and the real command line.

The model every team's workers use is switched by operators only; a team lists only the packaged
versions and its own; fine-tune jobs of different teams wait in one line (each team sees its own
job and its place) instead of the second being refused; and a job exports exactly the corrected
lines the team's members can see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from daemon.versions.operations import add_from_onnx
from daemon.versions.registry import CURRENT_KEY, MANIFEST, ModelRegistry
from engine.weights import model_files
from tests.polling import wait_until
from tests.web.conftest import PASSWORD, bearer, login
from tests.web.gatekit import calls, gate_commands, release
from web.app import create_app
from web.models_api import training_jobs
from web.services import Services, services
from web.training import TrainingCommands, TrainingJobs

TRAIN = {"kind": "rec", "source": "corrections"}


@pytest.fixture
def admins(client: FlaskClient, svc: Services) -> dict[str, dict[str, str]]:
    """Headers of alice (alpha admin), bob (alpha member) and dave (beta admin)."""
    svc.accounts.add_user("alice", PASSWORD, "alpha", admin=True)
    svc.accounts.add_user("bob", PASSWORD, "alpha")
    svc.accounts.add_user("dave", PASSWORD, "beta", admin=True)
    return {name: bearer(login(client, name)["access_token"]) for name in ("alice", "bob", "dave")}


@pytest.fixture
def people(client: FlaskClient, svc: Services, admins: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The admins' headers and olga's, an operator (of team ops)."""
    svc.accounts.add_user("olga", PASSWORD, "ops", role="operator")
    return {**admins, "olga": bearer(login(client, "olga")["access_token"])}


# -- switching the model every worker uses ----------------------------------------------------


def test_a_team_admin_cannot_switch_the_model(
    client: FlaskClient, admins: dict[str, dict[str, str]], svc: Services
) -> None:
    auth = admins
    refused = client.post("/api/v1/models/current", json={"version": "PP-OCRv6-tiny"}, headers=auth["alice"])
    assert refused.status_code == 403, refused.get_json()  # alice is alpha's admin, not an operator
    assert "operator" in refused.get_json()["error"]
    assert (
        client.post("/api/v1/models/current", json={"version": "PP-OCRv6-tiny"}, headers=auth["bob"]).status_code == 403
    )
    assert svc.redis.get(CURRENT_KEY) is None  # nobody switched anything
    listing = client.get("/api/v1/models", headers=auth["alice"]).get_json()
    assert listing["can_switch"] is False and listing["current"] == "PP-OCRv6-small"


def test_an_operator_switches_the_model_of_every_team(
    client: FlaskClient, people: dict[str, dict[str, str]], svc: Services
) -> None:
    assert (
        client.post("/api/v1/models/current", json={"version": "PP-OCRv6-tiny"}, headers=people["dave"]).status_code
        == 403
    )
    switched = client.post("/api/v1/models/current", json={"version": "PP-OCRv6-tiny"}, headers=people["olga"])
    assert switched.status_code == 200 and switched.get_json() == {"current": "PP-OCRv6-tiny"}
    assert svc.redis.get(CURRENT_KEY) == "PP-OCRv6-tiny"
    listing = client.get("/api/v1/models", headers=people["olga"]).get_json()
    assert listing["can_switch"] is True and listing["current"] == "PP-OCRv6-tiny"
    # every team is told which version reads its files, by name
    assert client.get("/api/v1/models", headers=people["alice"]).get_json()["current"] == "PP-OCRv6-tiny"


# -- which versions a team sees ----------------------------------------------------------------


def owned(registry: ModelRegistry, name: str, team: str | None) -> None:
    """Give a version its owner in its manifest, as a team's fine-tune job (`model add --team`)
    writes it (tests/daemon/test_model_teams.py checks that it does)."""
    path = registry.root / name / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**manifest, "team": team}), encoding="utf-8")


def _versions(svc: Services) -> None:
    registry = ModelRegistry.for_data_dir(svc.settings.data_dir)
    tiny = model_files("tiny")
    for name, team in (("alpha-v1", "alpha"), ("beta-v1", "beta"), ("ops-v1", None)):
        add_from_onnx(registry, "PP-OCRv6-tiny", {"rec": tiny.rec}, [], name=name, note=f"secret note of {name}")
        owned(registry, name, team)


def _listed(client: FlaskClient, headers: dict[str, str]) -> tuple[list[str], str]:
    response = client.get("/api/v1/models", headers=headers)
    assert response.status_code == 200
    return [v["version"] for v in response.get_json()["versions"]], response.get_data(as_text=True)


PACKAGED = ["PP-OCRv6-small", "PP-OCRv6-tiny"]


def test_a_team_lists_only_the_packaged_versions_and_its_own(
    client: FlaskClient, admins: dict[str, dict[str, str]], svc: Services
) -> None:
    _versions(svc)
    alpha, alpha_text = _listed(client, admins["alice"])
    assert alpha == [*PACKAGED, "alpha-v1"]
    assert "beta-v1" not in alpha_text and "secret note of beta-v1" not in alpha_text and "ops-v1" not in alpha_text
    beta, beta_text = _listed(client, admins["dave"])
    assert beta == [*PACKAGED, "beta-v1"] and "alpha-v1" not in beta_text


def test_an_operator_lists_every_version_and_may_use_any(
    client: FlaskClient, people: dict[str, dict[str, str]], svc: Services
) -> None:
    _versions(svc)
    everything, _ = _listed(client, people["olga"])
    assert everything == [*PACKAGED, "alpha-v1", "beta-v1", "ops-v1"]
    versions = client.get("/api/v1/models", headers=people["olga"]).get_json()["versions"]
    assert {v["version"]: v["team"] for v in versions} == {
        "PP-OCRv6-small": None,
        "PP-OCRv6-tiny": None,
        "alpha-v1": "alpha",
        "beta-v1": "beta",
        "ops-v1": None,
    }
    # an operator may switch every team to any version, another team's included
    assert client.post("/api/v1/models/current", json={"version": "beta-v1"}, headers=people["olga"]).status_code == 200
    unknown = client.post("/api/v1/models/current", json={"version": "nope"}, headers=people["olga"])
    assert unknown.status_code == 404 and "unknown model version 'nope'" in unknown.get_json()["error"]


# -- fine-tune jobs of several teams: one line, first in first out -------------------------------


@pytest.fixture
def gated(settings: Settings, redis_handle: RedisHandle, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An app whose fine-tune commands wait for the test (tests.web.gatekit), three teams' admins."""
    here = tmp_path / "gate"
    app, _ = create_app(settings, redis_url=redis_handle.url, training=gate_commands(here))
    svc = services(app)
    for name, team in (("alice", "alpha"), ("dave", "beta"), ("gina", "gamma")):
        svc.accounts.add_user(name, PASSWORD, team, admin=True)
    client = app.test_client()
    headers = {name: bearer(login(client, name)["access_token"]) for name in ("alice", "dave", "gina")}
    seen: list[tuple[str, dict[str, Any]]] = []
    jobs = training_jobs(app)
    jobs.emit = lambda _event, job, room: seen.append((room, dict(job)))
    try:
        yield {"app": app, "client": client, "headers": headers, "jobs": jobs, "here": here, "seen": seen}
    finally:
        release(here, "alpha", "beta", "gamma")
        jobs.wait(60)
        svc.store.close()
        svc.accounts.close()


def _state(client: FlaskClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/training/{job_id}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_two_teams_jobs_queue_instead_of_the_second_being_refused(gated: dict[str, Any]) -> None:
    client, headers, jobs, here = gated["client"], gated["headers"], gated["jobs"], gated["here"]
    first = client.post("/api/v1/training", json=TRAIN, headers=headers["alice"])
    assert first.status_code == 202 and first.get_json()["state"] == "queued"
    a = first.get_json()["id"]
    wait_until(lambda: _state(client, headers["alice"], a)["state"] == "exporting", 60, "alpha's job to start")

    second = client.post("/api/v1/training", json=TRAIN, headers=headers["dave"])
    assert second.status_code == 202, second.get_json()  # waits in line: not refused
    b = second.get_json()
    assert b["state"] == "waiting" and b["position"] == 1 and b["team"] == "beta"
    third = client.post("/api/v1/training", json=TRAIN, headers=headers["gina"]).get_json()
    assert third["state"] == "waiting" and third["position"] == 2
    assert _state(client, headers["dave"], b["id"])["position"] == 1

    # one job per team waiting or running: a second answers 409 naming it
    again = client.post("/api/v1/training", json=TRAIN, headers=headers["dave"])
    assert again.status_code == 409 and b["id"] in again.get_json()["error"] and "waiting" in again.get_json()["error"]
    again = client.post("/api/v1/training", json=TRAIN, headers=headers["alice"])
    assert again.status_code == 409 and a in again.get_json()["error"]

    # each team sees only its own jobs
    assert client.get(f"/api/v1/training/{a}", headers=headers["dave"]).status_code == 404
    assert client.get(f"/api/v1/training/{b['id']}", headers=headers["alice"]).status_code == 404
    assert client.get("/api/v1/training", headers=headers["dave"]).get_json()["job"]["id"] == b["id"]
    assert client.get("/api/v1/training", headers=headers["alice"]).get_json()["job"]["id"] == a

    release(here, "alpha")
    wait_until(lambda: _state(client, headers["dave"], b["id"])["state"] not in ("waiting",), 60, "beta's job to start")
    wait_until(lambda: _state(client, headers["gina"], third["id"])["position"] == 1, 60, "gamma to move up")
    assert _state(client, headers["alice"], a)["state"] == "done"
    release(here, "beta", "gamma")
    jobs.wait(60)
    finals = [_state(client, headers[n], i) for n, i in (("alice", a), ("dave", b["id"]), ("gina", third["id"]))]
    assert [s["state"] for s in finals] == ["done", "done", "done"], [s["error"] for s in finals]
    assert all(s["position"] is None for s in finals)

    made = calls(here)
    exports = [c["args"] for c in made if c["args"][:2] == ["corrections", "export"]]
    assert [e[e.index("--team") + 1] for e in exports] == ["alpha", "beta", "gamma"]  # first in, first out
    adds = [c["args"] for c in made if c["args"][:2] == ["model", "add"]]
    assert [e[e.index("--team") + 1] for e in adds] == ["alpha", "beta", "gamma"]  # each version owned by its team
    assert all(c["default_team"] == "alpha" for c in made if c["args"][0] == "corrections")

    seen = gated["seen"]
    for room, job in seen:  # every state went to its own team's admins only
        assert room == f"admins:{job['team']}"
    beta_states = [(job["state"], job["position"]) for _room, job in seen if job["id"] == b["id"]]
    assert beta_states[0] == ("waiting", 1) and ("exporting", None) in beta_states
    gamma_places = [job["position"] for _room, job in seen if job["id"] == third["id"] and job["state"] == "waiting"]
    assert gamma_places[:2] == [2, 1]
    alpha_done = max(job["updated_at"] for _room, job in seen if job["id"] == a)
    beta_start = min(job["updated_at"] for _room, job in seen if job["id"] == b["id"] and job["state"] == "exporting")
    assert beta_start >= alpha_done  # one after another


def test_a_restart_fails_the_jobs_left_waiting(settings: Settings, redis_handle: RedisHandle) -> None:
    from web.training import KEY_PREFIX, LATEST_KEY

    client = redis_handle.client
    client.set(KEY_PREFIX + "w1", json.dumps({"id": "w1", "team": "beta", "state": "waiting", "position": 1}))
    client.hset(LATEST_KEY, "beta", "w1")
    jobs = TrainingJobs(client, settings, redis_handle.url, lambda *_: None)
    assert jobs.recover() == 1
    state = jobs.get("w1")
    assert state is not None and state["state"] == "failed" and state["position"] is None
    assert "while the job waited" in state["error"]


# -- the export: exactly what the team's members can see ---------------------------------------


def _corrected_results(svc: Services) -> None:
    """Results in the root, a channel of each team and an unmapped channel, each line corrected."""
    import cv2

    from daemon.records import ResultRecord
    from tests.engine.trainkit import page

    for channel in ("", "finance", "sales", "other"):
        for i in range(2):
            rid = f"{channel or 'root'}{i}"
            image, quads = page([f"{rid} line one", f"{rid} total {i}"])
            folder = svc.settings.shared_dir / channel
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{rid}.png"
            cv2.imwrite(str(path), image)
            lines = [{"text": f"read {n}", "points": q.tolist(), "confidence": 0.9} for n, q in enumerate(quads)]
            svc.store.add_queued(
                ResultRecord(
                    id=rid, md5=rid, path=str(path), filename=path.name, channel=channel, size=1, created_at=1.0
                )
            )
            svc.store.complete(
                rid,
                width=image.shape[1],
                height=image.shape[0],
                lines=lines,
                text="",
                timings={},
                engine_version="e",
                model_version="PP-OCRv6-tiny",
                finished_at=2.0,
            )
            svc.store.correct(rid, 0, f"{rid} line one", "someone", 3.0)
            if i:
                svc.store.correct(rid, 1, f"{rid}\ttotal  {i}", "someone", 3.0)  # the export folds whitespace


@pytest.fixture
def exporting_app(settings: Settings, redis_handle: RedisHandle) -> Iterator[Flask]:
    """The real command line, whose training step is refused (exit 2): only the export is kept.
    No ``teams.default_team``: the team created first (beta) is the default team."""
    first_decides = replace(settings, teams=replace(settings.teams, default_team=""))
    commands = TrainingCommands(train_extra=["--no-such-option"])
    app, _ = create_app(first_decides, redis_url=redis_handle.url, training=commands)
    yield app
    training_jobs(app).wait(120)
    svc = services(app)
    svc.store.close()
    svc.accounts.close()


def test_a_job_exports_exactly_the_corrections_its_team_can_see(exporting_app: Flask) -> None:
    svc = services(exporting_app)
    svc.accounts.add_user("dave", PASSWORD, "beta", admin=True)  # first: beta is the default team
    svc.accounts.add_user("carol", PASSWORD, "beta")
    svc.accounts.add_user("alice", PASSWORD, "alpha", admin=True)
    svc.accounts.add_user("bob", PASSWORD, "alpha")
    _corrected_results(svc)
    client = exporting_app.test_client()
    headers = {n: bearer(login(client, n)["access_token"]) for n in ("alice", "bob", "carol", "dave")}

    jobs = {
        team: client.post("/api/v1/training", json=TRAIN, headers=headers[admin]).get_json()
        for team, admin in (("alpha", "alice"), ("beta", "dave"))
    }
    training_jobs(exporting_app).wait(120)

    exported: dict[str, set[tuple[str, int, str]]] = {}
    for team, job in jobs.items():
        state = client.get(f"/api/v1/training/{job['id']}", headers=headers["alice" if team == "alpha" else "dave"])
        assert "`teamocr train` failed" in state.get_json()["error"]  # the export itself succeeded
        data = svc.settings.data_dir / "workdirs" / job["version"] / "data"
        rows = [row for split in ("train", "test") for row in (data / f"{split}.txt").read_text("utf-8").splitlines()]
        exported[team] = set()
        for row in rows:
            name, text = row.split("\t")
            rid, index = Path(name).stem.rsplit("_", 1)
            exported[team].add((rid, int(index), text))

    def visible(member: str) -> set[tuple[str, int, str]]:
        items = client.get("/api/v1/results?limit=500", headers=headers[member]).get_json()["items"]
        return {
            (item["id"], n, " ".join(line["text"].split()))
            for item in items
            for n, line in enumerate(item["lines"])
            if line.get("corrected_by")
        }

    assert exported["alpha"] == visible("bob") and {r for r, _, _ in exported["alpha"]} == {"finance0", "finance1"}
    assert exported["beta"] == visible("carol")
    assert {r for r, _, _ in exported["beta"]} == {"root0", "root1", "sales0", "sales1", "other0", "other1"}
