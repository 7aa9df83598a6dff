"""Announcing result changes: one path, Socket.IO's write-only external emitter over Redis.

The web process (the team web) relays these to browsers; any other process can subscribe to the
same Redis channel and read the JSON messages. Each change is announced exactly once, by the
recorder, after it is stored. The latest items are also cached in Redis for the dashboard.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol, cast

import redis

from daemon.results.teams import TeamMap

log = logging.getLogger(__name__)

SOCKETIO_CHANNEL = "teamocr-socketio"
EVENT = "result"
LATEST = "teamocr:latest"  # sorted set: id scored by created_at
LATEST_ITEMS = "teamocr:latest:items"  # hash: id -> item JSON


class EventSink(Protocol):
    def publish(self, item: dict[str, Any]) -> None: ...
    def wait_for_listeners(self, stop: Any, timeout: float) -> int: ...


class SocketIOEvents:
    """Emits ``result`` events to the room of the result's team through the Redis message queue.

    A failed publish raises (python-socketio's emitter would log it and drop the event), so the
    recorder keeps the record unacknowledged and announces it again. ``receivers`` is how many
    servers (web processes) got the last event; after a Redis outage :meth:`wait_for_listeners`
    lets them subscribe again before anything is announced, since Redis keeps no messages for a
    subscriber that is still reconnecting.
    """

    def __init__(self, redis_url: str, teams: TeamMap, channel: str = SOCKETIO_CHANNEL) -> None:
        # The manager Flask-SocketIO's SocketIO(message_queue=...) builds for redis:// URLs, made
        # directly so the embedded server's unix:// URL works too. Write-only: no app, no server.
        self._manager = _raising_manager(redis_url, channel)
        self.channel = channel
        self.teams = teams

    @property
    def receivers(self) -> int:
        return int(self._manager.receivers)

    def publish(self, item: dict[str, Any]) -> None:
        self._manager.emit(EVENT, item, namespace="/", room=self.teams.room_of(item.get("channel") or ""))

    def wait_for_listeners(self, stop: Any, timeout: float) -> int:
        """Wait until as many servers listen as received the last event (at most ``timeout`` s)."""
        expected = self.receivers
        if expected == 0:
            return 0
        import time

        client = redis.Redis.from_url(self._manager.redis_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            deadline = time.monotonic() + timeout
            while True:
                listening = int(dict(client.pubsub_numsub(self.channel)).get(self.channel.encode(), 0))
                if listening >= expected:
                    log.info(
                        "events: %d of %d listener(s) on %s back after the outage; announcing again",
                        listening,
                        expected,
                        self.channel,
                    )
                    return listening
                if time.monotonic() >= deadline or stop.is_set():
                    log.warning(
                        "events: %d of %d listener(s) on %s back after %.0fs; announcing anyway "
                        "(a web process still reconnecting misses these events)",
                        listening,
                        expected,
                        self.channel,
                        timeout,
                    )
                    return listening
                stop.wait(0.1)
        finally:
            client.close()


def _raising_manager(redis_url: str, channel: str) -> Any:
    """python-socketio's write-only Redis manager, except that a failed publish raises."""
    import socketio

    class RaisingRedisManager(socketio.RedisManager):
        receivers = 0
        connected: bool  # set by RedisManager

        def _publish(self, data: Any) -> None:
            try:
                if not self.connected:
                    self._redis_connect()
                self.receivers = int(self.redis.publish(self.channel, self.json.dumps(data)))
            except Exception:
                self.connected = False  # connect again next time
                raise

    return RaisingRedisManager(redis_url, channel=channel, write_only=True)


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
        ids = cast(list[str], self.client.zrevrange(LATEST, 0, limit - 1))  # our clients decode replies
        raw = self.client.hmget(LATEST_ITEMS, ids) if ids else []
        return [json.loads(r) for r in raw if r]
