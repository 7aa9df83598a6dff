"""The worker: takes jobs from the stream in small batches, OCRs them, records the outcome.

The jobs in hand are read as one engine batch (``ocr_many``: similar-sized images detected
together, all their text lines recognised in width-sorted batches); each job still gets its own
processing record, outcome, retry and acknowledgement.

A job is acknowledged only after its outcome record is in Redis (the recorder then stores it).
Jobs of a worker that died are taken over after ``claim_idle_seconds``. A bad image fails at once
with its cause; other errors (a file briefly unreadable, an engine hiccup) retry with backoff up to
``max_attempts`` and then stay failed with the error recorded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis

from config.settings import DaemonSettings
from daemon.ports import DocumentReader, Engine, TunableEngine
from daemon.queue.redisconn import lost_groups, recreate_groups
from daemon.queue.streams import (
    DELAYED,
    HEARTBEATS,
    JOBS,
    LANES,
    PRIORITY_JOBS,
    WORKERS_GROUP,
    Job,
    add_record,
    take_lanes,
)
from daemon.records import DoneMessage, FailedMessage, ProcessingMessage, RetryMessage
from daemon.worker.documents import DocumentJob, forget
from daemon.worker.outputs import OutputWriter
from daemon.worker.sourcefile import ShareAway, read_queued
from engine.documents import document_kind
from engine.errors import EngineError

log = logging.getLogger(__name__)

# Move due retries from the delayed set back to the jobs stream, atomically (one mover wins).
_RELEASE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 50)
for _, job in ipairs(due) do
  if redis.call('ZREM', KEYS[1], job) == 1 then
    redis.call('XADD', KEYS[2], '*', 'job', job)
  end
end
return #due
"""


SHARE_RETRY_MAX = 30.0  # seconds between looks at a share that is away, at most
PRIORITY_STREAK = 4  # after this many priority batches in a row, waiting folder jobs go first once
URGENT_QUIET_SECONDS = 60.0  # after a one-call job, folder jobs are taken one at a time this long
URGENT_LINGER_SECONDS = 1.0  # ... and for this long after one the worker waits for the next before a folder file


@dataclass(frozen=True)
class Retry:
    """A job to try again (in the delayed set) at ``due``."""

    job: Job
    due: float


Outcome = FailedMessage | DoneMessage | Retry  # what a worker makes of one job


class Worker:
    """One consumer of the jobs stream; ``run_once`` is one batch."""

    def __init__(
        self,
        client: redis.Redis,
        engine: Engine,
        settings: DaemonSettings,
        name: str,
        outputs: OutputWriter | None = None,
        clock: Callable[[], float] = time.time,
        *,
        shared_dir: Path | None = None,
    ) -> None:
        """``shared_dir``: the shared folder as mounted on this host (the same path on every host);
        a job whose file is not inside it, in its channel's folder, with no link on the way, fails.
        None: only the file itself must not be a link (tests of the loop alone)."""
        self.client = client
        self.engine = engine
        self.settings = settings
        self.name = name
        self.outputs = outputs
        self.clock = clock
        self.shared_dir = shared_dir
        self._release = client.register_script(_RELEASE)
        self._in_hand: dict[str, tuple[str, str]] = {}  # job id -> (stream, entry), for the batch in hand
        self._read_with: dict[str, dict[str, Any]] = {}  # job id -> the settings it was read with
        self._priority_streak = 0  # batches in a row taken from the priority lane alone
        self._last_urgent = -math.inf  # when a one-call (priority) job was last answered

    def run_once(self, block_ms: int = 1000) -> int:
        """Take up to ``batch_size`` jobs (one at a time while one-call jobs come: see
        :meth:`_batch`) and finish each; returns how many were handled."""
        self.client.hset(HEARTBEATS, self.name, self.clock())
        self._release(keys=[DELAYED, JOBS], args=[self.clock()])
        entries = take_lanes(
            self.client,
            WORKERS_GROUP,
            self.name,
            self._batch(),
            int(self.settings.claim_idle_seconds * 1000),
            block_ms,
            folder_first=self._priority_streak >= PRIORITY_STREAK,
            linger_ms=self._linger_ms(),
        )
        urgent = bool(entries) and all(stream == PRIORITY_JOBS for stream, _, _ in entries)
        self._priority_streak = self._priority_streak + 1 if urgent else 0
        had_urgent = any(stream == PRIORITY_JOBS for stream, _, _ in entries)
        jobs = [
            (stream, entry_id, job)
            for stream, entry_id, fields in entries
            if (job := self._parse(stream, entry_id, fields)) is not None
        ]
        if jobs:
            pipe = self.client.pipeline(transaction=False)
            for _, _, job in jobs:
                add_record(
                    pipe, ProcessingMessage(type="processing", id=job.id, attempts=job.attempt + 1, worker=self.name)
                )
            pipe.execute()
            self._in_hand = {job.id: (stream, entry_id) for stream, entry_id, job in jobs}
            outcomes = self._read_by_settings([job for _, _, job in jobs])
            for (stream, entry_id, job), outcome in zip(jobs, outcomes):
                self._finish(stream, entry_id, job, self._record(job, outcome))
        if had_urgent:
            self._last_urgent = self.clock()  # when the last one-call job was answered
        return len(entries)

    def _batch(self) -> int:
        """How many jobs to take: ``batch_size`` (images read together are 1.2x faster), but one
        while one-call jobs have come in the last :data:`URGENT_QUIET_SECONDS`, so that the next
        one waits for at most one folder file in hand, not a whole batch."""
        if self.clock() - self._last_urgent < URGENT_QUIET_SECONDS:
            return 1
        return self.settings.batch_size

    def _linger_ms(self) -> int:
        """How long to wait for a next one-call job before taking a folder file: a while just
        after one was answered (a program calling again finds the worker free), else not at all."""
        return int(URGENT_LINGER_SECONDS * 1000) if self.clock() - self._last_urgent < URGENT_LINGER_SECONDS else 0

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; the batch in hand is finished first. Survives Redis outages."""
        log.info("worker %s started (pid %d, batch %d)", self.name, os.getpid(), self.settings.batch_size)
        delay = 0.5
        while not stop.is_set():
            try:
                self.run_once()
                delay = 0.5
            except redis.RedisError as exc:
                if lost_groups(exc) and recreate_groups(self.client, f"worker {self.name}"):
                    continue
                log.warning("worker %s: Redis error (%s); retrying in %.1fs", self.name, exc, delay)
                stop.wait(delay)
                delay = min(30.0, delay * 2)
        log.info("worker %s stopped", self.name)

    def _parse(self, stream: str, entry_id: str, fields: dict[str, str]) -> Job | None:
        try:
            return Job.from_json(fields["job"])
        except (KeyError, ValueError, TypeError) as exc:
            log.error("job %s is malformed (%s); dropped", entry_id, exc)
            self.client.xack(stream, WORKERS_GROUP, entry_id)
            return None

    def _finish(self, stream: str, entry_id: str, job: Job, outcome: Outcome) -> None:
        """Store the outcome record (or schedule the retry) and acknowledge the job, in one transaction."""
        pipe = self.client.pipeline(transaction=True)
        if isinstance(outcome, Retry):
            pipe.zadd(DELAYED, {outcome.job.to_json(): outcome.due})
            add_record(pipe, RetryMessage(type="queued", id=job.id, attempts=outcome.job.attempt, retry_at=outcome.due))
        else:
            add_record(pipe, outcome)
            forget(pipe, job.id)  # the pages a document kept while it was read
        pipe.xack(stream, WORKERS_GROUP, entry_id)
        pipe.xdel(stream, entry_id)  # a finished job would otherwise stay in Redis for good
        pipe.execute()

    def _read_by_settings(self, jobs: list[Job]) -> list[Any]:
        """Each job's page or exception, the jobs of the same engine settings (their channel's)
        read together as one batch, with those settings."""
        groups: dict[str, list[int]] = {}
        for k, job in enumerate(jobs):
            groups.setdefault(json.dumps(job.engine or {}, sort_keys=True), []).append(k)
        outcomes: list[Any] = [None] * len(jobs)
        self._read_with = {}
        for members in groups.values():
            try:
                engine = self._engine_for(jobs[members[0]].engine or {})
            except Exception as exc:  # noqa: BLE001 - settings the engine cannot take: each job fails or retries
                for k in members:
                    outcomes[k] = exc
                continue
            settings = engine.read_settings() if isinstance(engine, TunableEngine) else None
            for k, outcome in zip(members, self._read([jobs[k] for k in members], engine)):
                outcomes[k] = outcome
                if settings is not None:
                    self._read_with[jobs[k].id] = settings
        return outcomes

    def _engine_for(self, changes: dict[str, Any]) -> Engine:
        """The engine with a channel's settings (the worker's own for none)."""
        if not changes:
            return self.engine
        if not isinstance(self.engine, TunableEngine):
            raise EngineError(f"this engine cannot read with a channel's settings ({', '.join(sorted(changes))})")
        return cast(Engine, self.engine.tuned(changes))

    def _read(self, jobs: list[Job], engine: Engine) -> list[Any]:
        """Each job's page or exception: its file's bytes read and checked, then all of them OCRed
        as one batch (``engine.ocr_many``: detection and recognition batched across the images)."""
        outcomes: list[Any] = [None] * len(jobs)
        ready: list[tuple[int, bytes]] = []
        for k, job in enumerate(jobs):
            try:
                data = read_queued(
                    job.disk_path,
                    job.filename,
                    job.size,
                    job.md5,
                    job.folder,
                    share=self.shared_dir,
                    identity=job.identity,
                    follow=self.settings.follow_symlinks,
                    channel=job.channel if self.shared_dir is not None else None,
                )
                ready.append((k, data))
            except Exception as exc:  # noqa: BLE001 - classified per job in _record
                outcomes[k] = exc
        ready = self._read_documents(jobs, ready, outcomes, engine)
        if not ready:
            return outcomes
        try:
            pages = engine.ocr_many([data for _, data in ready], names=[jobs[k].filename for k, _ in ready])
            if len(pages) != len(ready):
                raise RuntimeError(f"the engine returned {len(pages)} results for {len(ready)} images")
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: each job retries
            pages = [exc] * len(ready)
        for (k, _), page in zip(ready, pages):
            outcomes[k] = page
        return outcomes

    def _read_documents(
        self, jobs: list[Job], ready: list[tuple[int, bytes]], outcomes: list[Any], engine: Engine
    ) -> list[tuple[int, bytes]]:
        """Read the PDFs and multi-page TIFFs among ``ready`` whole, one result each (its pages in
        the engine's batches); what is left is the images, for ``ocr_many``."""
        images = []
        for k, data in ready:
            if document_kind(data[:1024]) is None or not isinstance(engine, DocumentReader):
                images.append((k, data))
                continue
            try:
                document = engine.open_document(data, jobs[k].filename)
                if document is None:  # a TIFF of one page: an image
                    images.append((k, data))
                    continue
                log.info("%s: a document of %d page(s)", jobs[k].path, document.page_count)
                reader = DocumentJob(self.client, engine, self.name, self.settings.batch_size)
                outcomes[k] = reader.read(jobs[k], document, self._keep)
            except Exception as exc:  # noqa: BLE001 - classified per job in _record
                outcomes[k] = exc
        return images

    def _keep(self) -> None:
        """Claim every job in hand again (those of other settings and those already read too), so
        that none is taken over from a worker still reading a long document (``claim_idle_seconds``
        counts from here)."""
        for stream in LANES:
            entries: list[Any] = [entry for lane, entry in self._in_hand.values() if lane == stream]
            if entries:
                self.client.xclaim(stream, WORKERS_GROUP, self.name, 0, entries, justid=True)
        self.client.hset(HEARTBEATS, self.name, self.clock())

    def _record(self, job: Job, outcome: Any) -> Outcome:
        """The outcome record, or when and how the job is tried again."""
        attempts = job.attempt + 1
        if isinstance(outcome, EngineError):  # the image itself is bad: retrying cannot help
            reason = getattr(outcome, "reason", None) or str(outcome)
            log.warning("%s: failed: %s", job.path, reason)
            return FailedMessage(type="failed", id=job.id, attempts=attempts, error=reason, finished_at=self.clock())
        if isinstance(outcome, ShareAway):  # wait for the share (no attempt spent), up to share_wait_seconds
            now = self.clock()
            since = job.away_since or now
            away = now - since
            if away < self.settings.share_wait_seconds:
                if not job.away_since:
                    log.warning(
                        "%s; waiting for it to come back (up to %.0f s)", outcome, self.settings.share_wait_seconds
                    )
                pause = min(SHARE_RETRY_MAX, max(self.settings.retry_backoff, away))
                return Retry(dataclasses.replace(job, away_since=since), now + pause)
            log.error("%s: its share stayed away for %.0f s; failed", job.path, away)
            return FailedMessage(
                type="failed",
                id=job.id,
                attempts=attempts,
                finished_at=now,
                error=f"the share holding it stayed away for {away:.0f} s: {outcome}",
            )
        if isinstance(outcome, Exception):  # any other error is recorded, never fatal
            error = f"{type(outcome).__name__}: {outcome}"
            if attempts < self.settings.max_attempts:
                log.warning("%s: attempt %d failed (%s); will retry", job.path, attempts, error)
                due = self.clock() + self.settings.retry_backoff * (2**job.attempt)
                return Retry(dataclasses.replace(job, attempt=attempts, away_since=0.0), due)
            log.error("%s: failed after %d attempts: %s", job.path, attempts, error)
            return FailedMessage(
                type="failed",
                id=job.id,
                attempts=attempts,
                error=f"failed after {attempts} attempts: {error}",
                finished_at=self.clock(),
            )
        page = outcome
        result = page.to_dict()
        if job.id in self._read_with:
            result["settings"] = self._read_with[job.id]
        if job.reread:
            result["reread"] = True
        if self.outputs is not None:
            self.outputs.write(job, result)
        # the page's own fields (PageResult.to_dict) as they are: what it gains, the record carries
        return cast(
            DoneMessage, {"type": "done", "id": job.id, "attempts": attempts, "finished_at": self.clock(), **result}
        )


def heartbeat_age(client: redis.Redis, now: float) -> dict[str, float]:
    """Seconds since each worker's last beat (for /healthz)."""
    beats = cast(dict[str, str], client.hgetall(HEARTBEATS))  # our clients decode replies (redisconn)
    return {name: now - float(beat) for name, beat in beats.items()}
