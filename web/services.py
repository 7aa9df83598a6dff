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
from web.accounts import AccountStore
from web.offload import Offload
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
    offload: Offload = field(default_factory=Offload)  # where long calls run (web.offload)
    socketio: Any = None  # flask_socketio.SocketIO, set by create_app


def services(app: Flask | None = None) -> Services:
    """The services of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION]
