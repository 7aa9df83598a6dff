"""Sessions end when they should: a live socket is cut once its token expires or is revoked (the
client sending nothing), logout ends the whole login, a replayed refresh token revokes every
token of its login, and no login outlives ``web.session_max_age``.

Real app, real embedded Redis, real python-socketio clients over WebSocket (threading server),
and once the product's gevent server (``python -m cli.webserver``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

import jwt
import requests
from flask.testing import FlaskClient

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from tests.faults.stack import add_users
from tests.polling import wait_until
from tests.web.browserkit import SocketClient, served_web
from tests.web.conftest import PASSWORD, bearer, login
from web.services import Services

ME = "/api/v1/auth/me"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
CUT_WITHIN = 15  # seconds: the sweep runs every 2 s; generous for a busy CI core


def cut(client: SocketClient, what: str) -> None:
    wait_until(lambda: not client.sio.connected, CUT_WITHIN, what, interval=0.1)


def refresh(client: FlaskClient, token: str) -> Any:
    return client.post(REFRESH, json={"refresh_token": token})


def test_a_silent_socket_is_cut_when_its_token_expires(
    connect: Any, svc: Services, users: dict[str, Any], settings: Settings
) -> None:
    svc.tokens.settings = replace(settings.web, access_ttl=2)
    client = connect(svc.tokens.issue(users["bob"])["access_token"])
    assert client.sio.call("ping", timeout=10)["ok"] is True
    cut(client, "the expired socket to be cut without any event from the client")
    assert client.errors == [{"error": "token expired"}]


def test_logout_cuts_the_socket_of_that_login_only(
    connect: Any, client: FlaskClient, users: dict[str, Any], svc: Services
) -> None:
    first, other = login(client, "bob"), login(client, "bob")  # two logins (two tabs, say)
    socket_first, socket_other = connect(first["access_token"]), connect(other["access_token"])
    assert client.post(LOGOUT, headers=bearer(first["access_token"])).status_code == 200
    cut(socket_first, "the logged-out socket to be cut")
    assert socket_first.errors == [{"error": "token revoked"}]
    assert socket_other.sio.connected and socket_other.sio.call("ping", timeout=10)["ok"] is True
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200
    assert svc.tokens.verify(other["refresh_token"], "refresh")  # the other login goes on


def test_logout_ends_every_token_of_the_login(connect: Any, client: FlaskClient, users: dict[str, Any]) -> None:
    """A socket opened before a refresh keeps the older access token; logging out with the newer
    one ends the login, so that socket is cut too and the older token is refused."""
    pair = login(client, "bob")
    socket = connect(pair["access_token"])
    newer = refresh(client, pair["refresh_token"]).get_json()
    assert client.post(LOGOUT, headers=bearer(newer["access_token"])).status_code == 200
    cut(socket, "the socket of the older token of the login to be cut")
    for token in (pair["access_token"], newer["access_token"]):
        response = client.get(ME, headers=bearer(token))
        assert response.status_code == 401 and response.get_json()["error"] == "token revoked"
    again = refresh(client, newer["refresh_token"])
    assert again.status_code == 401 and again.get_json()["error"] == "token revoked"


def test_a_revoked_access_token_cuts_its_socket(connect: Any, svc: Services, users: dict[str, Any]) -> None:
    token = svc.tokens.issue(users["carol"])["access_token"]
    socket = connect(token)
    svc.tokens.revoke(svc.tokens.verify(token))
    cut(socket, "the socket of a revoked token to be cut")
    assert socket.errors == [{"error": "token revoked"}]


def test_a_renewed_socket_is_not_cut_when_its_first_token_expires(
    connect: Any, svc: Services, users: dict[str, Any], settings: Settings
) -> None:
    svc.tokens.settings = replace(settings.web, access_ttl=2)
    socket = connect(svc.tokens.issue(users["bob"])["access_token"])
    svc.tokens.settings = settings.web
    assert socket.sio.call("renew", {"token": svc.tokens.issue(users["bob"])["access_token"]}, timeout=10)["ok"]
    deadline = time.time() + 7  # the first token expired and two sweeps (grace included) have run
    wait_until(lambda: time.time() > deadline, 10, "the first token's expiry and the sweeps after it")
    assert socket.sio.connected and socket.sio.call("ping", timeout=10)["ok"] is True and socket.errors == []


def test_a_replayed_refresh_token_revokes_the_whole_login(client: FlaskClient, users: dict[str, Any]) -> None:
    first = login(client, "bob")
    elsewhere = login(client, "bob")  # another login of the same user is not touched
    second = refresh(client, first["refresh_token"])
    assert second.status_code == 200
    second_pair = second.get_json()
    third = refresh(client, second_pair["refresh_token"]).get_json()  # the rightful client goes on
    replay = refresh(client, first["refresh_token"])  # a stolen copy of the spent token
    assert replay.status_code == 401
    assert replay.get_json()["error"] == "token revoked"
    for token in (first["access_token"], second_pair["access_token"], third["access_token"]):
        response = client.get(ME, headers=bearer(token))
        assert response.status_code == 401 and response.get_json()["error"] == "token revoked"
    for token in (second_pair["refresh_token"], third["refresh_token"]):
        assert refresh(client, token).status_code == 401
    assert client.get(ME, headers=bearer(elsewhere["access_token"])).status_code == 200
    assert refresh(client, elsewhere["refresh_token"]).status_code == 200
    # the rightful client, logging out of the login that ended, is answered ok (logout is idempotent)
    assert client.post(LOGOUT, headers=bearer(third["access_token"])).status_code == 200


def test_a_replay_cuts_the_sockets_of_the_login(connect: Any, client: FlaskClient, users: dict[str, Any]) -> None:
    first = login(client, "bob")
    socket = connect(refresh(client, first["refresh_token"]).get_json()["access_token"])
    assert refresh(client, first["refresh_token"]).status_code == 401  # the replay
    cut(socket, "the socket of a login whose refresh token was replayed to be cut")
    assert socket.errors == [{"error": "token revoked"}]


def test_refresh_keeps_the_login_time_and_family(client: FlaskClient, svc: Services, users: dict[str, Any]) -> None:
    pair = login(client, "bob")
    newer = refresh(client, pair["refresh_token"]).get_json()
    old, new = svc.tokens.verify(pair["access_token"]), svc.tokens.verify(newer["access_token"])
    assert new["fam"] == old["fam"] and new["auth_time"] == old["auth_time"] and new["jti"] != old["jti"]
    assert svc.tokens.verify(login(client, "bob")["access_token"])["fam"] != old["fam"]  # a new login


def signed_refresh(svc: Services, username: str, auth_time: int) -> str:
    now = int(time.time())
    web = svc.settings.web
    claims = {
        "sub": username,
        "team": "alpha",
        "role": "member",
        "typ": "refresh",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "iss": web.jwt_issuer,
        "aud": web.jwt_audience,
        "fam": uuid.uuid4().hex,
        "auth_time": auth_time,
        "stamp": svc.accounts.get(username).stamp,  # type: ignore[union-attr]
    }
    return jwt.encode(claims, svc.tokens.secret, algorithm="HS256")


def test_no_refresh_after_the_session_max_age(client: FlaskClient, svc: Services, users: dict[str, Any]) -> None:
    assert svc.settings.web.session_max_age == 30 * 86400  # the default: 30 days
    now = int(time.time())
    young = refresh(client, signed_refresh(svc, "bob", now - 29 * 86400))
    assert young.status_code == 200, young.get_json()
    old = refresh(client, signed_refresh(svc, "bob", now - 30 * 86400 - 5))
    assert old.status_code == 401 and "session expired" in old.get_json()["error"]


def test_no_token_lives_past_the_session_max_age(
    client: FlaskClient, svc: Services, users: dict[str, Any], settings: Settings
) -> None:
    svc.tokens.settings = replace(settings.web, session_max_age=3)
    pair = login(client, "bob")
    claims = svc.tokens.verify(pair["access_token"])
    assert claims["exp"] <= claims["auth_time"] + 3 and pair["expires_in"] <= 3
    assert svc.tokens.verify(pair["refresh_token"], "refresh")["exp"] <= claims["auth_time"] + 3
    deadline = claims["auth_time"] + 3
    wait_until(lambda: time.time() >= deadline, 10, "the session's end")
    ended = refresh(client, pair["refresh_token"])
    assert ended.status_code == 401 and "expired" in ended.get_json()["error"]
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 401


def test_the_gevent_server_cuts_sockets_too(settings: Settings, redis_handle: RedisHandle) -> None:
    """The sweep runs as a background task of whichever server: here the product's gevent one."""
    add_users(settings.data_dir, {"bob": "alpha", "carol": "beta"})
    short = replace(settings, web=replace(settings.web, access_ttl=3))
    with served_web(short, redis_handle.url) as url:

        def tokens(name: str) -> dict[str, Any]:
            response = requests.post(
                f"{url}/api/v1/auth/login", json={"username": name, "password": PASSWORD}, timeout=30
            )
            assert response.status_code == 200, response.text
            return dict(response.json())

        bob, carol = tokens("bob"), tokens("carol")
        expiring, logged_out = SocketClient(url, bob["access_token"]), SocketClient(url, carol["access_token"])
        try:
            out = requests.post(f"{url}{LOGOUT}", headers=bearer(carol["access_token"]), timeout=30)
            assert out.status_code == 200
            cut(logged_out, "the gevent server to cut the logged-out socket")
            cut(expiring, "the gevent server to cut the expired socket")
            assert logged_out.errors == [{"error": "token revoked"}]
            assert expiring.errors == [{"error": "token expired"}]
        finally:
            expiring.close()
            logged_out.close()


def test_the_sweep_runs_only_while_connections_are_open() -> None:
    from web.sockets import SocketSession, SocketSessions

    sessions = SocketSessions(clock=lambda: 1000.0)
    first = SocketSession("bob", ("team:alpha",), exp=2000.0)
    assert sessions.add("a", first) is True  # the first connection starts the sweep ...
    assert sessions.add("b", SocketSession("carol", ("team:beta",), exp=2000.0)) is False  # ... once
    assert sessions.keep_sweeping()
    renewed = SocketSession("bob", ("team:alpha",), exp=3000.0)
    sessions.add("a", renewed)
    assert sessions.drop("a", only=first) is False  # a renew in between wins over the sweep
    assert sessions.drop("a", only=renewed) is True and sessions.drop("a") is False
    sessions.drop("b")
    assert not sessions.keep_sweeping()  # the last one left: the sweep ends ...
    assert sessions.add("c", first) is True  # ... and the next connection starts a new one
