"""Accounts can be taken away: roles (member, admin, operator), and disabling, a new password, a
new role or removal revoke the user's tokens and live sockets at once; the same from
``teamocr user ...`` (a real subprocess) and from ``/api/v1/users`` for admins, where a team admin
manages only their own team and another team's user answers exactly like an unknown one.

alice is team alpha's admin, bob an alpha member, carol a beta member (tests/web/conftest.py);
olga is an operator of team gamma.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

import web.accounts
from config.settings import Settings
from tests.polling import wait_until
from tests.web.browserkit import SocketClient
from tests.web.conftest import PASSWORD, bearer, login
from tests.web.test_cli_user import teamocr
from web.accounts import AccountError, AccountStore, User
from web.app import ACCOUNTS_NAME
from web.services import Services

ME = "/api/v1/auth/me"
USERS = "/api/v1/users"
NEW_PASSWORD = "a brand new passphrase"
CUT_WITHIN = 15  # seconds: the socket sweep runs every 2 s; generous for a busy CI core


@pytest.fixture
def olga(svc: Services, users: dict[str, Any]) -> User:
    return svc.accounts.add_user("olga", PASSWORD, "gamma", role="operator")


def me(client: FlaskClient, token: str) -> Any:
    return client.get(ME, headers=bearer(token))


def refused(client: FlaskClient, pair: dict[str, Any], cause: str) -> None:
    """Both tokens of ``pair`` are refused with ``cause``."""
    response = me(client, pair["access_token"])
    assert response.status_code == 401 and cause in response.get_json()["error"], response.get_json()
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401 and cause in again.get_json()["error"], again.get_json()


def cut(socket: SocketClient, what: str) -> None:
    wait_until(lambda: not socket.sio.connected, CUT_WITHIN, what, interval=0.1)


# -- roles and the store ---------------------------------------------------------------------------


def test_three_roles(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / ACCOUNTS_NAME)
    try:
        made = {
            role: store.add_user(f"u-{role}", PASSWORD, "alpha", role=role) for role in ("admin", "member", "operator")
        }
        assert [(u.role, u.is_admin, u.is_operator) for u in made.values()] == [
            ("admin", True, False),
            ("member", False, False),
            ("operator", True, True),
        ]
        assert store.verify("u-operator", PASSWORD) == made["operator"]
        with pytest.raises(AccountError, match="role 'root' must be one of admin, member, operator"):
            store.add_user("root", PASSWORD, "alpha", role="root")
        with pytest.raises(AccountError, match="role 'root'"):
            store.set_role("u-member", "root")
        assert store.set_role("u-member", "operator").is_operator
    finally:
        store.close()


def test_an_accounts_file_of_before_is_migrated(tmp_path: Path) -> None:
    """A file made by the earlier schema (roles admin|member only, no state) keeps its users, who
    log in as before and can now be operators or disabled."""
    path = tmp_path / ACCOUNTS_NAME
    from werkzeug.security import generate_password_hash

    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE teams (name TEXT PRIMARY KEY, created_at REAL NOT NULL);
            CREATE TABLE users (
                username TEXT PRIMARY KEY,
                team TEXT NOT NULL REFERENCES teams(name),
                role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
                password_hash TEXT NOT NULL,
                created_at REAL NOT NULL
            );
            """
        )
        db.execute("INSERT INTO teams VALUES ('alpha', 1.0)")
        db.execute("INSERT INTO users VALUES ('alice', 'alpha', 'admin', ?, 1.0)", (generate_password_hash(PASSWORD),))
    db.close()
    store = AccountStore(path)
    try:
        assert store.verify("alice", PASSWORD) == User("alice", "alpha", "admin")
        assert store.get("alice").stamp  # type: ignore[union-attr]
        assert store.set_role("alice", "operator").role == "operator"
        assert store.set_disabled("alice", True).disabled and store.verify("alice", PASSWORD) is None
    finally:
        store.close()
    again = AccountStore(path)  # opening it again changes nothing
    try:
        assert again.get("alice") == User("alice", "alpha", "operator", disabled=True)
    finally:
        again.close()


def test_every_account_change_draws_a_new_stamp(svc: Services, users: dict[str, Any]) -> None:
    accounts = svc.accounts
    stamps = [accounts.get("bob").stamp]  # type: ignore[union-attr]
    stamps.append(accounts.set_password("bob", NEW_PASSWORD).stamp)
    stamps.append(accounts.set_role("bob", "admin").stamp)
    stamps.append(accounts.set_disabled("bob", True).stamp)
    assert len(set(stamps)) == 4 and all(stamps)
    assert accounts.set_disabled("bob", False).stamp == stamps[-1]  # enabling revives no old token
    with pytest.raises(web.accounts.UnknownUser, match="no user 'nobody'"):
        accounts.set_password("nobody", NEW_PASSWORD)
    with pytest.raises(AccountError, match="at least 8"):
        accounts.set_password("bob", "short")


def test_disabled_users_cannot_log_in(client: FlaskClient, svc: Services, users: dict[str, Any]) -> None:
    svc.accounts.set_disabled("bob", True)
    response = client.post("/api/v1/auth/login", json={"username": "bob", "password": PASSWORD})
    assert response.status_code == 401 and response.get_json()["error"] == "wrong user name or password"
    svc.accounts.set_disabled("bob", False)
    assert login(client, "bob")["access_token"]


# -- revocation: tokens and sockets ---------------------------------------------------------------


def test_disabling_revokes_tokens_and_sockets(
    client: FlaskClient, connect: Any, svc: Services, users: dict[str, Any]
) -> None:
    pair, carol = login(client, "bob"), login(client, "carol")
    socket, other = connect(pair["access_token"]), connect(carol["access_token"])
    svc.accounts.set_disabled("bob", True)
    refused(client, pair, "user disabled")
    cut(socket, "the disabled user's socket to be cut")
    assert socket.errors == [{"error": "user disabled"}]
    assert other.sio.call("ping", timeout=10)["ok"] is True and me(client, carol["access_token"]).status_code == 200
    svc.accounts.set_disabled("bob", False)
    refused(client, pair, "token revoked")  # enabling again does not revive the old tokens


def test_a_new_password_revokes_tokens_and_sockets(
    client: FlaskClient, connect: Any, svc: Services, users: dict[str, Any]
) -> None:
    pair = login(client, "bob")
    socket = connect(pair["access_token"])
    svc.accounts.set_password("bob", NEW_PASSWORD)
    refused(client, pair, "token revoked")
    cut(socket, "the socket of a user whose password changed to be cut")
    assert socket.errors == [{"error": "token revoked: the account changed since it was issued"}]
    assert login(client, "bob", NEW_PASSWORD)["access_token"]
    assert client.post("/api/v1/auth/login", json={"username": "bob", "password": PASSWORD}).status_code == 401


def test_a_removed_and_recreated_user_gets_none_of_the_old_tokens(
    client: FlaskClient, connect: Any, svc: Services, users: dict[str, Any]
) -> None:
    pair = login(client, "bob")
    socket = connect(pair["access_token"])
    svc.accounts.remove("bob")
    refused(client, pair, "user no longer exists")
    cut(socket, "the removed user's socket to be cut")
    svc.accounts.add_user("bob", PASSWORD, "alpha")
    refused(client, pair, "token revoked")


def test_a_new_role_revokes_the_tokens_naming_the_old_one(
    client: FlaskClient, svc: Services, users: dict[str, Any]
) -> None:
    pair = login(client, "alice")
    svc.accounts.set_role("alice", "member")
    refused(client, pair, "token revoked")
    assert me(client, login(client, "alice")["access_token"]).get_json()["role"] == "member"


# -- the command line ----------------------------------------------------------------------------


def user(settings: Settings, *args: str, password: str | None = None) -> Any:
    return teamocr("user", *args, settings=settings, password=password)


def test_cli_user_list(settings: Settings, svc: Services, users: dict[str, Any]) -> None:
    svc.accounts.set_disabled("carol", True)
    assert user(settings, "add", "olga", "--team", "gamma", "--role", "operator", password=PASSWORD).returncode == 0
    done = user(settings, "list")
    assert done.returncode == 0, done.stderr
    assert [line.split() for line in done.stdout.splitlines()] == [
        ["alice", "alpha", "admin", "active"],
        ["bob", "alpha", "member", "active"],
        ["carol", "beta", "member", "disabled"],
        ["olga", "gamma", "operator", "active"],
    ]
    only = user(settings, "list", "--team", "beta")
    assert only.returncode == 0 and only.stdout.split() == ["carol", "beta", "member", "disabled"]


def test_cli_passwd_disable_enable_role_remove(
    settings: Settings, client: FlaskClient, connect: Any, users: dict[str, Any]
) -> None:
    pair = login(client, "bob")
    socket = connect(pair["access_token"])
    done = user(settings, "passwd", "bob", password=NEW_PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("changed the password of bob")
    refused(client, pair, "token revoked")  # the web sees the other process's change at once
    cut(socket, "the socket of bob, whose password was changed on the command line, to be cut")
    pair = login(client, "bob", NEW_PASSWORD)

    done = user(settings, "disable", "bob")
    assert done.returncode == 0 and done.stdout.startswith("disabled bob"), done.stderr
    refused(client, pair, "user disabled")
    assert client.post("/api/v1/auth/login", json={"username": "bob", "password": NEW_PASSWORD}).status_code == 401
    done = user(settings, "enable", "bob")
    assert done.returncode == 0 and done.stdout.strip() == "enabled bob", done.stderr
    pair = login(client, "bob", NEW_PASSWORD)

    done = user(settings, "role", "bob", "operator")
    assert done.returncode == 0 and "bob of team alpha is now operator" in done.stdout, done.stderr
    refused(client, pair, "token revoked")
    pair = login(client, "bob", NEW_PASSWORD)
    assert me(client, pair["access_token"]).get_json()["role"] == "operator"

    done = user(settings, "remove", "bob")
    assert done.returncode == 0 and done.stdout.startswith("removed operator bob of team alpha"), done.stderr
    refused(client, pair, "user no longer exists")
    assert "bob" not in user(settings, "list").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["passwd", "nobody"], "no user 'nobody'"),
        (["disable", "nobody"], "no user 'nobody'"),
        (["enable", "nobody"], "no user 'nobody'"),
        (["remove", "nobody"], "no user 'nobody'"),
        (["role", "nobody", "admin"], "no user 'nobody'"),
        (["role", "bob", "root"], "role 'root' must be one of admin, member, operator"),
        (["add", "dave", "--team", "alpha", "--role", "root"], "role 'root' must be one of"),
    ],
)
def test_cli_refusals(settings: Settings, users: dict[str, Any], args: list[str], message: str) -> None:
    done = user(settings, *args, password=PASSWORD + "\n")
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_cli_passwd_refuses_a_short_password(settings: Settings, client: FlaskClient, users: dict[str, Any]) -> None:
    done = user(settings, "passwd", "bob", password="short\n")
    assert done.returncode == 2 and "at least 8 characters" in done.stderr
    assert login(client, "bob")["access_token"]  # unchanged


@pytest.mark.parametrize("action", ["list", "passwd", "disable", "enable", "remove", "role"])
def test_cli_help(settings: Settings, action: str) -> None:
    done = user(settings, action, "--help")
    assert done.returncode == 0 and done.stdout.startswith(f"usage: teamocr user {action}"), done.stderr
    assert not settings.data_dir.exists()


# -- the API ---------------------------------------------------------------------------------------


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [u["username"] for u in response.get_json()["users"]]


def test_api_lists_the_callers_team_only(client: FlaskClient, auth: dict[str, dict[str, str]], olga: User) -> None:
    assert names(client.get(USERS, headers=auth["alice"])) == ["alice", "bob"]
    listed = client.get(USERS, headers=bearer(login(client, "olga")["access_token"]))
    assert names(listed) == ["alice", "bob", "carol", "olga"]
    assert listed.get_json()["users"][3] == {"username": "olga", "team": "gamma", "role": "operator", "disabled": False}
    for member in ("bob", "carol"):
        response = client.get(USERS, headers=auth[member])
        assert response.status_code == 403 and response.get_json()["error"] == "admins only"


def test_api_team_admin_creates_in_their_team_only(
    client: FlaskClient, auth: dict[str, dict[str, str]], svc: Services
) -> None:
    made = client.post(USERS, json={"username": "dave", "password": PASSWORD}, headers=auth["alice"])
    assert made.status_code == 201
    assert made.get_json() == {"username": "dave", "team": "alpha", "role": "member", "disabled": False}
    assert login(client, "dave")["access_token"]
    admin = client.post(USERS, json={"username": "erin", "password": PASSWORD, "role": "admin"}, headers=auth["alice"])
    assert admin.status_code == 201 and admin.get_json()["role"] == "admin"
    for body, status, error in [
        ({"username": "x1", "password": PASSWORD, "team": "beta"}, 403, "own team only"),
        ({"username": "x2", "password": PASSWORD, "role": "operator"}, 403, "only an operator can grant"),
        ({"username": "x3", "password": PASSWORD, "role": "root"}, 400, "role must be one of"),
        ({"username": "x4", "password": "short"}, 400, "at least 8 characters"),
        ({"username": "bad name", "password": PASSWORD}, 400, "user name 'bad name'"),
        ({"username": "carol", "password": PASSWORD}, 409, "user 'carol' already exists"),
        ({"username": "x5"}, 400, "username and password"),
    ]:
        response = client.post(USERS, json=body, headers=auth["alice"])
        assert response.status_code == status and error in response.get_json()["error"], (body, response.get_json())
    assert {u.username for u in svc.accounts.users()} == {"alice", "bob", "carol", "dave", "erin"}
    assert client.post(USERS, json={"username": "x6", "password": PASSWORD}, headers=auth["bob"]).status_code == 403


def test_api_another_teams_user_answers_like_an_unknown_one(
    client: FlaskClient, auth: dict[str, dict[str, str]], svc: Services
) -> None:
    for method, body in (("patch", {"disabled": True}), ("patch", {"password": NEW_PASSWORD}), ("delete", None)):
        answers = []
        for name in ("carol", "nobody"):
            response = getattr(client, method)(f"{USERS}/{name}", json=body, headers=auth["alice"])
            answers.append((response.status_code, response.get_json()["error"].replace(name, "NAME")))
        assert answers[0] == answers[1] == (404, "no user 'NAME'"), (method, answers)
    assert svc.accounts.get("carol") == User("carol", "beta", "member")
    assert svc.accounts.verify("carol", PASSWORD) is not None


def test_api_team_admin_disables_and_resets_a_member(
    client: FlaskClient, connect: Any, auth: dict[str, dict[str, str]], users: dict[str, Any]
) -> None:
    pair = login(client, "bob")
    socket = connect(pair["access_token"])
    done = client.patch(f"{USERS}/bob", json={"disabled": True}, headers=auth["alice"])
    assert done.status_code == 200 and done.get_json()["disabled"] is True
    refused(client, pair, "user disabled")
    cut(socket, "the socket of bob, disabled by his admin, to be cut")
    assert socket.errors == [{"error": "user disabled"}]
    done = client.patch(f"{USERS}/bob", json={"disabled": False, "password": NEW_PASSWORD}, headers=auth["alice"])
    assert done.status_code == 200 and done.get_json() == {
        "username": "bob",
        "team": "alpha",
        "role": "member",
        "disabled": False,
    }
    assert login(client, "bob", NEW_PASSWORD)["access_token"]
    gone = client.delete(f"{USERS}/bob", headers=auth["alice"])
    assert gone.status_code == 204 and gone.data == b""
    assert client.patch(f"{USERS}/bob", json={"disabled": True}, headers=auth["alice"]).status_code == 404


def test_api_refusals(client: FlaskClient, auth: dict[str, dict[str, str]], svc: Services, olga: User) -> None:
    svc.accounts.add_user("otto", PASSWORD, "alpha", role="operator")  # an operator in alice's team
    for method, name, body, status, error in [
        ("patch", "bob", {"role": "operator"}, 403, "only an operator can grant"),
        ("patch", "otto", {"disabled": True}, 403, "only an operator can change an operator"),
        ("patch", "otto", {"password": NEW_PASSWORD}, 403, "only an operator can change an operator"),
        ("delete", "otto", None, 403, "only an operator can remove an operator"),
        ("patch", "alice", {"disabled": True}, 403, "your own account"),
        ("patch", "alice", {"role": "member"}, 403, "your own role"),
        ("delete", "alice", None, 403, "your own account"),
        ("patch", "bob", {}, 400, "expected one or more of role, disabled, password"),
        ("patch", "bob", {"disabled": True, "team": "beta"}, 400, "and nothing else"),
        ("patch", "bob", {"disabled": "yes"}, 400, "disabled must be true or false"),
        ("patch", "bob", {"password": 12345678}, 400, "password must be a string"),
        ("patch", "bob", {"password": "short"}, 400, "at least 8 characters"),
        ("patch", "bob", {"role": "root"}, 400, "role must be one of"),
        ("patch", "bad name", {"disabled": True}, 404, "no user 'bad name'"),
    ]:
        response = getattr(client, method)(f"{USERS}/{name}", json=body, headers=auth["alice"])
        assert response.status_code == status and error in response.get_json()["error"], (method, name, body)
    assert svc.accounts.get("bob") == User("bob", "alpha", "member")
    assert svc.accounts.get("otto") == User("otto", "alpha", "operator")
    for method in ("patch", "delete"):
        member = getattr(client, method)(f"{USERS}/bob", json={"disabled": True}, headers=auth["carol"])
        assert member.status_code == 403 and member.get_json()["error"] == "admins only"


def test_api_operator_manages_every_team(
    client: FlaskClient, connect: Any, auth: dict[str, dict[str, str]], svc: Services, olga: User
) -> None:
    operator = bearer(login(client, "olga")["access_token"])
    carol = login(client, "carol")
    socket = connect(carol["access_token"])
    promoted = client.patch(f"{USERS}/carol", json={"role": "operator"}, headers=operator)
    assert promoted.status_code == 200 and promoted.get_json()["role"] == "operator"
    refused(client, carol, "token revoked")
    cut(socket, "the socket of carol, whose role changed, to be cut")
    made = client.post(
        USERS, json={"username": "pat", "password": PASSWORD, "team": "delta", "role": "admin"}, headers=operator
    )
    assert made.status_code == 201 and made.get_json()["team"] == "delta"
    assert client.patch(f"{USERS}/alice", json={"disabled": True}, headers=operator).status_code == 200
    assert client.get(ME, headers=auth["alice"]).status_code == 401
    assert client.delete(f"{USERS}/pat", headers=operator).status_code == 204
    assert svc.accounts.get("pat") is None and svc.accounts.get("alice").disabled  # type: ignore[union-attr]


def test_api_own_password_change_signs_the_caller_out(client: FlaskClient, users: dict[str, Any]) -> None:
    pair = login(client, "alice")
    done = client.patch(f"{USERS}/alice", json={"password": NEW_PASSWORD}, headers=bearer(pair["access_token"]))
    assert done.status_code == 200
    refused(client, pair, "token revoked")
    assert login(client, "alice", NEW_PASSWORD)["access_token"]
