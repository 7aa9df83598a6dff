"""The deliverer: fans webhook events out to the subscribed webhooks and POSTs each delivery,
retrying with backoff. It runs as a thread of ``teamocr run``/``watch``, beside the recorder.

Each pass (:meth:`Deliverer.run_once`) reads new events (a team's webhooks are looked up when its
event is fanned out) and sends the deliveries that are due, a few at once. A delivery answered
2xx is done; any other answer, a refused or timed-out connection, or an address refused
(:mod:`daemon.webhooks.targets`) is retried after the next of ``retry_delays`` and failed for good
after the last. Every attempt is written to the webhook's log (:mod:`daemon.webhooks.registry`).
The queue is in Redis (:mod:`daemon.webhooks.queue`), so a restart loses no delivery; one being
sent when the process died is sent again when its lease ends (at least once).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import redis

from daemon.queue.redisconn import wait_out
from daemon.queue.streams import parse_entries, take
from daemon.webhooks import sender, signing
from daemon.webhooks.errors import RefusedUrl
from daemon.webhooks.queue import EVENTS_STREAM, GROUP, Delivery, DeliveryQueue, WebhookEvent, delivery_id
from daemon.webhooks.registry import WebhookRegistry
from daemon.webhooks.targets import Resolver, resolve

log = logging.getLogger(__name__)

BATCH = 16  # deliveries taken per pass
SENDERS = 4  # POSTs in flight at once (a receiver that never answers holds one for the timeout)
CLAIM_IDLE_MS = 30_000


class Deliverer:
    """Delivers webhook events. ``owner(channel)`` is the team whose members see that channel's
    results (None: no team yet); ``clock`` and ``resolver`` are injected for tests."""

    def __init__(
        self,
        client: redis.Redis,
        registry: WebhookRegistry,
        owner: Callable[[str], str | None],
        *,
        allow_private: bool = False,
        retry_delays: Sequence[float] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800),
        timeout: float = 5.0,
        name: str = "deliverer",
        clock: Callable[[], float] = time.time,
        resolver: Resolver = socket.getaddrinfo,
    ) -> None:
        self.client = client
        self.queue = DeliveryQueue(client)
        self.registry = registry
        self.owner = owner
        self.allow_private = allow_private
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.name = name
        self.clock = clock
        self.resolver = resolver
        self._pool: ThreadPoolExecutor | None = None

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    # -- one pass ---------------------------------------------------------------------------

    def run_once(self, block_ms: int = 1000) -> int:
        """Fan out the events waiting and send the deliveries due; returns how many of each."""
        handled = self.fan_out(self._wait_ms(block_ms))
        due = self.queue.take_due(self.clock(), BATCH)
        if self._pool is not None and len(due) > 1:
            list(self._pool.map(self.attempt, due))
        else:
            for delivery in due:
                self.attempt(delivery)
        return handled + len(due)

    def _wait_ms(self, block_ms: int) -> int:
        """How long to wait for new events: until the next delivery is due, at most ``block_ms``."""
        due = self.queue.next_due()
        if due is None:
            return block_ms
        return max(1, min(block_ms, int((due - self.clock()) * 1000)))

    def fan_out(self, block_ms: int = 1) -> int:
        """Make the deliveries of each new event (its team's webhooks that get it)."""
        entries = parse_entries(self.client.xreadgroup(GROUP, self.name, {EVENTS_STREAM: "0"}, count=100)) or take(
            self.client, EVENTS_STREAM, GROUP, self.name, 100, CLAIM_IDLE_MS, block_ms
        )
        for entry_id, fields in entries:
            try:
                event = cast(WebhookEvent, json.loads(fields["event"]))
                kind, item = event["type"], event["item"]
                team = self.owner(str(item.get("channel") or ""))
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                log.error("webhook event %s is malformed (%s); dropped", entry_id, exc)
                self.queue.drop_entry(entry_id)
                continue
            hooks = self.registry.subscribed(team, kind) if team else []
            deliveries = [Delivery(delivery_id(event["id"], hook.id), hook.id, event) for hook in hooks]
            now = self.clock()
            for delivery in deliveries:
                self.registry.log_queued(delivery.id, delivery.webhook_id, kind, str(item.get("id")), now)
            self.queue.fan_out(entry_id, event, deliveries, now)
        return len(entries)

    def attempt(self, delivery: Delivery) -> None:
        """POST one delivery and write the outcome to the log and the queue."""
        hook = self.registry.get(delivery.webhook_id)
        if hook is None:  # removed since: its deliveries go with it
            self.queue.finish(delivery)
            return
        attempts = delivery.attempts + 1
        status: int | None = None
        try:
            target = resolve(hook.url, self.allow_private, self.resolver)
            stamp = int(self.clock())
            body = signing.body_of(delivery, stamp)
            answer = sender.post(target, body, signing.headers_of(delivery, hook.secret, body, stamp), self.timeout)
        except RefusedUrl as exc:
            error = exc.reason
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            status = answer.status
            if answer.ok:
                self.registry.log_attempt(delivery.id, "delivered", attempts, status, "", self.clock(), None)
                self.queue.finish(delivery)
                return
            error = f"answered {status}" + (f": {answer.text.strip()[:200]}" if answer.text.strip() else "")
        now = self.clock()
        if attempts >= self.max_attempts:
            log.warning("webhook %s: delivery %s failed after %d attempts: %s", hook.id, delivery.id, attempts, error)
            self.registry.log_attempt(delivery.id, "failed", attempts, status, error, now, None)
            self.queue.finish(delivery)
            return
        due = now + self.retry_delays[attempts - 1]
        log.info(
            "webhook %s: delivery %s attempt %d: %s; again in %.0fs", hook.id, delivery.id, attempts, error, due - now
        )
        self.registry.log_attempt(delivery.id, "retrying", attempts, status, error, now, due)
        self.queue.retry(delivery, attempts, due)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop``; Redis outages and registry errors are waited out with backoff."""
        delay = 0.5
        with ThreadPoolExecutor(SENDERS, thread_name_prefix="webhook-post") as pool:
            self._pool = pool
            try:
                while not stop.is_set():
                    try:
                        self.run_once()
                        delay = 0.5
                    except (redis.RedisError, sqlite3.Error) as exc:
                        delay = wait_out(exc, self.client, "webhook deliverer", "webhook registry", delay, stop, log)
            finally:
                self._pool = None
