"""``/healthz`` (liveness for load balancers and people) and ``/metrics`` (Prometheus text 0.0.4).

Neither needs a token, so neither says anything about a team: only service-wide figures. Both
answer whatever is down (never 500): /healthz with 503 and the parts that failed, /metrics with
``teamocr_redis_up`` / ``teamocr_store_up`` at 0 and without the figures it could not read.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import redis
from flask import Blueprint, Response, jsonify

from daemon.queue.streams import DELAYED, JOBS, WORKERS_GROUP
from daemon.records import Status
from daemon.results.store import StoreError
from daemon.worker.loop import heartbeat_age
from web.services import services

log = logging.getLogger(__name__)

blueprint = Blueprint("health", __name__)

ALIVE_SECONDS = 30.0  # a worker that beat within this is alive
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
        state.workers = {name: round(age, 1) for name, age in heartbeat_age(client, time.time()).items()}
        state.queue = QueueState(length=client.xlen(JOBS), delayed=client.zcard(DELAYED))
        state.queue.pending, state.queue.lag = _group_state(client)
    except (redis.ResponseError, ValueError) as exc:  # e.g. no consumer group yet: the daemon never ran
        log.info("health: queue state not readable: %s", exc)
    except (redis.RedisError, OSError) as exc:  # went away between the ping and now
        log.warning("health: Redis stopped answering: %s", exc)
        state.up = False
    return state


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


def store_counts() -> dict[str, int] | None:
    """Results per status over every team, or None when the store does not answer."""
    try:
        return services().store.counts()
    except (StoreError, sqlite3.Error) as exc:
        log.warning("health: result store not answering: %s", exc)
        return None


@blueprint.get("/healthz")
def healthz() -> Any:
    state = redis_state(services().redis)
    store_up = store_counts() is not None
    ok = state.up and store_up
    body = jsonify(
        status="ok" if ok else "degraded",
        redis=state.up,
        store=store_up,
        workers=state.workers,
        workers_alive=state.workers_alive,
        queue=asdict(state.queue),
    )
    body.status_code = 200 if ok else 503
    body.headers["Cache-Control"] = "no-store"
    return body


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
    state = redis_state(services().redis)
    counts = store_counts()
    seconds: dict[str, float] | None = None
    if counts is not None:
        try:
            seconds = services().store.stage_seconds()
        except (StoreError, sqlite3.Error) as exc:
            log.warning("metrics: stage seconds not readable: %s", exc)
    out = MetricsText()
    out.family("teamocr_redis_up", "gauge", "1 when Redis answered this scrape.", float(state.up))
    out.family("teamocr_store_up", "gauge", "1 when the result store answered this scrape.", float(counts is not None))
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
