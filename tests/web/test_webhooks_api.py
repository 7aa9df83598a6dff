"""The webhooks API: register, list, remove, the delivery log; who may (a team's admins, of their
own team only) and what is refused (SSRF addresses, other schemes, oversize bodies, bad tokens).
A correction made over the API reaches a real local receiver, signed."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient

from daemon.webhooks.deliverer import Deliverer
from daemon.webhooks.registry import MAX_PER_TEAM
from tests.daemon.webhookkit import Receiver
from tests.web.conftest import PASSWORD, bearer, login
from tests.web.test_api import add_result
from web.api import OPENAPI_DOCUMENT
from web.services import Services

HOOKS = "/api/v1/webhooks"
PUBLIC_URL = "http://93.184.216.34/hooks/teamocr"  # an IP literal: no DNS needed


@pytest.fixture
def admins(client: FlaskClient, svc: Services, auth: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``auth`` plus dave, an admin of team beta."""
    svc.accounts.add_user("dave", PASSWORD, "beta", admin=True)
    return {**auth, "dave": bearer(login(client, "dave")["access_token"])}


def allow_private(svc: Services) -> None:
    svc.settings = replace(svc.settings, web=replace(svc.settings.web, webhooks_allow_private=True))


def create(client: FlaskClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post(HOOKS, json={"url": PUBLIC_URL, **body}, headers=headers)


def test_an_admin_registers_lists_and_removes_a_webhook(client: FlaskClient, admins: dict) -> None:
    made = create(client, admins["alice"], events=["result.done"])
    assert made.status_code == 201, made.get_json()
    hook = made.get_json()
    assert hook["secret"].startswith("whsec_") and hook["url"] == PUBLIC_URL and hook["events"] == ["result.done"]
    assert hook["team"] == "alpha" and hook["created_by"] == "alice"
    every = create(client, admins["alice"]).get_json()
    assert every["events"] == ["result.done", "result.failed", "result.corrected"]  # the default
    listed = client.get(HOOKS, headers=admins["alice"]).get_json()["webhooks"]
    assert [w["id"] for w in listed] == [hook["id"], every["id"]]
    assert all("secret" not in w and w["last_delivery"] is None for w in listed)  # the secret is shown once
    log = client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=admins["alice"])
    assert log.status_code == 200 and log.get_json() == {"deliveries": []}
    assert client.delete(f"{HOOKS}/{hook['id']}", headers=admins["alice"]).status_code == 204
    assert client.delete(f"{HOOKS}/{hook['id']}", headers=admins["alice"]).status_code == 404
    assert client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=admins["alice"]).status_code == 404
    assert [w["id"] for w in client.get(HOOKS, headers=admins["alice"]).get_json()["webhooks"]] == [every["id"]]


def test_another_teams_webhook_is_unknown_to_its_admins(client: FlaskClient, admins: dict) -> None:
    hook = create(client, admins["alice"]).get_json()
    assert client.get(HOOKS, headers=admins["dave"]).get_json() == {"webhooks": []}
    for method, url in (("delete", f"{HOOKS}/{hook['id']}"), ("get", f"{HOOKS}/{hook['id']}/deliveries")):
        other, unknown = (
            getattr(client, method)(u, headers=admins["dave"]) for u in (url, url.replace(hook["id"], "x"))
        )
        assert other.status_code == unknown.status_code == 404
        assert other.get_json() == unknown.get_json()
    assert len(client.get(HOOKS, headers=admins["alice"]).get_json()["webhooks"]) == 1  # still there


@pytest.mark.parametrize(
    ("method", "path"), [("get", HOOKS), ("post", HOOKS), ("delete", f"{HOOKS}/x"), ("get", f"{HOOKS}/x/deliveries")]
)
def test_members_and_bad_tokens_are_refused(client: FlaskClient, admins: dict, method: str, path: str) -> None:
    hook = create(client, admins["alice"]).get_json()
    path = path.replace("/x", f"/{hook['id']}")
    call = getattr(client, method)
    body = {"json": {"url": PUBLIC_URL}} if method == "post" else {}
    member = call(path, headers=admins["bob"], **body)
    assert member.status_code == 403 and member.get_json()["error"] == "admins only"
    for headers in ({}, bearer("not-a-token"), {"Authorization": admins["alice"]["Authorization"] + "x"}):
        assert call(path, headers=headers, **body).status_code == 401
    assert client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=admins["alice"]).status_code == 200


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("http://127.0.0.1:8080/hook", "a loopback address"),
        ("http://localhost/hook", "a loopback address"),
        ("http://[::1]/hook", "a loopback address"),
        ("http://10.0.0.7/hook", "a private address"),
        ("http://192.168.1.1/hook", "a private address"),
        ("http://169.254.169.254/latest/meta-data", "a link-local address"),
        ("http://0.0.0.0/", "the unspecified address"),
        ("ftp://example.com/hook", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("https://u:p@93.184.216.34/", "passwords in the URL"),
        ("http://93.184.216.34/" + "a" * 2000, "over the limit of 2000"),
        ("http://no-such-host.invalid/", "does not resolve"),
    ],
)
def test_refused_urls_name_their_cause(client: FlaskClient, admins: dict, svc: Services, url: str, cause: str) -> None:
    answer = client.post(HOOKS, json={"url": url}, headers=admins["alice"])
    assert answer.status_code == 400 and cause in answer.get_json()["error"], answer.get_json()
    assert client.get(HOOKS, headers=admins["alice"]).get_json() == {"webhooks": []}
    if "address" in cause:  # the local network, when the deployment allows it
        allow_private(svc)
        assert client.post(HOOKS, json={"url": url}, headers=admins["alice"]).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": 42},
        {"url": PUBLIC_URL, "events": []},
        {"url": PUBLIC_URL, "events": "result.done"},
        {"url": PUBLIC_URL, "events": ["result.deleted"]},
        {"url": PUBLIC_URL, "secret": "mine"},
    ],
)
def test_bad_bodies_are_refused(client: FlaskClient, admins: dict, body: dict) -> None:
    assert client.post(HOOKS, json=body, headers=admins["alice"]).status_code == 400
    assert client.post(HOOKS, data="not json", headers=admins["alice"]).status_code == 400


def test_an_oversize_body_and_too_many_webhooks_are_refused(client: FlaskClient, admins: dict) -> None:
    big = json.dumps({"url": PUBLIC_URL, "events": ["result.done"] * 2000})
    answer = client.post(HOOKS, data=big, content_type="application/json", headers=admins["alice"])
    assert answer.status_code == 413
    for _ in range(MAX_PER_TEAM):
        assert create(client, admins["alice"]).status_code == 201
    refused = create(client, admins["alice"])
    assert refused.status_code == 409 and "20 webhooks already" in refused.get_json()["error"]
    assert create(client, admins["dave"]).status_code == 201  # per team


def test_the_document_lists_every_webhook_endpoint() -> None:
    paths = json.loads(OPENAPI_DOCUMENT.read_text())["paths"]
    assert set(paths[HOOKS]) == {"get", "post"}
    assert set(paths[HOOKS + "/{webhook_id}"]) == {"delete"}
    assert set(paths[HOOKS + "/{webhook_id}/deliveries"]) == {"get"}


def test_a_correction_reaches_a_receiver_signed_and_is_logged(client: FlaskClient, admins: dict, svc: Services) -> None:
    allow_private(svc)
    receiver = Receiver().start()
    try:
        hook = client.post(HOOKS, json={"url": receiver.url}, headers=admins["alice"]).get_json()
        other = client.post(HOOKS, json={"url": receiver.url}, headers=admins["dave"]).get_json()
        rec = add_result(svc, "finance", "fin.png", text="total 42")
        fixed = client.post(f"/api/v1/results/{rec.id}/lines/0", json={"text": "total 43"}, headers=admins["bob"])
        assert fixed.status_code == 200
        deliverer = Deliverer(
            svc.redis, svc.webhooks, lambda c: svc.teams.team_of(c, lambda: "alpha"), allow_private=True
        )
        deliverer.run_once(block_ms=1)
        (got,) = receiver.received  # alpha's webhook only: beta's sees nothing of alpha's results
        assert got.signed_by(hook["secret"]) and not got.signed_by(other["secret"])
        assert got.payload["event"] == "result.corrected" and got.payload["item"]["text"] == "total 43"
        (log,) = client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=admins["alice"]).get_json()["deliveries"]
        assert (log["state"], log["attempts"], log["status_code"], log["result_id"]) == ("delivered", 1, 200, rec.id)
        (listed,) = client.get(HOOKS, headers=admins["alice"]).get_json()["webhooks"]
        assert listed["last_delivery"] == log
        assert client.get(f"{HOOKS}/{other['id']}/deliveries", headers=admins["dave"]).get_json() == {"deliveries": []}
    finally:
        receiver.stop()
