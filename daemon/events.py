"""Announcing result changes: one path, Socket.IO's write-only external emitter over Redis.

The web process (the team web) relays these to browsers; any other process can subscribe to the
same Redis channel and read the JSON messages. Each change is announced exactly once, by the
recorder, after it is stored. The latest items are also cached in Redis for the dashboard.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Protocol

import redis

from daemon.teams import TeamMap

log = logging.getLogger(__name__)

SOCKETIO_CHANNEL = "teamocr-socketio"
EVENT = "result"
LATEST = "teamocr:latest"          # sorted set: id scored by created_at
LATEST_ITEMS = "teamocr:latest:items"  # hash: id -> item JSON


class EventSink(Protocol):
    def publish(self, item: dict[str, Any]) -> None: ...


class SocketIOEvents:
    """Emits ``result`` events to the room of the result's team through the Redis message queue."""

    def __init__(self, redis_url: str, teams: TeamMap, channel: str = SOCKETIO_CHANNEL) -> None:
        # The manager Flask-SocketIO's SocketIO(message_queue=...) builds for redis:// URLs, made
        # directly so the embedded server's unix:// URL works too. Write-only: no app, no server.
        import socketio

        self._manager = socketio.RedisManager(redis_url, channel=channel, write_only=True)
        self.teams = teams

    def publish(self, item: dict[str, Any]) -> None:
        self._manager.emit(EVENT, item, namespace="/", room=self.teams.room_of(item.get("channel") or ""))


class LatestCache:
    """The newest ``size`` items, for a dashboard's first paint."""

    def __init__(self, client: redis.Redis, size: int) -> None:
        self.client = client
        self.size = size

    def put(self, item: dict[str, Any]) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(LATEST_ITEMS, item["id"], json.dumps(item, ensure_ascii=False))
        pipe.zadd(LATEST, {item["id"]: float(item.get("created_at") or 0)})
        pipe.zrange(LATEST, 0, -(self.size + 1))
        old = pipe.execute()[-1]
        if old:
            self.client.zrem(LATEST, *old)
            self.client.hdel(LATEST_ITEMS, *old)

    def items(self, limit: int = 50) -> list[dict[str, Any]]:
        ids = self.client.zrevrange(LATEST, 0, limit - 1)
        raw = self.client.hmget(LATEST_ITEMS, ids) if ids else []
        return [json.loads(r) for r in raw if r]
