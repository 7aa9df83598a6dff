"""The webhook registry: each team's webhooks and the log of their deliveries, in one SQLite file.

``data_dir/webhooks.sqlite3`` (private, 0600) is apart from the results store: the web adds and
removes webhooks, the deliverer reads them and writes the log. A webhook's secret is kept to sign
its deliveries; it is shown once, when the webhook is made (:meth:`WebhookRegistry.add`), and never
listed again. The log keeps the latest :data:`LOG_SIZE` deliveries of each webhook.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.results.schema import private_files
from daemon.webhooks.errors import TooManyWebhooks

REGISTRY_NAME = "webhooks.sqlite3"
EVENTS = ("result.done", "result.failed", "result.corrected")
MAX_PER_TEAM = 20
LOG_SIZE = 50
STATES = ("queued", "retrying", "delivered", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_team ON webhooks (team);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    result_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    status_code INTEGER,
    last_error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    next_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_webhook ON deliveries (webhook_id, created_at);
"""


@dataclass(frozen=True)
class Webhook:
    """One registered URL of a team and the events it gets."""

    id: str
    team: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_by: str
    created_at: float

    def to_public(self) -> dict[str, Any]:
        """What admins are shown: everything but the secret."""
        return {
            "id": self.id,
            "team": self.team,
            "url": self.url,
            "events": list(self.events),
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class DeliveryLog:
    """One delivery as the log has it: its state, how many attempts, the last answer or error."""

    id: str
    webhook_id: str
    event: str
    result_id: str
    state: str  # queued | retrying | delivered | failed
    attempts: int
    status_code: int | None
    last_error: str
    created_at: float
    updated_at: float
    next_at: float | None  # when the next attempt is due (retrying)

    def to_public(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__ if key != "webhook_id"}


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


class WebhookRegistry:
    """Webhooks and delivery logs; safe to share between the threads of a process, and opened by
    each process that needs it (WAL: readers beside the one writer, a 10 s busy timeout)."""

    def __init__(self, path: Path, lock: Any = None) -> None:
        private_files(path)
        self.path = path
        self._lock = lock if lock is not None else threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> WebhookRegistry:
        return cls(Path(data_dir) / REGISTRY_NAME)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, tuple(params)))

    # -- webhooks ---------------------------------------------------------------------------

    def add(
        self, team: str, url: str, events: Iterable[str], created_by: str, clock: Callable[[], float] = time.time
    ) -> Webhook:
        """Register ``url`` for ``team``'s ``events`` (checked by the caller) with a new secret;
        :class:`TooManyWebhooks` past :data:`MAX_PER_TEAM`."""
        hook = Webhook(secrets.token_hex(8), team, url, tuple(events), new_secret(), created_by, clock())
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                (count,) = self._conn.execute("SELECT count(*) FROM webhooks WHERE team = ?", (team,)).fetchone()
                if count >= MAX_PER_TEAM:
                    raise TooManyWebhooks(team, MAX_PER_TEAM)
                self._conn.execute(
                    "INSERT INTO webhooks (id, team, url, events, secret, created_by, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (hook.id, team, url, ",".join(hook.events), hook.secret, created_by, hook.created_at),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return hook

    def get(self, webhook_id: str) -> Webhook | None:
        rows = self._rows(f"SELECT {_HOOK} FROM webhooks WHERE id = ?", (webhook_id,))
        return _webhook(rows[0]) if rows else None

    def of_team(self, team: str) -> list[Webhook]:
        return [
            _webhook(r) for r in self._rows(f"SELECT {_HOOK} FROM webhooks WHERE team = ? ORDER BY created_at", (team,))
        ]

    def subscribed(self, team: str, event: str) -> list[Webhook]:
        """The team's webhooks that get ``event``."""
        return [hook for hook in self.of_team(team) if event in hook.events]

    def remove(self, webhook_id: str) -> bool:
        """Remove a webhook and its log; False when there was none. Deliveries still queued for it
        are dropped by the deliverer when their turn comes."""
        with self._lock:
            return self._conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)).rowcount > 0

    # -- the delivery log -------------------------------------------------------------------

    def log_queued(self, delivery_id: str, webhook_id: str, event: str, result_id: str, at: float) -> None:
        """A delivery made for a webhook (a second call for the same id changes nothing)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO deliveries (id, webhook_id, event, result_id, state, created_at, updated_at, "
                "next_at) SELECT ?, ?, ?, ?, 'queued', ?, ?, ? WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?)",
                (delivery_id, webhook_id, event, result_id, at, at, at, webhook_id),
            )
            self._trim(webhook_id)

    def log_attempt(
        self,
        delivery_id: str,
        state: str,
        attempts: int,
        status_code: int | None,
        error: str,
        at: float,
        next_at: float | None,
    ) -> None:
        """The outcome of an attempt: ``state`` retrying (``next_at`` due), delivered or failed."""
        if state not in STATES:
            raise ValueError(f"delivery state must be one of {', '.join(STATES)}, got {state!r}")
        with self._lock:
            self._conn.execute(
                "UPDATE deliveries SET state = ?, attempts = ?, status_code = ?, last_error = ?, updated_at = ?, "
                "next_at = ? WHERE id = ?",
                (state, attempts, status_code, error[:500], at, next_at, delivery_id),
            )

    def deliveries(self, webhook_id: str, limit: int = LOG_SIZE) -> list[DeliveryLog]:
        """The webhook's latest deliveries, newest first."""
        rows = self._rows(
            f"SELECT {_LOG} FROM deliveries WHERE webhook_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (webhook_id, limit),
        )
        return [DeliveryLog(*row) for row in rows]

    def _trim(self, webhook_id: str) -> None:
        self._conn.execute(
            "DELETE FROM deliveries WHERE webhook_id = ? AND id NOT IN (SELECT id FROM deliveries "
            "WHERE webhook_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?)",
            (webhook_id, webhook_id, LOG_SIZE),
        )


_HOOK = "id, team, url, events, secret, created_by, created_at"
_LOG = "id, webhook_id, event, result_id, state, attempts, status_code, last_error, created_at, updated_at, next_at"


def _webhook(row: tuple[Any, ...]) -> Webhook:
    hook_id, team, url, events, secret, created_by, created_at = row
    return Webhook(hook_id, team, url, tuple(e for e in events.split(",") if e), secret, created_by, float(created_at))
