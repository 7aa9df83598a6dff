"""Rate limits on the real app with counters in the real (embedded) Redis: login per user name
and per client address, the API per user across all endpoints; a refusal is a JSON 429 with
Retry-After. An oversized body is a JSON 413.

Limits are small here ("3 per minute" logins, "5 per minute" API calls) so every count is
exact: the moving window cannot roll over during a test that lasts well under a minute.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from tests.web.conftest import PASSWORD, bearer
from web.services import Services

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
MAX_BODY = 4096


@pytest.fixture
def settings(settings: Settings) -> Settings:
    web = replace(settings.web, login_limit="3 per minute", api_limit="5 per minute", max_request_bytes=MAX_BODY)
    return replace(settings, web=web)


def attempt(
    client: FlaskClient,
    username: str,
    password: str = "wrong password",
    address: str = "127.0.0.1",
) -> TestResponse:
    return client.post(LOGIN, json={"username": username, "password": password}, environ_base={"REMOTE_ADDR": address})


def access(svc: Services, user: Any) -> dict[str, str]:
    """Headers with a fresh access token, issued without a login (which has its own limit)."""
    return bearer(svc.tokens.issue(user)["access_token"])


def assert_limited(response: TestResponse) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert body["status"] == 429 and "too many requests" in body["error"], body
    retry_after = response.headers.get("Retry-After", "")
    assert retry_after.isdigit() and 0 < int(retry_after) <= 60, retry_after


def test_fourth_wrong_login_is_refused_and_the_address_with_it(client: FlaskClient, users: dict) -> None:
    for _ in range(3):
        assert attempt(client, "bob").status_code == 401
    assert_limited(attempt(client, "bob"))  # bob's name limit (and the address limit) are used up
    assert_limited(attempt(client, "carol"))  # another name from the same address: the address limit
    assert_limited(attempt(client, "carol", PASSWORD))  # even with the right password


def test_login_limit_per_user_name_and_address(client: FlaskClient, users: dict) -> None:
    # failures count per (user, address): one address cannot lock bob out elsewhere (issue 13)
    for _ in range(3):
        assert attempt(client, "bob", address="10.0.0.1").status_code == 401
    assert_limited(attempt(client, "bob", PASSWORD, address="10.0.0.1"))  # the same name from the same address
    assert attempt(client, "bob", PASSWORD, address="10.0.0.9").status_code == 200  # bob elsewhere is fine
    assert attempt(client, "carol", PASSWORD, address="10.0.0.9").status_code == 200


def test_login_limit_per_address_across_user_names(client: FlaskClient, users: dict) -> None:
    for name in ("nobody", "admin", "root"):
        assert attempt(client, name, address="10.0.0.7").status_code == 401
    assert_limited(attempt(client, "alice", PASSWORD, address="10.0.0.7"))  # a fresh name, a used-up address
    assert attempt(client, "alice", PASSWORD, address="10.0.0.8").status_code == 200  # alice herself is fine


def test_api_limit_is_per_user(client: FlaskClient, svc: Services, users: dict) -> None:
    alice, bob = access(svc, users["alice"]), access(svc, users["bob"])
    for _ in range(5):
        assert client.get(ME, headers=alice).status_code == 200
    assert_limited(client.get(ME, headers=alice))
    assert_limited(client.get(ME, headers=access(svc, users["alice"])))  # a new token does not reset it
    response = client.get(ME, headers=bob)  # same address, another user
    assert response.status_code == 200 and response.get_json()["username"] == "bob"


def test_api_limit_is_one_budget_across_endpoints(client: FlaskClient, svc: Services, users: dict) -> None:
    for _ in range(4):
        assert client.get(ME, headers=access(svc, users["alice"])).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=access(svc, users["alice"])).status_code == 200
    assert_limited(client.get(ME, headers=access(svc, users["alice"])))


def test_refused_tokens_do_not_use_the_users_budget(client: FlaskClient, svc: Services, users: dict) -> None:
    for _ in range(10):
        assert client.get(ME, headers=bearer("not-a-jwt")).status_code == 401
    assert client.get(ME, headers=access(svc, users["alice"])).status_code == 200


def test_counters_live_in_redis(client: FlaskClient, svc: Services, redis_handle: RedisHandle, users: dict) -> None:
    attempt(client, "bob")
    client.get(ME, headers=access(svc, users["carol"]))
    keys = set(redis_handle.client.scan_iter(match="*teamocr-limits*"))
    assert any("teamocr-limits/login-user:bob/" in key for key in keys), keys
    assert any("teamocr-limits/login-addr:127.0.0.1/" in key for key in keys), keys
    assert any("teamocr-limits/user:carol/" in key for key in keys), keys


def test_a_huge_user_name_is_not_a_huge_key(client: FlaskClient, redis_handle: RedisHandle) -> None:
    assert attempt(client, "x" * 3000).status_code == 401
    keys = list(redis_handle.client.scan_iter(match="*teamocr-limits/login-user:*"))
    assert keys and all(len(key) < 200 for key in keys), keys


@pytest.mark.parametrize("path", [LOGIN, "/api/v1/auth/refresh"])
def test_oversized_body_is_json_413(client: FlaskClient, users: dict, path: str) -> None:
    response = client.post(path, data="x" * (MAX_BODY + 1), content_type="application/json")
    assert response.status_code == 413 and response.is_json
    assert response.get_json() == {"error": f"request body larger than {MAX_BODY} bytes", "status": 413}
