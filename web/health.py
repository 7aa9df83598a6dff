"""``/healthz`` (liveness for load balancers and people) and ``/metrics`` (Prometheus text 0.0.4).

Neither says anything about a team: only service-wide figures. ``/healthz`` needs no token and
costs two Redis round trips and one indexed store read; anonymous callers see the workers as
``worker-1``, ``worker-2``... (a worker's name holds its host's), and a caller with a token sees
their names. ``/metrics`` needs a member's access token or the scrape secret ``web.metrics_token``
(both as ``Authorization: Bearer``); its store figures are counted at most every
``web.metrics_max_age`` seconds, off the event loop, however often it is scraped. Heartbeats
older than :data:`STALE_SECONDS` are dropped from Redis, so workers long gone leave the list.
Both answer whatever is down (never 500): /healthz with 503 and the parts that failed, /metrics
with ``teamocr_redis_up`` / ``teamocr_store_up`` at 0 and without the figures it could not read.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import redis
from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from daemon.queue.streams import DELAYED, HEARTBEATS, JOBS, PRIORITY_JOBS, WORKERS_GROUP
from daemon.records import Status
from daemon.results.store import ResultStore, StoreError
from daemon.worker.loop import heartbeat_age
from web.auth import principal_for, refused
from web.services import services
from web.tokens import TokenError

log = logging.getLogger(__name__)

blueprint = Blueprint("health", __name__)

ALIVE_SECONDS = 30.0  # a worker that beat within this is alive
STALE_SECONDS = 600.0  # a heartbeat this old is a worker gone for good: removed from Redis
MIN_METRICS_TOKEN = 16
EXTENSION = "teamocr.health"
PROBE_ID = "-"  # no result has this id: reading it proves the store answers, at the cost of one index lookup
# Remove the named heartbeats still older than ARGV[1] (a worker that beat meanwhile keeps its entry).
_PRUNE = """
local removed = 0
for i = 2, #ARGV do
  local beat = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  if beat and beat < tonumber(ARGV[1]) then removed = removed + redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return removed
"""
LAG_SCAN_LIMIT = 10_000  # Redis < 7 reports no group lag; we count at most this many waiting jobs
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class QueueState:
    """The jobs stream: entries in it, handed out but unacknowledged, waiting for a worker, retries."""

    length: int | None = None
    pending: int | None = None
    lag: int | None = None
    delayed: int | None = None


@dataclass
class RedisState:
    """What Redis told us; ``up`` is False when it did not answer."""

    up: bool = False
    workers: dict[str, float] = field(default_factory=dict)
    queue: QueueState = field(default_factory=QueueState)

    @property
    def workers_alive(self) -> int:
        return sum(1 for age in self.workers.values() if age <= ALIVE_SECONDS)


def redis_state(client: redis.Redis) -> RedisState:
    """Ping Redis and read the workers' heartbeats and the queue; never raises for a Redis failure."""
    state = RedisState()
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        log.warning("health: Redis not answering: %s", exc)
        return state
    state.up = True
    try:
        state.workers = live_workers(client, time.time())
        state.queue = QueueState(length=client.xlen(JOBS) + client.xlen(PRIORITY_JOBS), delayed=client.zcard(DELAYED))
        state.queue.pending, state.queue.lag = _group_state(client)
    except (redis.ResponseError, ValueError) as exc:  # e.g. no consumer group yet: the daemon never ran
        log.info("health: queue state not readable: %s", exc)
    except (redis.RedisError, OSError) as exc:  # went away between the ping and now
        log.warning("health: Redis stopped answering: %s", exc)
        state.up = False
    return state


def live_workers(client: redis.Redis, now: float) -> dict[str, float]:
    """Seconds since each worker's beat (one decimal); beats older than :data:`STALE_SECONDS` are
    removed from Redis instead."""
    ages = heartbeat_age(client, now)
    stale = [name for name, age in ages.items() if age > STALE_SECONDS]
    if stale:
        removed = client.eval(_PRUNE, 1, HEARTBEATS, now - STALE_SECONDS, *stale)
        log.info("health: removed %s heartbeat(s) older than %.0f s: %s", removed, STALE_SECONDS, ", ".join(stale))
    return {name: round(age, 1) for name, age in ages.items() if age <= STALE_SECONDS}


def shown_workers(workers: dict[str, float], named: bool) -> dict[str, float]:
    """The workers' ages under their names, or (``named`` False) as ``worker-1``, ``worker-2``... in
    the order of their names, which hold their hosts'."""
    if named:
        return workers
    return {f"worker-{n}": workers[name] for n, name in enumerate(sorted(workers), start=1)}


def _group_state(client: redis.Redis) -> tuple[int | None, int | None]:
    """(pending, lag) of the workers' group; lag counted by hand where Redis does not report it."""
    group = next((info for info in client.xinfo_groups(JOBS) if info.get("name") == WORKERS_GROUP), None)
    if group is None:
        return None, None
    pending = int(group.get("pending") or 0)
    if "lag" in group:  # Redis 7+; None when Redis cannot tell
        return pending, None if group["lag"] is None else int(group["lag"])
    # XRANGE always answers an array; redis-py's type allows None
    waiting = cast(
        list[Any], client.xrange(JOBS, min=f"({group['last-delivered-id']}", max="+", count=LAG_SCAN_LIMIT + 1)
    )
    return pending, len(waiting) if len(waiting) <= LAG_SCAN_LIMIT else None


def store_answers() -> bool:
    """Whether the result store answers a read (one index lookup, never a scan)."""
    try:
        services().store.get(PROBE_ID)
    except (StoreError, sqlite3.Error) as exc:
        log.warning("health: result store not answering: %s", exc)
        return False
    return True


# -- who may see more -----------------------------------------------------------------


def credentials_refusal() -> str | None:
    """None when the request carries the scrape secret (``web.metrics_token``) or a valid access
    token of a current member, as ``Authorization: Bearer``; else why not."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return "missing bearer token (Authorization: Bearer <access token or web.metrics_token>)"
    secret = services().settings.web.metrics_token
    if secret and hmac.compare_digest(token.encode(), secret.encode()):
        return None
    try:
        principal_for(services().tokens.verify(token, "access"))
    except TokenError as exc:
        return str(exc)
    return None


def _check_settings(state: BlueprintSetupState) -> None:
    """Refuse a scrape secret too short to resist guessing; give the app its figures cache."""
    app = cast(Flask, state.app)  # the sansio App Flask's blueprints are typed with
    web = services(app).settings.web
    if web.metrics_token and len(web.metrics_token) < MIN_METRICS_TOKEN:
        raise ValueError(
            f"web.metrics_token must be at least {MIN_METRICS_TOKEN} characters, got {len(web.metrics_token)}"
        )
    if web.metrics_max_age < 0:
        raise ValueError(f"web.metrics_max_age must be 0 or more seconds, got {web.metrics_max_age}")
    app.extensions.setdefault(EXTENSION, FiguresCache(web.metrics_max_age))


blueprint.record_once(_check_settings)


@blueprint.get("/healthz")
def healthz() -> Any:
    state = redis_state(services().redis)
    store_up = store_answers()
    ok = state.up and store_up
    named = state.up and _quietly_allowed()
    body = jsonify(
        status="ok" if ok else "degraded",
        redis=state.up,
        store=store_up,
        workers=shown_workers(state.workers, named),
        workers_alive=state.workers_alive,
        queue=asdict(state.queue),
    )
    body.status_code = 200 if ok else 503
    body.headers["Cache-Control"] = "no-store"
    return body


def _quietly_allowed() -> bool:
    """Whether the caller may see the workers' names; a bad or unverifiable token is simply an
    anonymous caller here (a load balancer's probe must never fail on its headers)."""
    if "Authorization" not in request.headers:
        return False
    try:
        return credentials_refusal() is None
    except (redis.RedisError, OSError) as exc:
        log.info("health: token not checked (%s): workers shown unnamed", exc)
        return False


# -- the store's figures, counted at most every web.metrics_max_age seconds -----------------


@dataclass(frozen=True)
class StoreFigures:
    """Results per status and OCR seconds per stage over every team, and when they were counted."""

    counts: dict[str, int]
    seconds: dict[str, float] | None
    at: float  # time.monotonic()


def count_figures(store: ResultStore) -> StoreFigures:
    """Count the store's figures (a scan of every row: run it off the event loop). Raises
    StoreError / sqlite3.Error when the store does not answer its counts."""
    counts = store.counts()
    try:
        seconds: dict[str, float] | None = store.stage_seconds()
    except (StoreError, sqlite3.Error) as exc:
        log.warning("metrics: stage seconds not readable: %s", exc)
        seconds = None
    return StoreFigures(counts, seconds, time.monotonic())


class FiguresCache:
    """The last :class:`StoreFigures`, reused for ``max_age`` seconds; one refresh at a time (a
    scrape arriving meanwhile waits for it and takes its figures rather than counting again)."""

    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.clock = clock
        self.refreshes = 0
        self._figures: StoreFigures | None = None
        self._lock = threading.Lock()  # the event loop's under gevent

    def get(self, count: Callable[[], StoreFigures]) -> StoreFigures:
        """Fresh enough figures, counting them with ``count()`` when the last are older than
        ``max_age``; its errors propagate (and the next call counts again)."""
        figures = self._fresh()
        if figures is not None:
            return figures
        with self._lock:
            figures = self._fresh()
            if figures is None:
                figures = count()
                self.refreshes += 1
                self._figures = figures
            return figures

    def _fresh(self) -> StoreFigures | None:
        figures = self._figures
        if figures is not None and self.clock() - figures.at < self.max_age:
            return figures
        return None


def figures_cache(app: Flask) -> FiguresCache:
    """The app's cache of store figures."""
    cache: FiguresCache = app.extensions[EXTENSION]
    return cache


def store_figures() -> StoreFigures | None:
    """The store's figures (cached), or None when the store does not answer."""
    svc = services()
    store = svc.reads
    try:
        return figures_cache(current_app).get(lambda: cast(StoreFigures, svc.offload.run(count_figures, store)))
    except (StoreError, sqlite3.Error) as exc:
        log.warning("metrics: result store not answering: %s", exc)
        return None


# -- Prometheus -----------------------------------------------------------------------


class MetricsText:
    """Prometheus text exposition format 0.0.4, written by hand (one family at a time)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]] | float | None
    ) -> None:
        """Add a metric family; a bare number is one unlabelled sample, None adds nothing."""
        if samples is None:
            return
        if not isinstance(samples, list):
            samples = [({}, samples)]
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
            self.lines.append(f"{name}{{{label_text}}} {_number(value)}" if labels else f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@blueprint.get("/metrics")
def metrics() -> Any:
    try:
        refusal = credentials_refusal()
    except (redis.RedisError, OSError) as exc:
        log.warning("metrics: token not checked: %s", exc)
        abort(503, description="cannot check the token while Redis does not answer; scrape with web.metrics_token")
    if refusal is not None:
        try:
            return refused(refusal)  # counted per address, as the API's refusals are
        except (redis.RedisError, OSError):  # the limiter's counters are in Redis: refused uncounted
            abort(401, description=refusal)
    state = redis_state(services().redis)
    store_up = store_answers()
    figures = store_figures() if store_up else None
    counts = None if figures is None else figures.counts
    seconds = None if figures is None else figures.seconds
    out = MetricsText()
    out.family("teamocr_redis_up", "gauge", "1 when Redis answered this scrape.", float(state.up))
    out.family("teamocr_store_up", "gauge", "1 when the result store answered this scrape.", float(figures is not None))
    if figures is not None:
        out.family(
            "teamocr_store_figures_age_seconds",
            "gauge",
            "Seconds since the store's figures below were counted (at most web.metrics_max_age).",
            round(time.monotonic() - figures.at, 3),
        )
    if counts is not None:
        out.family(
            "teamocr_files_seen_total",
            "counter",
            "Files recorded (every stored result, any status).",
            sum(counts.values()),
        )
        out.family(
            "teamocr_results_total",
            "gauge",
            "Stored results by status.",
            [({"status": status.value}, counts.get(status.value, 0)) for status in Status],
        )
        out.family(
            "teamocr_duplicates_total",
            "counter",
            "Files recognised as duplicates by MD5.",
            counts.get(Status.DUPLICATE.value, 0),
        )
        out.family(
            "teamocr_failed_total",
            "gauge",
            "Results failed now (a retried result may still succeed).",
            counts.get(Status.FAILED.value, 0),
        )
        out.family("teamocr_done_total", "counter", "Results OCRed successfully.", counts.get(Status.DONE.value, 0))
    if seconds is not None:
        out.family(
            "teamocr_ocr_seconds_total",
            "counter",
            "OCR seconds spent per stage over all done results.",
            [({"stage": stage}, value) for stage, value in seconds.items()],
        )
    if state.up:
        out.family("teamocr_queue_depth", "gauge", "Jobs waiting for a worker (not yet handed out).", state.queue.lag)
        out.family(
            "teamocr_queue_pending", "gauge", "Jobs handed to a worker and not yet acknowledged.", state.queue.pending
        )
        out.family("teamocr_queue_delayed", "gauge", "Failed jobs waiting for their retry.", state.queue.delayed)
        out.family(
            "teamocr_workers_alive",
            "gauge",
            f"Workers with a heartbeat in the last {ALIVE_SECONDS:g} s.",
            state.workers_alive,
        )
    response = Response(out.text(), mimetype="text/plain")
    response.headers["Content-Type"] = PROMETHEUS_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response
