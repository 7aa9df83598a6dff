"""API keys on the real app, Redis and accounts file: made by a member (API) or on the command line,
shown once and stored hashed, working as ``Authorization: Bearer <key>`` on what a member may call,
refused on administration, revocable, expiring, each with a rate budget of its own."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient

from config.settings import Settings
from tests.polling import wait_until
from tests.web.conftest import bearer
from tests.web.test_cli_user import teamocr
from web.app import ACCOUNTS_NAME
from web.services import Services

KEYS = "/api/v1/keys"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, web=replace(settings.web, api_limit="8 per minute", keys_limit="12 per minute"))


def make_key(client: FlaskClient, headers: dict[str, str], name: str = "ci", **extra: Any) -> dict[str, Any]:
    response = client.post(KEYS, json={"name": name, **extra}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_key_works_as_its_member_and_is_shown_once(client: FlaskClient, auth: dict, svc: Services) -> None:
    made = make_key(client, auth["bob"], "nightly upload")
    key = made["key"]
    assert key.startswith("tmk_") and made["name"] == "nightly upload" and made["user"] == "bob"
    me = client.get("/api/v1/auth/me", headers=bearer(key)).get_json()
    assert me == {"username": "bob", "team": "alpha", "role": "member"}
    assert client.get("/api/v1/results", headers=bearer(key)).status_code == 200
    listed = client.get(KEYS, headers=auth["bob"]).get_json()["items"]
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None
    with sqlite3.connect(svc.settings.data_dir / ACCOUNTS_NAME) as db:  # only its hash is kept
        (stored,) = db.execute("SELECT secret_sha256 FROM api_keys").fetchone()
    assert key.split("_")[-1] not in stored and len(stored) == 64


def test_keys_are_refused_on_administration(client: FlaskClient, auth: dict) -> None:
    key = bearer(make_key(client, auth["alice"])["key"])  # alice is an admin
    for method, path in (("get", "/api/v1/users"), ("get", KEYS), ("post", KEYS), ("post", "/api/v1/models/current")):
        response = getattr(client, method)(path, json={"name": "x"}, headers=key)
        assert response.status_code == 403, (path, response.get_json())
        assert "API key cannot" in response.get_json()["error"]
    assert client.get("/api/v1/users", headers=auth["alice"]).status_code == 200  # her login still can


def test_revoked_expired_and_forged_keys_are_refused(client: FlaskClient, auth: dict) -> None:
    made = make_key(client, auth["bob"])
    short = make_key(client, auth["bob"], "short", expires_in_days=1 / 86400)  # one second
    assert client.get("/api/v1/results", headers=bearer(made["key"])).status_code == 200
    assert client.delete(f"{KEYS}/{made['id']}", headers=auth["carol"]).status_code == 404  # another team's
    assert client.delete(f"{KEYS}/{made['id']}", headers=auth["bob"]).status_code == 200
    revoked = client.get("/api/v1/results", headers=bearer(made["key"]))
    assert revoked.status_code == 401 and "revoked" in revoked.get_json()["error"]
    wait_until(lambda: time.time() > short["expires_at"], 10, "the short key's expiry")
    expired = client.get("/api/v1/results", headers=bearer(short["key"]))
    assert expired.status_code == 401 and "expired" in expired.get_json()["error"]
    forged = made["key"][:-4] + ("AAAA" if not made["key"].endswith("AAAA") else "BBBB")
    assert client.get("/api/v1/results", headers=bearer(forged)).status_code == 401
    assert client.get("/api/v1/results", headers=bearer("tmk_nonsense")).status_code == 401
    bad = client.post(KEYS, json={"name": ""}, headers=auth["bob"])
    assert bad.status_code == 400 and "name" in bad.get_json()["error"]


def test_an_admin_sees_and_revokes_their_teams_keys_only(client: FlaskClient, auth: dict) -> None:
    bobs = make_key(client, auth["bob"])
    carols = make_key(client, auth["carol"])
    seen = {k["id"] for k in client.get(KEYS, headers=auth["alice"]).get_json()["items"]}
    assert bobs["id"] in seen and carols["id"] not in seen
    assert client.delete(f"{KEYS}/{carols['id']}", headers=auth["alice"]).status_code == 404
    assert client.delete(f"{KEYS}/{bobs['id']}", headers=auth["alice"]).status_code == 200


def test_keys_end_with_a_changed_disabled_or_remade_account(client: FlaskClient, auth: dict, svc: Services) -> None:
    key = bearer(make_key(client, auth["bob"])["key"])
    svc.accounts.set_disabled("bob", True)
    assert client.get("/api/v1/results", headers=key).status_code == 401
    svc.accounts.set_disabled("bob", False)
    assert client.get("/api/v1/results", headers=key).status_code == 401  # its account changed meanwhile
    carols = bearer(make_key(client, auth["carol"])["key"])
    svc.accounts.set_password("carol", "another long password")
    assert client.get("/api/v1/results", headers=carols).status_code == 401
    alices = bearer(make_key(client, auth["alice"])["key"])
    svc.accounts.remove("alice")
    svc.accounts.add_user("alice", "a brand new password", "beta")  # someone else, another team
    refused = client.get("/api/v1/results", headers=alices)
    assert refused.status_code == 401 and "account changed" in refused.get_json()["error"]


def test_each_key_has_a_rate_budget_of_its_own_within_the_users_keys_budget(client: FlaskClient, auth: dict) -> None:
    first, second = (bearer(make_key(client, auth["bob"], name)["key"]) for name in ("one", "two"))
    answers = [client.get("/api/v1/auth/me", headers=first).status_code for _ in range(9)]
    assert answers[:8] == [200] * 8 and answers[8] == 429
    others = [client.get("/api/v1/auth/me", headers=second).status_code for _ in range(5)]
    assert others[0] == 200 and 429 in others  # not spent by the first key, but within bob's 12 for all keys
    assert client.get("/api/v1/auth/me", headers=auth["bob"]).status_code == 200  # his login has its own


def test_teamocr_key_add_prints_the_key_alone(settings: Settings, users: dict, client: FlaskClient) -> None:
    done = teamocr("key", "add", "ci-upload", "--user", "bob", "--expires-days", "30", settings=settings)
    assert done.returncode == 0, done.stderr
    (key,) = done.stdout.split()
    assert client.get("/api/v1/auth/me", headers=bearer(key)).get_json()["username"] == "bob"
    listed = teamocr("key", "list", settings=settings)
    assert "ci-upload" in listed.stdout and key not in listed.stdout
    key_id = key.split("_")[1]
    assert teamocr("key", "revoke", key_id, settings=settings).returncode == 0
    assert client.get("/api/v1/auth/me", headers=bearer(key)).status_code == 401
    unknown = teamocr("key", "add", "x", "--user", "nobody", settings=settings)
    assert unknown.returncode == 2 and "no user" in unknown.stderr
