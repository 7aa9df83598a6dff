"""The durable webhook queue in Redis: events in, one delivery per subscribed webhook out.

``teamocr:webhooks:events``      stream (group ``webhooks``): each event once, added by whoever
                                 announces it: the recorder (a result done or failed, in the same
                                 transaction that acknowledges its record) and the web (a correction)
``teamocr:webhooks:deliveries``  hash: delivery id -> :class:`Delivery` JSON (the event, attempts)
``teamocr:webhooks:due``         sorted set: delivery id scored by when its next attempt is due; a
                                 delivery being sent is pushed :data:`LEASE_SECONDS` ahead, so one
                                 whose sender died is sent again
``teamocr:webhooks:seen``        sorted set: event ids fanned out in the last :data:`SEEN_SECONDS`,
                                 so an event added twice (a record replayed after a crash) makes its
                                 deliveries once

Fanning an event out (its deliveries made, the event acknowledged) is one Lua script, so a crash
never leaves half of it. Delivery is at least once: a receiver dedupes on ``X-Teamocr-Delivery``
(the delivery id, the same on every attempt).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypedDict, cast

import redis
from redis.client import Pipeline

from daemon.queue.streams import WEBHOOK_EVENTS as EVENTS_STREAM
from daemon.queue.streams import WEBHOOKS_GROUP as GROUP

PREFIX = "teamocr:webhooks"
DELIVERIES = f"{PREFIX}:deliveries"
DUE = f"{PREFIX}:due"
SEEN = f"{PREFIX}:seen"
LEASE_SECONDS = 60.0
SEEN_SECONDS = 7 * 86400.0
EVENT_OF_STATUS = {"done": "result.done", "failed": "result.failed"}

EventType = Literal["result.done", "result.failed", "result.corrected"]


class WebhookEvent(TypedDict):
    """One event on the events stream: ``type``, a stable ``id`` (the same when added twice), when
    it happened and the result item (as members see it, with ``status``)."""

    type: EventType
    id: str
    at: float
    item: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """One event for one webhook; its id is the ``X-Teamocr-Delivery`` header."""

    id: str
    webhook_id: str
    event: WebhookEvent
    attempts: int = 0  # attempts made so far

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Delivery:
        data = json.loads(text)
        return cls(str(data["id"]), str(data["webhook_id"]), cast(WebhookEvent, data["event"]), int(data["attempts"]))


def delivery_id(event_id: str, webhook_id: str) -> str:
    return f"{event_id}@{webhook_id}"


class Outbox:
    """Adds events to the stream; ``clock`` gives their time."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def result_changed(self, pipe: redis.Redis | Pipeline, item: dict[str, Any] | None) -> bool:
        """Add the event of a stored change when it is one webhooks get (the result is now done or
        failed); its id is the result's, the event's and the outcome's time, so adding the same
        outcome again makes nothing new while a retry's or a re-read's new outcome is an event."""
        kind = EVENT_OF_STATUS.get(str((item or {}).get("status")))
        if item is None or kind is None:
            return False
        event_id = f"{kind}:{item['id']}:{item.get('finished_at') or ''}"
        self._add(pipe, {"type": cast(EventType, kind), "id": event_id, "at": self.clock(), "item": item})
        return True

    def corrected(self, pipe: redis.Redis | Pipeline, item: dict[str, Any]) -> None:
        """Add the event of a correction (each correction is an event of its own)."""
        event_id = f"result.corrected:{item['id']}:{uuid.uuid4().hex}"
        self._add(pipe, {"type": "result.corrected", "id": event_id, "at": self.clock(), "item": item})

    @staticmethod
    def _add(pipe: redis.Redis | Pipeline, event: WebhookEvent) -> None:
        pipe.xadd(EVENTS_STREAM, {"event": json.dumps(event, ensure_ascii=False)})


# KEYS: seen, deliveries, due, events; ARGV: event id, now, forget-before, group, entry id, then
# (delivery id, delivery JSON) pairs. An event no webhook gets is only acknowledged (nothing kept).
_FAN_OUT = """
if #ARGV >= 6 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3]) end
if #ARGV >= 6 and redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1]) == 1 then
  for i = 6, #ARGV, 2 do
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', KEYS[3], ARGV[2], ARGV[i])
  end
end
redis.call('XACK', KEYS[4], ARGV[4], ARGV[5])
redis.call('XDEL', KEYS[4], ARGV[5])
return 1
"""

# KEYS: due; ARGV: now, lease until, count. The due ids, each pushed to the lease's end.
_TAKE_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""


class DeliveryQueue:
    """The deliverer's side of the queue."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._fan_out = client.register_script(_FAN_OUT)
        self._take_due = client.register_script(_TAKE_DUE)

    def fan_out(self, entry_id: str, event: WebhookEvent, deliveries: list[Delivery], now: float) -> None:
        """Queue ``deliveries`` of ``event`` (unless its id was fanned out already) and acknowledge
        its stream entry, all at once."""
        args: list[Any] = [event["id"], now, now - SEEN_SECONDS, GROUP, entry_id]
        for delivery in deliveries:
            args += [delivery.id, delivery.to_json()]
        self._fan_out(keys=[SEEN, DELIVERIES, DUE, EVENTS_STREAM], args=args)

    def drop_entry(self, entry_id: str) -> None:
        """Acknowledge and delete a stream entry that holds no event (malformed)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(EVENTS_STREAM, GROUP, entry_id)
        pipe.xdel(EVENTS_STREAM, entry_id)
        pipe.execute()

    def take_due(self, now: float, count: int) -> list[Delivery]:
        """Up to ``count`` deliveries due by ``now``, leased for :data:`LEASE_SECONDS`."""
        ids = cast(list[Any], self._take_due(keys=[DUE], args=[now, now + LEASE_SECONDS, count]))
        if not ids:
            return []
        raw = cast(list[Any], self.client.hmget(DELIVERIES, ids))
        found = [Delivery.from_json(text) for text in raw if text]
        gone = [i for i, text in zip(ids, raw, strict=True) if not text]
        if gone:
            self.client.zrem(DUE, *gone)
        return found

    def retry(self, delivery: Delivery, attempts: int, due: float) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(
            DELIVERIES, delivery.id, Delivery(delivery.id, delivery.webhook_id, delivery.event, attempts).to_json()
        )
        pipe.zadd(DUE, {delivery.id: due})
        pipe.execute()

    def finish(self, delivery: Delivery) -> None:
        """Remove a delivery made, given up or whose webhook is gone."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(DELIVERIES, delivery.id)
        pipe.zrem(DUE, delivery.id)
        pipe.execute()

    def pending(self) -> int:
        """Deliveries waiting (for their first attempt or a retry)."""
        return int(self.client.zcard(DUE))

    def next_due(self) -> float | None:
        first = cast(list[Any], self.client.zrange(DUE, 0, 0, withscores=True))
        return float(first[0][1]) if first else None
