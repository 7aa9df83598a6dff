"""The objects the web's views share, built once per app and passed in (never module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app

from config.settings import Settings
from daemon.intake.dedupe import Intake
from daemon.results.store import ResultStore
from daemon.results.teams import TeamMap
from daemon.webhooks.registry import WebhookRegistry
from web.accounts import AccountStore
from web.api_keys import ApiKeyStore
from web.offload import Offload
from web.render_slots import RenderSlots
from web.tokens import TokenService

EXTENSION = "teamocr"


@dataclass
class Services:
    """Everything a request handler may need."""

    settings: Settings
    redis: redis.Redis
    redis_url: str
    store: ResultStore
    accounts: AccountStore
    tokens: TokenService
    teams: TeamMap
    intake: Intake
    api_keys: ApiKeyStore
    webhooks: WebhookRegistry
    offload: Offload = field(default_factory=Offload)  # where long calls run (web.offload)
    # The store the offloaded reads use (search, export pages, counts): with gevent a store of its
    # own, its own connection and lock, so the loop never waits on a lock a pool thread holds (gevent
    # wakes such a waiter late: p99 went from 21 ms to 3 s under load). Else None: ``store`` itself.
    pool_store: ResultStore | None = None
    renders: RenderSlots = field(default_factory=lambda: RenderSlots(0))  # web.render_slots: files made at once
    socketio: Any = None  # flask_socketio.SocketIO, set by create_app

    @property
    def reads(self) -> ResultStore:
        """The store for calls run through ``offload`` (never used on the loop itself)."""
        return self.pool_store if self.pool_store is not None else self.store


def services(app: Flask | None = None) -> Services:
    """The services of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION]
