"""API keys: long-lived secrets a member makes for a script, kept hashed beside the accounts.

A key reads ``tmk_<id>_<secret>``: the id finds its row, the secret (32 random bytes, URL-safe
base64) is checked against its SHA-256 (a key is random, not a password: no slow hash is needed),
in constant time. The key itself is shown once, when it is made; the store keeps its name, owner,
creation, optional expiry, last use (written at most once a minute) and revocation. A key acts as
its owner, as the owner's account is now (a disabled or removed account's keys are refused), on
what a member may call; account and model administration refuse keys (web.auth). A key carries
the account's stamp of when it was made: a password, role or state change, or the account removed
and made again, ends every key it had.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.results.schema import private_files

PREFIX = "tmk_"
_KEY = re.compile(r"tmk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
NAME_MAX = 64
LAST_USE_EVERY = 60.0  # seconds: a key's last use is written at most this often
MAX_KEYS_PER_USER = 50

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL DEFAULT 0,
    last_used_at REAL NOT NULL DEFAULT 0,
    revoked_at REAL NOT NULL DEFAULT 0,
    owner_stamp TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS api_keys_by_user ON api_keys (username);
"""
_COLUMNS = "id, username, name, created_at, expires_at, last_used_at, revoked_at, owner_stamp"


class ApiKeyError(ValueError):
    """A refused key operation, or a key that does not authenticate; the message says why."""


@dataclass(frozen=True)
class ApiKey:
    """A key as listed (never its secret)."""

    id: str
    username: str
    name: str
    created_at: float
    expires_at: float  # 0: never
    last_used_at: float  # 0: never used
    revoked_at: float  # 0: not revoked
    owner_stamp: str = field(default="", repr=False, compare=False)  # the owner's account stamp when made

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "user": self.username,
            "created_at": self.created_at,
            "expires_at": self.expires_at or None,
            "last_used_at": self.last_used_at or None,
            "revoked": bool(self.revoked_at),
        }


def looks_like_key(token: str) -> bool:
    """Whether a bearer token is an API key (else it is a JWT)."""
    return token.startswith(PREFIX)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: tuple[Any, ...]) -> ApiKey:
    key_id, username, name, created, expires, used, revoked, stamp = row
    return ApiKey(key_id, username, name, float(created), float(expires), float(used), float(revoked), stamp)


class ApiKeyStore:
    """The keys, in the accounts' SQLite file (a table of their own); safe to share between threads."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        private_files(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def create(
        self, username: str, name: str, expires_in_days: float | None = None, owner_stamp: str = ""
    ) -> tuple[ApiKey, str]:
        """A new key for ``username`` named ``name``: (its listing, the key itself, shown once).
        ``owner_stamp`` is the account's stamp (web.accounts): the key works only while the
        account keeps it (no password, role or state change, not removed and made again)."""
        name = name.strip()
        if not name or len(name) > NAME_MAX or any(ord(c) < 32 for c in name):
            raise ApiKeyError(f"a key's name must be 1-{NAME_MAX} printable characters")
        if expires_in_days is not None and not 0 < expires_in_days <= 3650:
            raise ApiKeyError("expires_in_days must be more than 0 and at most 3650")
        now = self.clock()
        expires = now + expires_in_days * 86400 if expires_in_days is not None else 0.0
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with self._lock:
            live = self._conn.execute(
                "SELECT COUNT(*) FROM api_keys WHERE username = ? AND revoked_at = 0", (username,)
            ).fetchone()[0]
            if live >= MAX_KEYS_PER_USER:
                raise ApiKeyError(f"{username} has {live} keys, the most one user may have; revoke one first")
            self._conn.execute(
                "INSERT INTO api_keys (id, username, name, secret_sha256, created_at, expires_at, owner_stamp)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key_id, username, name, _digest(secret), now, expires, owner_stamp),
            )
        return ApiKey(key_id, username, name, now, expires, 0.0, 0.0, owner_stamp), f"{PREFIX}{key_id}_{secret}"

    def authenticate(self, token: str) -> ApiKey:
        """The key ``token`` is, when it is live; ApiKeyError (saying why) otherwise."""
        match = _KEY.fullmatch(token)
        if match is None:
            raise ApiKeyError("malformed API key")
        key_id, secret = match.groups()
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS}, secret_sha256 FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        expected = row[-1] if row is not None else _digest("no such key")
        if not hmac.compare_digest(_digest(secret), expected) or row is None:
            raise ApiKeyError("unknown API key")
        key = _key(row[:-1])
        now = self.clock()
        if key.revoked_at:
            raise ApiKeyError("API key revoked")
        if key.expires_at and now >= key.expires_at:
            raise ApiKeyError("API key expired")
        if now - key.last_used_at >= LAST_USE_EVERY:
            with self._lock:
                self._conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key.id))
        return key

    def list(self, username: str | None = None, usernames: list[str] | None = None) -> list[ApiKey]:
        """Keys not revoked: of ``username``, or of any of ``usernames``, or all; newest first."""
        query = f"SELECT {_COLUMNS} FROM api_keys WHERE revoked_at = 0"
        args: tuple[Any, ...] = ()
        if username is not None:
            query, args = query + " AND username = ?", (username,)
        elif usernames is not None:
            query += f" AND username IN ({', '.join('?' * len(usernames))})"
            args = tuple(usernames)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY created_at DESC", args).fetchall()
        return [_key(row) for row in rows]

    def get(self, key_id: str) -> ApiKey | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return _key(row) if row is not None else None

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke the key (it is refused from now on); ApiKeyError for an unknown or revoked one."""
        with self._lock:
            row = self._conn.execute(
                f"UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0 RETURNING {_COLUMNS}",
                (self.clock(), key_id),
            ).fetchone()
        if row is None:
            raise ApiKeyError(f"no live API key {key_id!r}")
        return _key(row)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
