"""Teams and users, in their own SQLite file in the data folder.

Passwords are hashed with werkzeug's scrypt-based ``generate_password_hash``; no user, team or
password exists until an admin creates one (`teamocr user add`).

Roles: a ``member`` reads and corrects their team's results; an ``admin`` also manages their own
team (its accounts, fine-tuning); an ``operator`` is an admin who also switches the model every
worker uses and manages every team's accounts.

Each user row holds a random ``stamp`` that every token issued to the user carries: changing the
password, the role or the state (disabled, removed) draws a new stamp, so every token issued
before is refused at once (web.tokens.check_user). Kept here rather than in Redis, it also works
from ``teamocr user`` while the service is down, and survives a lost Redis.
"""

from __future__ import annotations

import functools
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.security import check_password_hash, generate_password_hash

from daemon.results.schema import private_files
from web.offload import Offload

NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # always fullmatch: "$" would let "name\n" through
ROLES = ("admin", "member", "operator")
MIN_PASSWORD = 8

_USERS = """
CREATE TABLE IF NOT EXISTS {name} (
    username TEXT PRIMARY KEY,
    team TEXT NOT NULL REFERENCES teams(name),
    role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'operator')),
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    stamp TEXT NOT NULL DEFAULT '',
    revoked_at REAL NOT NULL DEFAULT 0
);
"""
_SCHEMA = "CREATE TABLE IF NOT EXISTS teams (name TEXT PRIMARY KEY, created_at REAL NOT NULL);" + _USERS.format(
    name="users"
)
_COLUMNS = "username, team, role, disabled, stamp, revoked_at, created_at"


class AccountError(ValueError):
    """A refused account operation; the message says why."""


class DuplicateUser(AccountError):
    """A user of that name exists already."""


class UnknownUser(AccountError):
    """The named user does not exist."""

    def __init__(self, username: str) -> None:
        super().__init__(f"no user {username!r}")
        self.username = username


@dataclass(frozen=True)
class User:
    """An account as stored. Two users compare by name, team, role and state; the token fields
    (``stamp``, ``revoked_at``, ``created_at``) are the account's revocation state."""

    username: str
    team: str
    role: str
    disabled: bool = False
    stamp: str = field(default="", compare=False, repr=False)
    revoked_at: float = field(default=0.0, compare=False, repr=False)  # last revocation (0 = never)
    created_at: float = field(default=0.0, compare=False, repr=False)

    @property
    def is_admin(self) -> bool:
        """Manages their own team (operators too)."""
        return self.role in ("admin", "operator")

    @property
    def is_operator(self) -> bool:
        """Switches the model every worker uses; manages every team's accounts."""
        return self.role == "operator"

    @property
    def state(self) -> str:
        return "disabled" if self.disabled else "active"


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role {role!r} must be one of {', '.join(ROLES)}")
    return role


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")


def _new_stamp() -> str:
    return secrets.token_hex(16)


def _user(row: tuple[Any, ...]) -> User:
    username, team, role, disabled, stamp, revoked_at, created_at = row
    return User(username, team, role, bool(disabled), stamp, float(revoked_at), float(created_at))


class AccountStore:
    """Users and teams; safe to share between threads."""

    def __init__(self, path: Path, run_blocking: Callable[..., Any] | None = None) -> None:
        """``run_blocking(fn, *args)`` runs the password hash (a tenth of a second of CPU); a server
        with one event loop passes its thread pool, so that a login does not stall every other
        request (scrypt leaves the interpreter lock while it works)."""
        private_files(path)  # 0600 (its WAL files follow), in a 0700 folder when made here
        self.path = path
        self._run_blocking = run_blocking or Offload().run
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Rebuild a users table of before roles could be "operator" and accounts disabled (SQLite
        cannot change a CHECK constraint in place); every migrated user gets a fresh stamp."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                columns = {row[1] for row in self._conn.execute("PRAGMA table_info(users)")}
                if "stamp" not in columns:
                    self._conn.execute("DROP TABLE IF EXISTS users_v2")
                    self._conn.execute(_USERS.format(name="users_v2"))
                    self._conn.execute(
                        "INSERT INTO users_v2 (username, team, role, password_hash, created_at, stamp) "
                        "SELECT username, team, role, password_hash, created_at, lower(hex(randomblob(16))) FROM users"
                    )
                    self._conn.execute("DROP TABLE users")
                    self._conn.execute("ALTER TABLE users_v2 RENAME TO users")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def add_user(self, username: str, password: str, team: str, admin: bool = False, role: str | None = None) -> User:
        """Create a user (and the team if new). ``role`` wins over ``admin``; the default is a
        member. Refuses bad names, short passwords, unknown roles, duplicates."""
        if not NAME.fullmatch(username):
            raise AccountError(f"user name {username!r} must be 1-64 letters, digits or _ . @ -")
        if not NAME.fullmatch(team):
            raise AccountError(f"team name {team!r} must be 1-64 letters, digits or _ . @ -")
        _check_password(password)
        role = check_role(role) if role is not None else ("admin" if admin else "member")
        password_hash = generate_password_hash(password)
        user = User(username, team, role, False, _new_stamp(), 0.0, time.time())
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(
                    "INSERT OR IGNORE INTO teams (name, created_at) VALUES (?, ?)", (team, user.created_at)
                )
                self._conn.execute(
                    "INSERT INTO users (username, team, role, password_hash, created_at, stamp)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (username, team, role, password_hash, user.created_at, user.stamp),
                )
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._conn.execute("ROLLBACK")
                raise DuplicateUser(f"user {username!r} already exists") from None
        return user

    def verify(self, username: str, password: str) -> User | None:
        """The user when the password matches and the account is enabled, else None (same work
        either way)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = ?", (username,)
            ).fetchone()
        if row is None:
            self._run_blocking(check_password_hash, _dummy_hash(), password)  # same timing for unknown users
            return None
        matches = self._run_blocking(check_password_hash, row[-1], password)
        user = _user(row[:-1])
        return user if matches and not user.disabled else None

    def get(self, username: str) -> User | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()
        return _user(row) if row else None

    def users(self, team: str | None = None) -> list[User]:
        """Every user (of ``team`` when given), by team then name."""
        query = f"SELECT {_COLUMNS} FROM users" + (" WHERE team = ?" if team is not None else "")
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY team, username", (() if team is None else (team,))).fetchall()
        return [_user(row) for row in rows]

    def set_password(self, username: str, password: str) -> User:
        """Change the password; every token issued to the user before is revoked."""
        _check_password(password)
        password_hash = self._run_blocking(generate_password_hash, password)
        return self._update(username, "password_hash = ?", (password_hash,))

    def set_disabled(self, username: str, disabled: bool) -> User:
        """Disable (no login, every token revoked) or enable the account again."""
        if disabled:
            return self._update(username, "disabled = 1", ())
        return self._update(username, "disabled = 0", (), revoke=False)

    def set_role(self, username: str, role: str) -> User:
        """Give the user ``role``; their tokens (which name the old role) are revoked."""
        return self._update(username, "role = ?", (check_role(role),))

    def remove(self, username: str) -> User:
        """Delete the account (its team stays); its tokens are refused from now on."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()
            if row is None or self._conn.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount != 1:
                raise UnknownUser(username)
        return _user(row)

    def _update(self, username: str, assignment: str, values: tuple[Any, ...], revoke: bool = True) -> User:
        if revoke:
            assignment += ", stamp = ?, revoked_at = ?"
            values = (*values, _new_stamp(), time.time())
        with self._lock:
            row = self._conn.execute(
                f"UPDATE users SET {assignment} WHERE username = ? RETURNING {_COLUMNS}", (*values, username)
            ).fetchone()
        if row is None:
            raise UnknownUser(username)
        return _user(row)

    def first_team(self) -> str | None:
        """The team created first (the default team when none is configured)."""
        with self._lock:
            row = self._conn.execute("SELECT name FROM teams ORDER BY created_at, rowid LIMIT 1").fetchone()
        return row[0] if row else None

    def teams(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT name FROM teams ORDER BY created_at, rowid")]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash("not a real password, only for equal timing")
