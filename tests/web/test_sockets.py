"""Socket.IO on the real app, served over HTTP: who may connect, rooms, token expiry, delivery.

Flask-SocketIO's ``test_client`` refuses an app with a message queue (ours relays the daemon's
events through Redis), so these tests serve the app on a free port and connect real
python-socketio clients over WebSocket; refusals and long-polling are checked on the wire.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
import socketio
from flask import Flask
from flask.testing import FlaskClient

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from daemon.results.events import SOCKETIO_CHANNEL
from daemon.results.teams import DEFAULT_ROOM
from tests.daemon.servicekit import wait_subscribed
from tests.polling import wait_until
from tests.web.browserkit import handshake
from tests.web.conftest import login
from web.services import Services
from web.sockets import SocketSession, SocketSessions


@pytest.fixture
def tokens(client: FlaskClient, users: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: login(client, name) for name in users}


def refused(base_url: str, token: str | None) -> str:
    outcome, message = handshake(base_url, {"token": token} if token is not None else {})
    assert outcome == "refused", message
    return str(message)


def test_refused_without_a_valid_access_token(base_url: str, tokens: dict[str, dict[str, Any]], svc: Services) -> None:
    assert refused(base_url, None).startswith("unauthorized: missing token")
    assert refused(base_url, "").startswith("unauthorized: missing token")
    assert refused(base_url, "not-a-jwt") == "unauthorized: malformed token"
    head, _, signature = tokens["bob"]["access_token"].rpartition(".")
    forged = head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    assert refused(base_url, forged) == "unauthorized: token signature does not match"
    assert refused(base_url, tokens["bob"]["refresh_token"]).startswith("unauthorized: wrong token type")
    svc.tokens.revoke(svc.tokens.verify(tokens["carol"]["access_token"]))
    assert refused(base_url, tokens["carol"]["access_token"]) == "unauthorized: token revoked"


def test_refused_with_an_expired_token(base_url: str, svc: Services, users: dict[str, Any], settings: Settings) -> None:
    svc.tokens.settings = replace(settings.web, access_ttl=-5)  # issued already expired
    expired = svc.tokens.issue(users["bob"])["access_token"]
    assert refused(base_url, expired) == "unauthorized: token expired"


def test_python_client_sees_the_refusal(connect: Any) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError, match="unauthorized: missing token"):
        connect(None)


def test_accepted_and_joined_to_the_team_rooms(connect: Any, tokens: dict[str, dict[str, Any]], app: Flask) -> None:
    rooms = {}
    for name in ("alice", "bob", "carol"):
        client = connect(tokens[name]["access_token"])
        rooms[name] = client.sio.call("subscribe", timeout=10)["rooms"]
        assert client.sio.call("ping", timeout=10)["ok"] is True
    assert rooms == {"alice": ["team:alpha", DEFAULT_ROOM], "bob": ["team:alpha", DEFAULT_ROOM], "carol": ["team:beta"]}
    server = app.extensions["socketio"].server
    joined = {
        frozenset(r for r in server.manager.get_rooms(sid, "/") if r != sid)
        for sid in server.manager.rooms.get("/", {}).get(None, {})
    }
    # alice is an admin: she also hears her team's fine-tune jobs (web.training.admin_room)
    assert joined == {
        frozenset(["team:alpha", DEFAULT_ROOM, "admins:alpha"]),
        frozenset(["team:alpha", DEFAULT_ROOM]),
        frozenset(["team:beta"]),
    }


def test_long_polling_is_accepted_too(base_url: str, tokens: dict[str, dict[str, Any]]) -> None:
    outcome, data = handshake(base_url, {"token": tokens["bob"]["access_token"]})  # speaks long-polling
    assert outcome == "connected" and data["sid"]


def test_events_after_expiry_disconnect(connect: Any, svc: Services, users: dict[str, Any], settings: Settings) -> None:
    svc.tokens.settings = replace(settings.web, access_ttl=2)
    pair = svc.tokens.issue(users["bob"])
    client = connect(pair["access_token"])
    assert client.sio.call("ping", timeout=10)["ok"] is True
    deadline = time.time() + 2.5
    wait_until(lambda: time.time() > deadline, 5, "the token to expire")
    client.sio.emit("ping")  # no answer comes: the server says why, then hangs up
    wait_until(lambda: not client.sio.connected, 60, "the server to disconnect")
    assert client.errors == [{"error": "token expired"}]


def test_renew_extends_the_connection_for_the_same_user_only(
    connect: Any, svc: Services, users: dict[str, Any], settings: Settings
) -> None:
    svc.tokens.settings = replace(settings.web, access_ttl=2)
    client = connect(svc.tokens.issue(users["bob"])["access_token"])
    svc.tokens.settings = settings.web
    other = client.sio.call("renew", {"token": svc.tokens.issue(users["carol"])["access_token"]}, timeout=10)
    assert other == {"error": "the token belongs to another user"}
    assert client.sio.call("renew", {"token": "garbage"}, timeout=10)["error"] == "malformed token"
    renewed = client.sio.call("renew", {"token": svc.tokens.issue(users["bob"])["access_token"]}, timeout=10)
    assert renewed["ok"] is True
    deadline = time.time() + 2.5
    wait_until(lambda: time.time() > deadline, 5, "the first token to expire")
    assert client.sio.call("ping", timeout=10)["ok"] is True and client.sio.connected


def test_unknown_events_are_answered(connect: Any, tokens: dict[str, dict[str, Any]]) -> None:
    client = connect(tokens["bob"]["access_token"])
    assert client.sio.call("nonsense", {"x": 1}, timeout=10) == {"error": "unknown event 'nonsense'"}


def test_results_reach_only_the_team_room(
    connect: Any, tokens: dict[str, dict[str, Any]], redis_handle: RedisHandle
) -> None:
    clients = {name: connect(tokens[name]["access_token"]) for name in ("alice", "bob", "carol")}
    wait_subscribed(redis_handle.client, SOCKETIO_CHANNEL)
    emitter = socketio.RedisManager(redis_handle.url, channel=SOCKETIO_CHANNEL, write_only=True)
    alpha = {"id": "r-alpha", "channel": "finance", "status": "done", "text": "<script>alert(1)</script>"}
    beta = {"id": "r-beta", "channel": "sales", "status": "queued", "text": ""}
    root = {"id": "r-root", "channel": "", "status": "processing", "text": ""}
    emitter.emit("result", alpha, room="team:alpha", namespace="/")
    emitter.emit("result", beta, room="team:beta", namespace="/")
    emitter.emit("result", root, room=DEFAULT_ROOM, namespace="/")
    for name in ("alice", "bob"):
        wait_until(lambda n=name: len(clients[n].results) >= 2, 60, f"{name}'s results")
    wait_until(lambda: clients["carol"].results, 60, "carol's result")
    # the last emit was to alpha's rooms; give a stray delivery to carol time to show up
    wait_until(lambda: [r["id"] for r in clients["bob"].results] == ["r-alpha", "r-root"], 60, "bob's order")
    assert [r["id"] for r in clients["alice"].results] == ["r-alpha", "r-root"]
    assert clients["alice"].results[0] == alpha
    assert [r["id"] for r in clients["carol"].results] == ["r-beta"]


def test_disconnect_leaves_the_rooms(connect: Any, tokens: dict[str, dict[str, Any]], app: Flask) -> None:
    server = app.extensions["socketio"].server
    client = connect(tokens["bob"]["access_token"])
    wait_until(lambda: len(server.manager.rooms.get("/", {}).get("team:alpha", {})) == 1, 60, "bob in team:alpha")
    client.close()
    wait_until(lambda: not server.manager.rooms.get("/", {}).get("team:alpha"), 60, "bob to leave team:alpha")


def test_session_registry_expiry_and_cleanup() -> None:
    now = [1000.0]
    sessions = SocketSessions(clock=lambda: now[0])
    assert sessions.expired("unknown")
    sessions.add("sid1", SocketSession("bob", ("team:alpha",), exp=1010.0))
    assert not sessions.expired("sid1") and len(sessions) == 1
    now[0] = 1010.0
    assert sessions.expired("sid1")
    sessions.drop("sid1")
    sessions.drop("sid1")  # twice is fine (disconnect after a server-side disconnect)
    assert len(sessions) == 0 and sessions.get("sid1") is None
