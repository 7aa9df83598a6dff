"""`teamocr user add` and the web's commands, run as the real command in a subprocess.

The password comes on stdin, as a script or an admin piping it would send it; the user created
must then log in through the app built on the same data folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from tests.web.conftest import PASSWORD, bearer
from web.app import create_app
from web.services import services

REPO = Path(__file__).resolve().parents[2]


def teamocr(
    *args: str, settings: Settings, password: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    extra = env or {}
    env = {name: value for name, value in os.environ.items() if not name.startswith("TEAMOCR_")}
    env.update(
        {
            "TEAMOCR_DATA_DIR": str(settings.data_dir),
            "TEAMOCR_SHARED_DIR": str(settings.shared_dir),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
    )
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        input=password,
        timeout=120,
    )


@pytest.fixture
def web_client(settings: Settings, redis_handle: RedisHandle) -> Iterator[FlaskClient]:
    """A client of the app on the data folder the command writes to."""
    app, _ = create_app(settings, redis_url=redis_handle.url)
    yield app.test_client()
    services(app).store.close()
    services(app).accounts.close()


def add_user(settings: Settings, *args: str, password: str = PASSWORD + "\n") -> subprocess.CompletedProcess[str]:
    return teamocr("user", "add", *args, settings=settings, password=password)


def test_user_add_then_login(settings: Settings, redis_handle: RedisHandle) -> None:
    done = add_user(settings, "alice", "--team", "alpha", "--admin")
    assert done.returncode == 0, done.stderr
    assert "created admin alice in team alpha" in done.stdout
    member = add_user(settings, "bob", "--team", "beta", password=PASSWORD)  # no newline at the end
    assert member.returncode == 0, member.stderr
    assert "created member bob in team beta" in member.stdout
    app, _ = create_app(settings, redis_url=redis_handle.url)
    try:
        client = app.test_client()
        for name, team, role in [("alice", "alpha", "admin"), ("bob", "beta", "member")]:
            login = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
            assert login.status_code == 200, login.get_json()
            me = client.get("/api/v1/auth/me", headers=bearer(login.get_json()["access_token"]))
            assert me.get_json() == {"username": name, "team": team, "role": role}
        wrong = client.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD + "\n"})
        assert wrong.status_code == 401  # the line end read from stdin is not part of the password
        assert services(app).accounts.first_team() == "alpha"
    finally:
        services(app).store.close()
        services(app).accounts.close()


def test_duplicate_user_refused(settings: Settings) -> None:
    assert add_user(settings, "alice", "--team", "alpha").returncode == 0
    again = add_user(settings, "alice", "--team", "beta", password="another password\n")
    assert again.returncode == 2
    assert "user 'alice' already exists" in again.stderr
    assert "created" not in again.stdout


@pytest.mark.parametrize("password", ["", "\n", "short\n", "1234567\n"])
def test_short_password_refused(settings: Settings, password: str) -> None:
    done = add_user(settings, "alice", "--team", "alpha", password=password)
    assert done.returncode == 2
    assert "password must have at least 8 characters" in done.stderr


def test_bad_name_refused(settings: Settings) -> None:
    done = add_user(settings, "bad name", "--team", "alpha")
    assert done.returncode == 2 and "user name 'bad name'" in done.stderr


def test_team_is_required(settings: Settings) -> None:
    done = add_user(settings, "alice")
    assert done.returncode == 2 and "--team" in done.stderr


def test_refused_users_cannot_log_in(settings: Settings, web_client: FlaskClient) -> None:
    add_user(settings, "alice", "--team", "alpha", password="short\n")
    response = web_client.post("/api/v1/auth/login", json={"username": "alice", "password": "short"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("command", "usage"),
    [(["run"], "usage: teamocr run"), (["web"], "usage: teamocr web"), (["user", "add"], "usage: teamocr user add")],
)
def test_help(settings: Settings, command: list[str], usage: str) -> None:
    done = teamocr(*command, "--help", settings=settings)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(usage)
    assert not settings.data_dir.exists()  # asking for help touches nothing


def test_web_alone_needs_a_redis_url(settings: Settings) -> None:
    done = teamocr("web", settings=settings)
    assert done.returncode == 2
    assert "`teamocr web` alone needs redis_url (TEAMOCR_REDIS_URL)" in done.stderr
    assert "Traceback" not in done.stderr
