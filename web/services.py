"""The objects the web's views share, built once per app and passed in (never module globals)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, current_app

from config.settings import Settings
from daemon.intake import Intake
from daemon.store import ResultStore
from daemon.teams import TeamMap
from web.accounts import AccountStore
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
    socketio: Any = None  # flask_socketio.SocketIO, set by create_app
    # run_blocking(fn, *args): CPU-heavy work that leaves the interpreter lock (image codecs,
    # password hashes). Under gevent it runs in the hub's threads so the loop serves others
    # meanwhile; fn must not touch Redis, the store or the request (those belong to the loop).
    run_blocking: Callable[..., Any] = lambda fn, *args: fn(*args)
    # pause(): let other requests run (between the pages of a long read); nothing under threads.
    pause: Callable[[], None] = lambda: None


def services(app: Flask | None = None) -> Services:
    """The services of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION]
