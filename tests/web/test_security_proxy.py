"""Rate-limit keys behind a proxy and beyond one address, on the real app and Redis.

``web.trusted_proxies = N`` believes N hops of X-Forwarded-For/-Proto/-Host (and none by default, so
a client cannot pick its own address); an IPv6 client counts as its /64; login attempts count per
(user name, address) and per address, so attempts from one address cannot lock a user out for
everyone; a refresh counts against the user its token names, when the token's signature holds.

Limits are "3 per minute", as in test_limits.py, so every count is exact.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import jwt
import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import TestResponse

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from tests.web.conftest import PASSWORD
from web.app import create_app
from web.limits import client_address, login_name_key, refresh_subject_key
from web.services import Services, services

LOGIN = "/api/v1/auth/login"
PROXY = "10.9.9.9"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, web=replace(settings.web, login_limit="3 per minute"))


def attempt(
    client: FlaskClient, username: str, password: str = "wrong password", address: str = PROXY, **headers: str
) -> TestResponse:
    return client.post(
        LOGIN,
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


def assert_limited(response: TestResponse) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.headers.get("Retry-After", "").isdigit()


# --- behind a proxy -----------------------------------------------------------------------------


@pytest.fixture
def proxied(settings: Settings, redis_handle: RedisHandle) -> Any:
    """The app behind one trusted proxy."""
    app, _ = create_app(replace(settings, web=replace(settings.web, trusted_proxies=1)), redis_url=redis_handle.url)
    app.config["TESTING"] = True
    services(app).accounts.add_user("bob", PASSWORD, "alpha")
    yield app
    services(app).store.close()
    services(app).accounts.close()


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(proxied: Flask, redis_handle: RedisHandle) -> None:
    client = proxied.test_client()
    for _ in range(3):
        assert attempt(client, "mallory", X_Forwarded_For="203.0.113.5").status_code == 401
    assert_limited(attempt(client, "bob", PASSWORD, X_Forwarded_For="203.0.113.5"))
    # The same proxy, another client behind it: its own budget, not the proxy's.
    assert attempt(client, "bob", PASSWORD, X_Forwarded_For="203.0.113.6").status_code == 200
    keys = set(redis_handle.client.scan_iter(match="*login-addr:*"))
    assert any("login-addr:203.0.113.5/" in key for key in keys) and not any(PROXY in key for key in keys), keys


def test_trusted_proxies_believes_the_scheme_and_host_too(proxied: Flask) -> None:
    def probe() -> Any:
        return jsonify(address=request.remote_addr, scheme=request.scheme, host=request.host)

    proxied.add_url_rule("/test-probe", "test_probe", probe)  # a view that shows what the app saw
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "ocr.example.org"}
    seen = proxied.test_client().get("/test-probe", headers=headers, environ_base={"REMOTE_ADDR": PROXY}).get_json()
    assert seen == {"address": "203.0.113.7", "scheme": "https", "host": "ocr.example.org"}
    # Only one hop is believed: an address the client wrote in front of the proxy's is not.
    two = {**headers, "X-Forwarded-For": "192.0.2.1, 203.0.113.8"}
    seen = proxied.test_client().get("/test-probe", headers=two, environ_base={"REMOTE_ADDR": PROXY}).get_json()
    assert seen["address"] == "203.0.113.8"


def test_without_trusted_proxies_a_forged_forwarded_for_is_ignored(
    client: FlaskClient, app: Flask, users: dict
) -> None:
    assert not isinstance(app.wsgi_app, ProxyFix)
    for n in range(3):
        assert attempt(client, "mallory", X_Forwarded_For=f"198.51.100.{n}").status_code == 401
    assert_limited(attempt(client, "bob", PASSWORD, X_Forwarded_For="198.51.100.99"))


def test_a_negative_hop_count_is_refused(settings: Settings, redis_handle: RedisHandle) -> None:
    with pytest.raises(ValueError, match="web.trusted_proxies"):
        create_app(replace(settings, web=replace(settings.web, trusted_proxies=-1)), redis_url=redis_handle.url)


# --- IPv6 ---------------------------------------------------------------------------------------


def test_an_ipv6_client_counts_as_its_64(client: FlaskClient, users: dict) -> None:
    for address in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:abcd:1:2:3"):
        assert attempt(client, "mallory", address=address).status_code == 401
    assert_limited(attempt(client, "bob", PASSWORD, address="2001:db8:1:2:ffff:ffff:ffff:fffe"))  # same /64
    assert attempt(client, "bob", PASSWORD, address="2001:db8:1:3::1").status_code == 200  # the next /64


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4 through an IPv6 socket
        ("2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::/64"),
        ("fe80::1%eth0", "fe80::/64"),
    ],
)
def test_client_address_keys(app: Flask, remote: str, key: str) -> None:
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": remote}):
        assert client_address() == key


# --- login per (user, address) ------------------------------------------------------------------


def test_failures_from_one_address_do_not_lock_the_user_out_elsewhere(client: FlaskClient, users: dict) -> None:
    for _ in range(3):
        assert attempt(client, "bob", address="192.0.2.66").status_code == 401
    assert_limited(attempt(client, "bob", PASSWORD, address="192.0.2.66"))  # that address is done
    assert attempt(client, "bob", PASSWORD, address="192.0.2.10").status_code == 200  # bob himself is not


def test_the_login_key_is_the_user_and_the_address(app: Flask) -> None:
    body = {"username": "bob", "password": "x"}
    with app.test_request_context(LOGIN, method="POST", json=body, environ_base={"REMOTE_ADDR": "2001:db8::5"}):
        assert login_name_key() == "login-user:bob/addr:2001:db8::/64"


# --- refresh per user ---------------------------------------------------------------------------


def refresh_key(app: Flask, token: str, address: str = "192.0.2.1") -> str:
    body = {"refresh_token": token}
    path = "/api/v1/auth/refresh"
    with app.test_request_context(path, method="POST", json=body, environ_base={"REMOTE_ADDR": address}):
        return refresh_subject_key()


def test_refresh_is_counted_per_user_whatever_the_address(app: Flask, svc: Services, users: dict) -> None:
    refresh = svc.tokens.issue(users["bob"])["refresh_token"]
    assert refresh_key(app, refresh, "192.0.2.1") == refresh_key(app, refresh, "198.51.100.2") == "refresh-user:bob"
    svc.tokens.revoke(svc.tokens.verify(refresh, "refresh"))
    assert refresh_key(app, refresh) == "refresh-user:bob"  # a spent token still counts against bob


def test_a_token_that_does_not_prove_its_user_counts_per_address(app: Flask, svc: Services, users: dict) -> None:
    now = int(time.time())
    claims = {"sub": "bob", "typ": "refresh", "iat": now, "nbf": now, "exp": now + 600, "jti": "x"}
    claims |= {"iss": svc.settings.web.jwt_issuer, "aud": svc.settings.web.jwt_audience}
    forged = jwt.encode(claims, "another secret of at least thirty-two bytes", algorithm="HS256")
    access = svc.tokens.issue(users["bob"])["access_token"]
    expired = jwt.encode(claims | {"exp": now - 10}, svc.tokens.secret, algorithm="HS256")
    for token in (forged, access, expired, "not-a-jwt", ""):
        assert refresh_key(app, token, "192.0.2.44") == "refresh-addr:192.0.2.44", token
