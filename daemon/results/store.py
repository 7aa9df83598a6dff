"""The durable result store: :class:`ResultStore` (the interface) and :class:`SqliteStore`.

Every method that takes an id is idempotent, so the recorder can re-apply records after a
crash: adding an existing id returns the stored row, and a finished row (done, failed,
duplicate) never moves back to queued or processing.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from daemon.records import JSON_FIELDS, ResultRecord, Status
from daemon.results.fulltext import full_text
from daemon.results.schema import (
    INSERT_SQL,
    MAX_LIMIT,
    PRIMARY_MD5,
    StoreError,
    dumps,
    insert_params,
    list_query,
    open_connection,
    record_of,
    search_query,
)
from daemon.results.teams import ChannelScope

__all__ = ["MAX_LIMIT", "STORE_NAME", "ResultStore", "SqliteStore", "StoreError"]

log = logging.getLogger(__name__)

STORE_NAME = "teamocr.sqlite3"  # the store's file in data_dir


class ResultStore(Protocol):
    """Where results are kept; the recorder writes, the web reads."""

    def add_queued(self, rec: ResultRecord) -> ResultRecord: ...
    def add_duplicate(self, rec: ResultRecord) -> ResultRecord: ...
    def mark_processing(self, result_id: str, attempts: int, page_count: int | None = None) -> ResultRecord | None: ...
    def complete(
        self,
        result_id: str,
        *,
        width: int | None,
        height: int | None,
        lines: builtins.list[dict[str, Any]],
        text: str,
        timings: Mapping[str, float],
        engine_version: str | None,
        model_version: str | None,
        finished_at: float,
        page_count: int = 1,
        pages: builtins.list[dict[str, Any]] | None = None,
        settings: Mapping[str, Any] | None = None,
        reread: bool = False,
        blocks: builtins.list[dict[str, Any]] | None = None,
        tables: builtins.list[dict[str, Any]] | None = None,
    ) -> ResultRecord | None: ...
    def requeue(self, result_id: str) -> ResultRecord | None: ...
    def delete(self, result_id: str) -> ResultRecord | None: ...
    def readings(self, result_id: str) -> builtins.list[dict[str, Any]]: ...
    def fail(self, result_id: str, error: str, attempts: int, finished_at: float) -> ResultRecord | None: ...
    def get(self, result_id: str) -> ResultRecord | None: ...
    def by_md5(self, md5: str, scope: str | None = None) -> ResultRecord | None: ...
    def list(
        self,
        limit: int = 50,
        offset: int = 0,
        channel: str | None = None,
        status: Status | str | None = None,
        since: float | None = None,
        until: float | None = None,
        uploader: str | None = None,
        scope: ChannelScope | None = None,
    ) -> builtins.list[ResultRecord]: ...
    def search(
        self, query: str, limit: int = 50, channel: str | None = None, scope: ChannelScope | None = None
    ) -> builtins.list[ResultRecord]: ...
    def delete_older_than(self, cutoff: float) -> builtins.list[ResultRecord]: ...
    def counts(self, scope: ChannelScope | None = None) -> dict[str, int]: ...
    def waiting(self, scope: ChannelScope | None = None, uploader: str | None = None) -> int: ...
    def stage_seconds(self) -> dict[str, float]: ...
    def correct(self, result_id: str, line_index: int, text: str, user: str, at: float) -> ResultRecord | None: ...
    def corrections(self, result_id: str) -> builtins.list[dict[str, Any]]: ...
    def close(self) -> None: ...


# A done result's reading kept as its next earlier version (complete(reread=True)).
_KEEP_READING = """
INSERT INTO readings (result_id, version, replaced_at, finished_at, lines, text, timings, engine_version,
                      model_version, settings, page_count, pages, blocks, tables)
SELECT id, (SELECT COALESCE(MAX(version), 0) + 1 FROM readings WHERE result_id = results.id), ?, finished_at,
       lines, text, timings, engine_version, model_version, settings, page_count, pages, blocks, tables
FROM results WHERE id = ?
"""


class SqliteStore:
    """A :class:`ResultStore` in one SQLite file (WAL mode, ``synchronous=NORMAL``).

    Threads: one connection per store, opened with ``check_same_thread=False`` and used
    under a lock, so a store may be shared by the threads of a process (SQLite serialises
    writers anyway, and the reads here are short). Processes: each opens its own store on
    the same file; WAL lets readers run beside the writer, and writers wait for each other
    through a 10 s busy timeout (write transactions start with ``BEGIN IMMEDIATE``).

    Times are epoch seconds. Listing and search return newest first (``created_at``, then
    insertion order); ``limit`` is capped at :data:`MAX_LIMIT`.
    """

    def __init__(self, path: Path, lock: contextlib.AbstractContextManager[Any] | None = None) -> None:
        """``lock`` guards the connection (default: a ``threading.RLock``); a process that gevent
        patched passes a native one for a store only its thread pool uses."""
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = open_connection(self.path)
        self._lock = lock if lock is not None else threading.RLock()

    # -- writes -------------------------------------------------------------------------

    def add_queued(self, rec: ResultRecord) -> ResultRecord:
        """Store a new primary result, or a duplicate of the primary result with its md5 and scope.

        ``rec`` is queued, or failed for a file that could not be read (its md5 is "", which
        never counts as a duplicate). Returns the stored row: the existing one when ``rec.id``
        is already stored, a ``duplicate`` pointing at the primary when another primary
        result of the same scope (team) has the same md5; another scope's never counts.
        """
        if rec.status not in (Status.QUEUED, Status.FAILED):
            raise ValueError(f"add_queued needs a queued or failed record, got {rec.status} for {rec.path}")
        with self._write() as conn:
            if (existing := self._get(conn, rec.id)) is not None:
                return existing
            try:
                conn.execute(INSERT_SQL, insert_params(rec))
            except sqlite3.IntegrityError:
                # The unique index on primary (scope, md5)s decides the race between intakes.
                primary = self._by_md5(conn, rec.md5, rec.scope)
                if primary is None:
                    raise
                log.info("result %s (%s) duplicates %s", rec.id, rec.path, primary.id)
                duplicate = _as_duplicate(rec, primary.id)
                conn.execute(INSERT_SQL, insert_params(duplicate))
            return self._require(conn, rec.id)

    def add_duplicate(self, rec: ResultRecord) -> ResultRecord:
        """Store a ``duplicate`` record (``duplicate_of`` set); an existing id returns its row."""
        if rec.status is not Status.DUPLICATE or not rec.duplicate_of:
            raise ValueError(
                f"add_duplicate needs status duplicate and duplicate_of, got {rec.status} "
                f"/ {rec.duplicate_of!r} for {rec.path}"
            )
        with self._write() as conn:
            if self._get(conn, rec.id) is None:
                conn.execute(INSERT_SQL, insert_params(rec))
            return self._require(conn, rec.id)

    def mark_processing(self, result_id: str, attempts: int, page_count: int | None = None) -> ResultRecord | None:
        """Queued/processing -> processing with ``attempts`` (never lowered) and, for a document
        whose pages are being read, its ``page_count``; else unchanged."""
        with self._write() as conn:
            conn.execute(
                "UPDATE results SET status = 'processing', attempts = MAX(attempts, ?), "
                "page_count = COALESCE(?, page_count) WHERE id = ? AND status IN ('queued', 'processing')",
                (attempts, page_count, result_id),
            )
            return self._get(conn, result_id)

    def complete(
        self,
        result_id: str,
        *,
        width: int | None,
        height: int | None,
        lines: builtins.list[dict[str, Any]],
        text: str,
        timings: Mapping[str, float],
        engine_version: str | None,
        model_version: str | None,
        finished_at: float,
        page_count: int = 1,
        pages: builtins.list[dict[str, Any]] | None = None,
        settings: Mapping[str, Any] | None = None,
        reread: bool = False,
        blocks: builtins.list[dict[str, Any]] | None = None,
        tables: builtins.list[dict[str, Any]] | None = None,
    ) -> ResultRecord | None:
        """Store the OCR result (queued/processing/failed -> done); a document's ``page_count`` and
        ``pages`` too, the engine ``settings`` it was read with, and its layout (``blocks`` in
        reading order, ``tables``).

        A done or duplicate row is left as it is, unless ``reread``: a done row's reading then
        becomes its newest earlier version (:meth:`readings`) and the new one takes its place. The
        row is returned either way.
        """
        with self._write() as conn:
            states = "('queued', 'processing', 'failed')"
            current = self._get(conn, result_id)
            if reread and current is not None and current.status == Status.DONE:
                if current.finished_at == finished_at:
                    return current  # this very reading, applied again (a replayed record)
                conn.execute(_KEEP_READING, (time.time(), result_id))
                states = "('done')"
            try:
                conn.execute(
                    "UPDATE results SET status = 'done', error = NULL, width = ?, height = ?, "
                    "lines = ?, text = ?, timings = ?, engine_version = ?, model_version = ?, "
                    "finished_at = ?, page_count = ?, pages = ?, settings = ?, blocks = ?, tables = ? "
                    f"WHERE id = ? AND status IN {states}",
                    (
                        width, height, dumps(lines), text, dumps(dict(timings)), engine_version, model_version,
                        finished_at, page_count, dumps(pages or []), dumps(dict(settings or {})),
                        dumps(blocks or []), dumps(tables or []), result_id,
                    ),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                # A failed result read at last while its content was dropped again and read as a
                # new primary: it becomes a duplicate of that one.
                self._yield_to_primary(conn, current)
            return self._get(conn, result_id)

    def _yield_to_primary(self, conn: sqlite3.Connection, row: ResultRecord | None) -> None:
        primary = self._by_md5(conn, row.md5, row.scope) if row is not None else None
        if row is None or primary is None:
            raise StoreError(self.path, "a unique index refused a result that has no primary to point at")
        log.info("result %s is now a duplicate of %s, read since with the same content", row.id, primary.id)
        conn.execute(
            "UPDATE results SET status = 'duplicate', duplicate_of = ?, error = NULL WHERE id = ?", (primary.id, row.id)
        )

    def fail(self, result_id: str, error: str, attempts: int, finished_at: float) -> ResultRecord | None:
        """Record a failure (queued/processing/failed -> failed); done and duplicate rows stay."""
        with self._write() as conn:
            conn.execute(
                "UPDATE results SET status = 'failed', error = ?, "
                "attempts = MAX(attempts, ?), finished_at = ? "
                "WHERE id = ? AND status IN ('queued', 'processing', 'failed')",
                (error, attempts, finished_at, result_id),
            )
            return self._get(conn, result_id)

    def requeue(self, result_id: str) -> ResultRecord | None:
        """A failed result queued again (``POST /results/<id>/retry``): failed -> queued, its error
        cleared; any other row is left as it is. The row, or None for an unknown id."""
        with self._write() as conn:
            try:
                conn.execute(
                    "UPDATE results SET status = 'queued', error = NULL, finished_at = NULL "
                    "WHERE id = ? AND status = 'failed'",
                    (result_id,),
                )
            except sqlite3.IntegrityError:  # its content was dropped again and read since: stays failed
                log.warning("result %s not queued again: its content has another primary now", result_id)
            return self._get(conn, result_id)

    def delete(self, result_id: str) -> ResultRecord | None:
        """Remove the result, its corrections and its earlier readings; the row removed, or None."""
        with self._write() as conn:
            row = self._get(conn, result_id)
            if row is None:
                return None
            conn.execute("DELETE FROM corrections WHERE result_id = ?", (result_id,))
            conn.execute("DELETE FROM readings WHERE result_id = ?", (result_id,))
            conn.execute("DELETE FROM results WHERE id = ?", (result_id,))
        return row

    def readings(self, result_id: str) -> builtins.list[dict[str, Any]]:
        """The earlier readings of a result read again, newest first: version, when it was
        replaced, and its lines, text, timings, versions, settings, pages, blocks and tables."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM readings WHERE result_id = ? ORDER BY version DESC", (result_id,)
            ).fetchall()
        out = []
        for row in rows:
            item = dict(row)
            del item["result_id"]
            for name in ("lines", "timings", "settings", "pages", "blocks", "tables"):
                item[name] = json.loads(item[name]) if item[name] else JSON_FIELDS[name]()
            out.append(item)
        return out

    def delete_older_than(self, cutoff: float) -> builtins.list[ResultRecord]:
        """Delete the results created before ``cutoff``; return them (oldest first)."""
        with self._write() as conn:
            rows = conn.execute(
                "SELECT * FROM results WHERE created_at < ? ORDER BY created_at, seq", (cutoff,)
            ).fetchall()
            for table in ("corrections", "readings"):
                conn.execute(
                    f"DELETE FROM {table} WHERE result_id IN (SELECT id FROM results WHERE created_at < ?)", (cutoff,)
                )
            conn.execute("DELETE FROM results WHERE created_at < ?", (cutoff,))
        if rows:
            log.info("result store %s: deleted %d results created before %s",
                     self.path, len(rows), cutoff)  # fmt: skip
        return [record_of(row) for row in rows]

    # -- reads --------------------------------------------------------------------------

    def get(self, result_id: str) -> ResultRecord | None:
        """The result with this id, or ``None``."""
        with self._read() as conn:
            return self._get(conn, result_id)

    def by_md5(self, md5: str, scope: str | None = None) -> ResultRecord | None:
        """The primary (non-duplicate) result with this md5 in dedup ``scope``, or ``None``
        (always for ""). ``scope=None`` takes the earliest primary of any scope: for tools and
        tests, never for what a team may see."""
        with self._read() as conn:
            return self._by_md5(conn, md5, scope)

    def list(
        self,
        limit: int = 50,
        offset: int = 0,
        channel: str | None = None,
        status: Status | str | None = None,
        since: float | None = None,
        until: float | None = None,
        uploader: str | None = None,
        scope: ChannelScope | None = None,
    ) -> builtins.list[ResultRecord]:
        """Results newest first; ``since`` is inclusive and ``until`` exclusive (created_at);
        ``scope`` limits the channels (a team's view)."""
        sql, params = list_query(
            limit=limit, offset=offset, channel=channel, status=status,
            since=since, until=until, uploader=uploader, scope=scope,
        )  # fmt: skip
        with self._read() as conn:
            return [record_of(row) for row in conn.execute(sql, params)]

    def search(
        self, query: str, limit: int = 50, channel: str | None = None, scope: ChannelScope | None = None
    ) -> builtins.list[ResultRecord]:
        """Results whose text or file name contains ``query`` (any case), newest first.

        Queries of 3+ characters use the trigram index as one quoted phrase, so FTS syntax
        in user input (quotes, ``*``, ``AND``, parentheses) is matched literally; shorter
        ones scan with ``LIKE``. An empty query finds nothing.
        """
        if not query.strip():
            return []
        if "\x00" in query:
            raise ValueError("search query contains a NUL character")
        sql, params = search_query(query, limit=limit, channel=channel, scope=scope)
        with self._read() as conn:
            return [record_of(row) for row in conn.execute(sql, params)]

    def counts(self, scope: ChannelScope | None = None) -> dict[str, int]:
        """The number of results in each status (every status present, zeros included). Without
        a scope (or with one that allows every channel), from the running totals: five rows."""
        clause, params = (scope or ChannelScope()).sql()
        with self._read() as conn:
            if clause == "1":
                rows = conn.execute("SELECT status, n FROM result_totals").fetchall()
            else:
                rows = conn.execute(
                    f"SELECT status, COUNT(*) FROM results AS r WHERE {clause} GROUP BY status", params
                ).fetchall()
        counts = {status.value: 0 for status in Status}
        counts.update({status: n for status, n in rows})
        return counts

    def waiting(self, scope: ChannelScope | None = None, uploader: str | None = None) -> int:
        """The results not yet read (queued or processing) in ``scope``, of ``uploader`` when given.
        Reads only the waiting rows (the status index), however large the store."""
        clause, params = (scope or ChannelScope()).sql()
        sql = f"SELECT COUNT(*) FROM results AS r WHERE r.status IN (?, ?) AND {clause}"
        values: list[Any] = [Status.QUEUED.value, Status.PROCESSING.value, *params]
        if uploader is not None:
            sql += " AND r.uploader = ?"
            values.append(uploader)
        with self._read() as conn:
            return int(conn.execute(sql, values).fetchone()[0])

    def stage_seconds(self) -> dict[str, float]:
        """Total OCR seconds per stage over all done results (for metrics), from the running totals."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT decode, detect, recognize, total FROM result_totals WHERE status = 'done'"
            ).fetchone()
        return dict(zip(("decode", "detect", "recognize", "total"), map(float, row)))

    # -- corrections -------------------------------------------------------------------

    def correct(self, result_id: str, line_index: int, text: str, user: str, at: float) -> ResultRecord | None:
        """Replace one line's text; the edit (with the text it replaced) is kept in history.

        Returns the updated result, None for an unknown id; ValueError for a line that does not exist.
        """
        with self._write() as conn:
            current = self._get(conn, result_id)
            if current is None:
                return None
            lines = [dict(line) for line in current.lines]
            if not 0 <= line_index < len(lines):
                raise ValueError(f"result {result_id} has no line {line_index} (it has {len(lines)})")
            line = lines[line_index]
            conn.execute(
                "INSERT INTO corrections (result_id, line_index, original, text, user, at) VALUES (?, ?, ?, ?, ?, ?)",
                (result_id, line_index, line["text"], text, user, at),
            )
            line.setdefault("original_text", line["text"])
            line.update(text=text, corrected_by=user, corrected_at=at)
            full = full_text(lines, current.pages)
            conn.execute(
                "UPDATE results SET lines = ?, text = ? WHERE id = ?",
                (json.dumps(lines, ensure_ascii=False), full, result_id),
            )
            return self._get(conn, result_id)

    def corrections(self, result_id: str) -> builtins.list[dict[str, Any]]:
        """Every edit of a result, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT line_index, original, text, user, at FROM corrections WHERE result_id = ? ORDER BY seq",
                (result_id,),
            ).fetchall()
        return [dict(zip(("line_index", "original", "text", "user", "at"), row)) for row in rows]

    def close(self) -> None:
        """Close the connection; later calls raise :class:`StoreError`. Safe to call twice."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._connection()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on error."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(self.path, "the store is closed")
        return self._conn

    @staticmethod
    def _get(conn: sqlite3.Connection, result_id: str) -> ResultRecord | None:
        row = conn.execute("SELECT * FROM results WHERE id = ?", (result_id,)).fetchone()
        return None if row is None else record_of(row)

    @staticmethod
    def _by_md5(conn: sqlite3.Connection, md5: str, scope: str | None) -> ResultRecord | None:
        if scope is None:
            row = conn.execute(
                f"SELECT * FROM results WHERE md5 = ? AND {PRIMARY_MD5} ORDER BY created_at, seq LIMIT 1", (md5,)
            ).fetchone()
        else:
            row = conn.execute(
                f"SELECT * FROM results WHERE scope = ? AND md5 = ? AND {PRIMARY_MD5}", (scope, md5)
            ).fetchone()
        return None if row is None else record_of(row)

    def _require(self, conn: sqlite3.Connection, result_id: str) -> ResultRecord:
        rec = self._get(conn, result_id)
        if rec is None:  # we just wrote it in this transaction
            raise StoreError(self.path, f"result {result_id} vanished after insert")
        return rec


def _as_duplicate(rec: ResultRecord, primary_id: str) -> ResultRecord:
    return dataclasses.replace(rec, status=Status.DUPLICATE, duplicate_of=primary_id)
