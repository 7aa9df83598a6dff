"""The recorder: the single writer of the durable store, and the one announcer of changes.

It reads the records stream in order, applies each record to the store (every store method is
idempotent, so a record seen twice after a crash changes nothing), announces the stored item
once, and acknowledges the record only after that, in the transaction that also queues the
webhook event of a result done or failed. It also applies the retention policy.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import redis

from daemon.intake.dedupe import file_md5
from daemon.intake.safeopen import RefusedFile, not_regular, open_folder_in_share
from daemon.queue.redisconn import wait_out
from daemon.queue.streams import RECORDER_GROUP, RECORDS, md5_key, parse_entries, rereading_key, take
from daemon.records import (
    FINAL_STATUSES,
    MESSAGE_TYPES,
    DoneMessage,
    DuplicateMessage,
    FailedMessage,
    ProcessingMessage,
    QueuedMessage,
    RecordMessage,
    ResultRecord,
    RetryMessage,
    Status,
    decode_message,
)
from daemon.results.events import EventSink, LatestCache
from daemon.results.public import public_item
from daemon.results.store import ResultStore
from daemon.webhooks.queue import Outbox

log = logging.getLogger(__name__)

RETENTION_EVERY = 3600.0
LISTENERS_WAIT = 20.0  # after a Redis outage, how long to wait for event listeners to subscribe again


class Recorder:
    """Consumes ``teamocr:records``; ``run_once`` handles one read of the stream."""

    def __init__(
        self,
        client: redis.Redis,
        store: ResultStore,
        events: EventSink,
        cache: LatestCache,
        name: str = "recorder",
        claim_idle_seconds: float = 30.0,
        retention_days: float = 0.0,
        delete_sources: bool = False,
        clock: Callable[[], float] = time.time,
        *,
        shared_dir: Path | None = None,
        webhooks: Outbox | None = None,
    ) -> None:
        """``shared_dir``: the shared folder; with ``delete_sources`` retention removes only regular
        files inside it, reached with no link on the way. None: only the file itself is checked
        (never a link). ``webhooks``: where results done or failed are queued for webhooks."""
        self.client = client
        self.store = store
        self.events = events
        self.cache = cache
        self.name = name
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self.retention_days = retention_days
        self.delete_sources = delete_sources
        self.shared_dir = shared_dir
        self.webhooks = webhooks
        self.clock = clock
        self._next_retention = 0.0
        self._unannounced: dict[str, dict[str, Any]] = {}  # entry id -> item stored, not yet announced

    def run_once(self, block_ms: int = 1000) -> int:
        # Records a failed pass left unacknowledged come first, so that records apply in order.
        entries = parse_entries(self.client.xreadgroup(RECORDER_GROUP, self.name, {RECORDS: "0"}, count=100)) or take(
            self.client, RECORDS, RECORDER_GROUP, self.name, 100, self.claim_idle_ms, block_ms
        )
        for entry_id, fields in entries:
            # A record stored but not announced (Redis went away in between) is announced when it
            # comes back: applying it again would change nothing, and so announce nothing.
            item = self._unannounced.pop(entry_id, None)
            record: RecordMessage | None = None
            if item is None:
                try:
                    record = decode_message(fields["record"])
                    item = self.apply(record)
                except (KeyError, ValueError, TypeError) as exc:
                    log.error("record %s is malformed (%s); dropped", entry_id, exc)
                    item = None
            if item is not None:
                try:
                    self.cache.put(item)
                    self.events.publish(item)
                except Exception:
                    self._unannounced[entry_id] = item
                    raise
            # Stored in SQLite now: the record leaves Redis (the stream would otherwise grow for good).
            pipe = self.client.pipeline(transaction=True)
            if self.webhooks is not None:  # with the acknowledgement: acknowledged means queued
                self.webhooks.result_changed(pipe, item if item is not None else self._final_replayed(record))
            pipe.xack(RECORDS, RECORDER_GROUP, entry_id)
            pipe.xdel(RECORDS, entry_id)
            pipe.execute()
        if self.retention_days > 0 and self.clock() >= self._next_retention:
            self._next_retention = self.clock() + RETENTION_EVERY
            self.apply_retention()
        return len(entries)

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop``; Redis outages and store errors are waited out with backoff."""
        delay = 0.5
        outage = False
        while not stop.is_set():
            try:
                if outage:  # web processes subscribe again on their own schedule; wait for them
                    self.events.wait_for_listeners(stop, LISTENERS_WAIT)
                    outage = False
                self.run_once()
                delay = 0.5
            except (redis.RedisError, sqlite3.Error) as exc:  # sqlite3: e.g. locked past the busy timeout
                outage = outage or isinstance(exc, redis.RedisError)
                delay = wait_out(exc, self.client, "recorder", "store", delay, stop, log)

    def _final_replayed(self, record: RecordMessage | None) -> dict[str, Any] | None:
        """The item of a final record that changed nothing (a replay after a crash, or a record
        that came late): its result's webhook event may not have been queued yet. The queue makes
        an event it has seen nothing new, so adding it again is safe."""
        if record is None or record["type"] not in ("done", "failed"):
            return None
        row = self.store.get(record["id"])
        return self._public(row) if row is not None and row.status in (Status.DONE, Status.FAILED) else None

    def apply(self, record: RecordMessage) -> dict[str, Any] | None:
        """Store one message; returns the (public) item to announce, or None when nothing changed."""
        kind = record["type"]
        rid = record["id"]
        if kind not in MESSAGE_TYPES:
            raise ValueError(f"unknown record type {kind!r}")
        before = self.store.get(rid)
        if before is not None and before.status in FINAL_STATUSES and kind not in ("done", "requeued"):
            return None  # final rows never move again (but to a retry or a re-read); a replay changes nothing
        row: ResultRecord | None
        match kind:
            case "queued" | "duplicate" | "failed" if before is None:  # intake: a new result
                row = self._add(cast(QueuedMessage | DuplicateMessage | FailedMessage, record))
            case "queued":  # a retry waiting for its backoff
                return self._retrying(cast(RetryMessage, record), before)
            case "processing":
                return self._processing(cast(ProcessingMessage, record))
            case "requeued":  # a failed result retried
                row = self.store.requeue(rid)
            case "done":
                done = cast(DoneMessage, record)
                if before is not None and before.status == Status.DONE and not done.get("reread"):
                    return None
                row = self._complete(done)
                if done.get("reread"):
                    self.client.delete(rereading_key(rid))
            case "failed":
                row = self._fail(cast(FailedMessage, record))
        if row is None:
            log.warning("record %s for unknown result %s ignored", kind, rid)
            return None
        return self._public(row)

    def _public(self, row: ResultRecord) -> dict[str, Any]:
        """The item members are shown (the feed): its error names no server path."""
        return public_item(row, self.shared_dir) if self.shared_dir is not None else row.to_public()

    def _add(self, record: QueuedMessage | DuplicateMessage | FailedMessage) -> ResultRecord | None:
        row_of = ResultRecord.from_item({**record, "status": record["type"]})
        if record["type"] == "duplicate":
            return self.store.add_duplicate(row_of)
        row = self.store.add_queued(row_of)
        if record["type"] == "failed" and row.status != Status.FAILED:
            return self._fail(record)
        return row

    def _retrying(self, record: RetryMessage, before: ResultRecord | None) -> dict[str, Any] | None:
        if before is None:
            log.warning("record queued for unknown result %s ignored", record["id"])
            return None
        return {**self._public(before), "status": "queued", "attempts": record.get("attempts", before.attempts)}

    def _processing(self, record: ProcessingMessage) -> dict[str, Any] | None:
        """Mark the result processing; a document's progress (pages done of its count) is kept
        with the row's page count and announced with the item."""
        row = self.store.mark_processing(record["id"], record.get("attempts", 1), record.get("page_count"))
        if row is None:
            log.warning("record processing for unknown result %s ignored", record["id"])
            return None
        item = self._public(row)
        if "pages_done" in record:
            item["pages_done"] = record["pages_done"]
        return item

    def _complete(self, record: DoneMessage) -> ResultRecord | None:
        return self.store.complete(
            record["id"],
            width=record["width"],
            height=record["height"],
            lines=record["lines"],
            text=record["text"],
            timings=record["timings"],
            engine_version=record["engine_version"],
            model_version=record["model_version"],
            finished_at=record["finished_at"],
            page_count=record.get("page_count", 1),
            pages=record.get("pages", []),
            settings=record.get("settings", {}),
            reread=bool(record.get("reread")),
            blocks=record.get("blocks", []),
            tables=record.get("tables", []),
        )

    def _fail(self, record: FailedMessage) -> ResultRecord | None:
        before = self.store.get(record["id"])
        if before is not None and before.md5 and before.status not in FINAL_STATUSES:
            # A failed primary no longer answers for its content: dropped again (under another
            # name or place), that content is read as new instead of recorded as its duplicate.
            # Released before the row says failed, so that whoever sees the failure may drop again.
            key = md5_key(before.md5, before.scope)
            if self.client.get(key) == before.id:
                self.client.delete(key)
        return self.store.fail(
            record["id"],
            record.get("error") or "failed",
            record.get("attempts", 0),
            record.get("finished_at") or self.clock(),
        )

    def apply_retention(self) -> int:
        """Remove results older than the retention period (and, if configured, their files)."""
        cutoff = self.clock() - self.retention_days * 86400
        removed = self.store.delete_older_than(cutoff)
        for row in removed:
            # the claim of the row's own dedup scope (team); "" is the global key of older rows
            if row.md5 and self.client.get(md5_key(row.md5, row.scope)) == row.id:
                self.client.delete(md5_key(row.md5, row.scope))
            if self.delete_sources:
                delete_source(self.shared_dir, row.disk_path, row.md5)
        if removed:
            log.info("retention removed %d results older than %.1f days", len(removed), self.retention_days)
        return len(removed)


def delete_source(shared_dir: Path | None, path: str, md5: str = "") -> bool:
    """Remove the regular file at ``path``, never a link nor anything a link leads to: its folder
    is reached from the share's root with no link followed, and the name is removed from that
    very folder only when it is a regular file there (holding the bytes of ``md5`` when given).
    Whether it was removed (why not is logged)."""
    folder = Path(path).parent
    try:
        fd = open_folder_in_share(shared_dir if shared_dir is not None else folder, folder)
    except RefusedFile as exc:
        log.warning("%s: the source was not deleted: %s", path, exc)
        return False
    except OSError as exc:
        log.warning("%s: the source could not be deleted: %s", path, exc)
        return False
    name = Path(path).name
    try:
        mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        if not stat.S_ISREG(mode):
            log.warning("%s: the source was not deleted: it %s", path, not_regular(mode))
            return False
        if md5 and _md5_at(fd, name) != md5:
            log.warning("%s: the source was not deleted: it holds other bytes than the result's", path)
            return False
        os.unlink(name, dir_fd=fd)
        return True
    except OSError as exc:
        log.warning("%s: the source could not be deleted: %s", path, exc)
        return False
    finally:
        os.close(fd)


def _md5_at(folder_fd: int, name: str) -> str:
    """MD5 of the regular file ``name`` in the folder ``folder_fd`` (opened without following a link)."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), dir_fd=folder_fd)
    try:
        return file_md5(fd)
    finally:
        os.close(fd)
