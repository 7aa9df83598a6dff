"""Fixtures for the web: settings on tmp_path, a real (embedded) Redis, the app, users, tokens.

They build on each other: settings -> redis_handle -> app -> client -> users -> auth headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config.settings import Settings, load_settings
from daemon.queue.redisconn import RedisHandle, open_redis
from daemon.queue.streams import ensure_groups
from tests.web.browserkit import SocketClient, serving
from web.app import create_app
from web.services import Services, services

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    base = load_settings(
        env={"TEAMOCR_SHARED_DIR": str(tmp_path / "share"), "TEAMOCR_DATA_DIR": str(tmp_path / "data")}
    )
    base.shared_dir.mkdir(parents=True, exist_ok=True)
    teams = replace(base.teams, default_team="alpha", channels="finance=alpha, sales=beta")
    return replace(base, teams=teams)


@pytest.fixture
def redis_handle(settings: Settings) -> Iterator[RedisHandle]:
    handle = open_redis(None, settings.data_dir)
    ensure_groups(handle.client)
    yield handle
    handle.close()


@pytest.fixture
def app_socketio(settings: Settings, redis_handle: RedisHandle) -> Iterator[tuple[Flask, Any]]:
    app, socketio = create_app(settings, redis_url=redis_handle.url)
    app.config["TESTING"] = True
    yield app, socketio
    svc = services(app)
    svc.store.close()
    svc.accounts.close()
    svc.webhooks.close()


@pytest.fixture
def app(app_socketio: tuple[Flask, Any]) -> Flask:
    return app_socketio[0]


@pytest.fixture
def svc(app: Flask) -> Services:
    return services(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def users(svc: Services) -> dict[str, Any]:
    """alice (alpha admin, the default team), bob (alpha member), carol (beta member)."""
    return {
        "alice": svc.accounts.add_user("alice", PASSWORD, "alpha", admin=True),
        "bob": svc.accounts.add_user("bob", PASSWORD, "alpha"),
        "carol": svc.accounts.add_user("carol", PASSWORD, "beta"),
    }


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(client: FlaskClient, users: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Authorization headers of each user."""
    return {name: bearer(login(client, name)["access_token"]) for name in users}


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    """The app served over HTTP on a free local port (for Socket.IO clients and requests)."""
    with serving(app) as url:
        yield url


@pytest.fixture
def connect(base_url: str) -> Iterator[Any]:
    """Opens Socket.IO clients to ``base_url`` (a token, maybe transports), closed afterwards."""
    opened: list[SocketClient] = []

    def open_client(token: str | None, transports: list[str] | None = None) -> SocketClient:
        client = SocketClient(base_url, token, transports)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()
