"""Teams and users, in their own SQLite file in the data folder.

Passwords are hashed with werkzeug's scrypt-based ``generate_password_hash``; no user, team or
password exists until an admin creates one (`teamocr user add`).
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.security import check_password_hash, generate_password_hash

from web.offload import Offload

NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # always fullmatch: "$" would let "name\n" through
ROLES = ("admin", "member")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS teams (name TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    team TEXT NOT NULL REFERENCES teams(name),
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


class AccountError(ValueError):
    """A refused account operation; the message says why."""


@dataclass(frozen=True)
class User:
    username: str
    team: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class AccountStore:
    """Users and teams; safe to share between threads."""

    def __init__(self, path: Path, run_blocking: Callable[..., Any] | None = None) -> None:
        """``run_blocking(fn, *args)`` runs the password hash (a tenth of a second of CPU); a server
        with one event loop passes its thread pool, so that a login does not stall every other
        request (scrypt leaves the interpreter lock while it works)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._run_blocking = run_blocking or Offload().run
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def add_user(self, username: str, password: str, team: str, admin: bool = False) -> User:
        """Create a user (and the team if new). Refuses bad names, short passwords, duplicates."""
        if not NAME.fullmatch(username):
            raise AccountError(f"user name {username!r} must be 1-64 letters, digits or _ . @ -")
        if not NAME.fullmatch(team):
            raise AccountError(f"team name {team!r} must be 1-64 letters, digits or _ . @ -")
        if len(password) < 8:
            raise AccountError("password must have at least 8 characters")
        role = "admin" if admin else "member"
        now = time.time()
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("INSERT OR IGNORE INTO teams (name, created_at) VALUES (?, ?)", (team, now))
                self._conn.execute(
                    "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                    (username, team, role, generate_password_hash(password), now),
                )
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._conn.execute("ROLLBACK")
                raise AccountError(f"user {username!r} already exists") from None
        return User(username, team, role)

    def verify(self, username: str, password: str) -> User | None:
        """The user when the password matches, else None (same work either way)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT username, team, role, password_hash FROM users WHERE username = ?", (username,)
            ).fetchone()
        if row is None:
            self._run_blocking(check_password_hash, _dummy_hash(), password)  # same timing for unknown users
            return None
        matches = self._run_blocking(check_password_hash, row[3], password)
        return User(row[0], row[1], row[2]) if matches else None

    def get(self, username: str) -> User | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT username, team, role FROM users WHERE username = ?", (username,)
            ).fetchone()
        return User(*row) if row else None

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
