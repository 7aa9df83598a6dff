"""The SQLite side of the result store: schema, connection set-up and the SQL text of queries.

Versioned with ``PRAGMA user_version``: each entry of :data:`MIGRATIONS` brings the file
from version ``i`` to ``i + 1`` inside one ``BEGIN IMMEDIATE`` transaction, so several
processes opening a new file at once create the schema exactly once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon.errors import DaemonError
from daemon.private import FILE_MODE, private_dir, private_file, tighten_mode
from daemon.records import FIELD_NAMES, JSON_FIELDS, ResultRecord, Status, parse_status
from daemon.results.teams import ChannelScope

log = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 10.0
# FTS5's trigram tokenizer arrived in SQLite 3.34.0.
MIN_SQLITE = (3, 34, 0)
SIDE_FILES = ("-wal", "-shm", "-journal")  # what SQLite keeps beside a database file

_V1 = """
CREATE TABLE results (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    md5            TEXT NOT NULL,
    path           TEXT NOT NULL,
    filename       TEXT NOT NULL,
    channel        TEXT NOT NULL,
    size           INTEGER NOT NULL,
    width          INTEGER,
    height         INTEGER,
    status         TEXT NOT NULL
                   CHECK (status IN ('queued', 'processing', 'done', 'duplicate', 'failed')),
    error          TEXT,
    lines          TEXT NOT NULL DEFAULT '[]',
    text           TEXT NOT NULL DEFAULT '',
    timings        TEXT NOT NULL DEFAULT '{}',
    engine_version TEXT,
    model_version  TEXT,
    duplicate_of   TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    created_at     REAL NOT NULL,
    finished_at    REAL,
    uploader       TEXT
);
-- One primary result per md5; duplicates point at it. md5 '' is a file that was never read.
CREATE UNIQUE INDEX results_primary_md5 ON results(md5) WHERE status != 'duplicate' AND md5 != '';
CREATE INDEX results_created ON results(created_at, seq);
CREATE INDEX results_channel_created ON results(channel, created_at);
CREATE INDEX results_status_created ON results(status, created_at);
CREATE INDEX results_uploader_created ON results(uploader, created_at);

-- External-content FTS over text and filename; trigram works for Chinese (no word breaks)
-- as well as English, and folds case.
CREATE VIRTUAL TABLE results_fts USING fts5(
    text, filename, content='results', content_rowid='seq', tokenize='trigram'
);
CREATE TRIGGER results_fts_insert AFTER INSERT ON results BEGIN
    INSERT INTO results_fts(rowid, text, filename) VALUES (new.seq, new.text, new.filename);
END;
CREATE TRIGGER results_fts_delete AFTER DELETE ON results BEGIN
    INSERT INTO results_fts(results_fts, rowid, text, filename)
    VALUES ('delete', old.seq, old.text, old.filename);
END;
CREATE TRIGGER results_fts_update AFTER UPDATE OF text, filename ON results BEGIN
    INSERT INTO results_fts(results_fts, rowid, text, filename)
    VALUES ('delete', old.seq, old.text, old.filename);
    INSERT INTO results_fts(rowid, text, filename) VALUES (new.seq, new.text, new.filename);
END;
"""

# v2: corrections made in the dashboard; the result's lines show the latest text, this table
# keeps every edit with who, when and the text it replaced.
_V2 = """
CREATE TABLE corrections (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    result_id TEXT NOT NULL REFERENCES results(id) ON DELETE CASCADE,
    line_index INTEGER NOT NULL,
    original TEXT NOT NULL,
    text TEXT NOT NULL,
    user TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX corrections_result ON corrections(result_id, seq);
"""

# v3: dedup scoped by team. A result is a duplicate only of a primary of the same scope (the team
# of its channel when stored, see daemon.results.teams.TeamMap.dedup_scope). Rows stored before keep
# scope '' (their own, legacy scope): kept as they are, never a primary for a newer file.
_V3 = """
ALTER TABLE results ADD COLUMN scope TEXT NOT NULL DEFAULT '';
DROP INDEX results_primary_md5;
-- One primary result per md5 and scope; duplicates point at the primary of their own scope.
CREATE UNIQUE INDEX results_primary_scope_md5 ON results(scope, md5) WHERE status != 'duplicate' AND md5 != '';
"""

# v4: running totals per status (rows, and OCR seconds per stage), kept by triggers in the same
# transaction as every write, by whichever process writes: /metrics reads five rows instead of
# scanning every result.
_STAGES = ("decode", "detect", "recognize", "total")


def _stage(row: str, stage: str) -> str:
    """SQL: the seconds of ``stage`` in the timings of ``row`` (``new``, ``old``, ``r``), 0 if none."""
    return f"COALESCE(CASE WHEN json_valid({row}.timings) THEN json_extract({row}.timings, '$.{stage}') END, 0)"


def _move(row: str, sign: str) -> str:
    """SQL: add (``+``) or take (``-``) ``row`` to or from its status's totals."""
    sets = ",\n        ".join([f"n = n {sign} 1", *(f"{s} = {s} {sign} {_stage(row, s)}" for s in _STAGES)])
    return f"    UPDATE result_totals SET\n        {sets}\n    WHERE status = {row}.status;\n"


def _filled(stage: str) -> str:
    total = f"SELECT COALESCE(SUM({_stage('r', stage)}), 0)"
    return f"    {stage} = ({total}\n        FROM results AS r WHERE r.status = result_totals.status)"


_V4 = (
    """
CREATE TABLE result_totals (
    status    TEXT PRIMARY KEY,
    n         INTEGER NOT NULL DEFAULT 0,
    decode    REAL NOT NULL DEFAULT 0,
    detect    REAL NOT NULL DEFAULT 0,
    recognize REAL NOT NULL DEFAULT 0,
    total     REAL NOT NULL DEFAULT 0
);
INSERT INTO result_totals(status) VALUES ('queued'), ('processing'), ('done'), ('duplicate'), ('failed');
UPDATE result_totals SET
    n = (SELECT COUNT(*) FROM results AS r WHERE r.status = result_totals.status),
"""
    + ",\n".join(_filled(stage) for stage in _STAGES)
    + ";\nCREATE TRIGGER results_totals_insert AFTER INSERT ON results BEGIN\n"
    + _move("new", "+")
    + "END;\nCREATE TRIGGER results_totals_delete AFTER DELETE ON results BEGIN\n"
    + _move("old", "-")
    + "END;\nCREATE TRIGGER results_totals_update AFTER UPDATE OF status, timings ON results BEGIN\n"
    + _move("old", "-")
    + _move("new", "+")
    + "END;\n"
)

# v5: documents. A result may be a PDF or a multi-page TIFF: how many pages it has, and per page
# its number, size and turn (or its error); each line of ``lines`` carries its ``page``.
_V5 = """
ALTER TABLE results ADD COLUMN page_count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE results ADD COLUMN pages TEXT NOT NULL DEFAULT '[]';
"""

# v6: the engine settings a result was read with (those a channel may set: [channels]), the path's
# bytes when they are not UTF-8 (``path`` holds the decoded name), and the earlier readings of a
# result read again (POST /reprocess), newest version highest. A failed result no longer holds its
# content's primary place: the same bytes dropped again are read as a new primary.
_V6 = """
ALTER TABLE results ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE results ADD COLUMN raw_path TEXT NOT NULL DEFAULT '';
DROP INDEX results_primary_scope_md5;
CREATE UNIQUE INDEX results_primary_scope_md5 ON results(scope, md5)
    WHERE status NOT IN ('duplicate', 'failed') AND md5 != '';
CREATE TABLE readings (
    result_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    replaced_at REAL NOT NULL,
    finished_at REAL,
    lines TEXT NOT NULL,
    text TEXT NOT NULL,
    timings TEXT NOT NULL,
    engine_version TEXT,
    model_version TEXT,
    settings TEXT NOT NULL,
    page_count INTEGER NOT NULL,
    pages TEXT NOT NULL,
    PRIMARY KEY (result_id, version)
);
"""

# v7: the layout of a reading: its blocks in reading order and its tables (engine.types), on the
# result and on each earlier reading. Rows read before keep [] (the viewer lays them out from lines).
_V7 = """
ALTER TABLE results ADD COLUMN blocks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE results ADD COLUMN tables TEXT NOT NULL DEFAULT '[]';
ALTER TABLE readings ADD COLUMN blocks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE readings ADD COLUMN tables TEXT NOT NULL DEFAULT '[]';
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7)
SCHEMA_VERSION = len(MIGRATIONS)
# The partial unique index's condition; queries repeat it so that SQLite can use the index.
PRIMARY_MD5 = "status NOT IN ('duplicate', 'failed') AND md5 != ''"


class StoreError(DaemonError):
    """The result store's file cannot be opened or has an unusable schema."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"result store {path}: {reason}")
        self.path = path
        self.reason = reason


def open_connection(path: Path) -> sqlite3.Connection:
    """Open (creating folder and file as needed) a WAL-mode connection with an up-to-date schema.

    The file (and its folder, when made here) is private to this user (:func:`private_files`).

    The connection is in autocommit mode (``isolation_level=None``): callers open write
    transactions with ``BEGIN IMMEDIATE`` so that waiting for another writer goes through
    the busy timeout instead of failing when a read transaction tries to become a write one.
    """
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        need = ".".join(map(str, MIN_SQLITE))
        raise StoreError(path, f"SQLite {sqlite3.sqlite_version} lacks FTS5 trigram (need {need}+)")
    try:
        private_files(path)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(path, f"cannot open: {exc}") from exc
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        _use_wal(conn, path)
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(path, f"cannot prepare: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def private_files(path: Path) -> None:
    """Make the database at ``path`` ``0600`` before SQLite opens it (its folder ``0700`` when it is
    made here): SQLite gives the ``-wal``, ``-shm`` and ``-journal`` files it creates the database's
    own mode. A file an older version left readable by others (and its WAL files) is tightened.
    Raises ``OSError``."""
    private_dir(path.parent, tighten=False)  # an existing folder is the operator's (data_dir: cli.folders)
    private_file(path)
    for suffix in SIDE_FILES:
        tighten_mode(path.with_name(path.name + suffix), FILE_MODE)


def _use_wal(conn: sqlite3.Connection, path: Path) -> None:
    """Switch the file to WAL (a persistent setting), retrying while others hold it.

    Switching needs an exclusive lock and SQLite does not call the busy handler for it, so
    two processes opening a new file at once would otherwise fail with "database is locked".
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    delay = 0.005
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    if mode != "wal":  # e.g. a file system without shared memory
        log.warning("result store %s: journal mode is %s, not wal", path, mode)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema up to :data:`SCHEMA_VERSION`; a file from a newer version is refused."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(path, f"schema version {version} is newer than {SCHEMA_VERSION}")
        for step in range(version, SCHEMA_VERSION):
            log.info("result store %s: schema %d -> %d", path, step, step + 1)
            for statement in _statements(MIGRATIONS[step]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split a script into statements (``executescript`` would commit our transaction)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending.strip()[:60]}")
    return statements


# -- SQL text and row conversion used by daemon.results.store ------------------------------------

MAX_LIMIT = 500
# Shorter queries have no trigram to match, so they scan with LIKE instead.
MIN_FTS_QUERY = 3

_COLUMNS = tuple(sorted(FIELD_NAMES))
INSERT_SQL = f"INSERT INTO results ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + name for name in _COLUMNS)})"
NEWEST_FIRST = "ORDER BY r.created_at DESC, r.seq DESC"


def insert_params(rec: ResultRecord) -> dict[str, Any]:
    """Named parameters of :data:`INSERT_SQL` for ``rec`` (lines and timings as JSON text)."""
    params = rec.to_item()
    for name in JSON_FIELDS:
        params[name] = dumps(getattr(rec, name))
    return params


def record_of(row: sqlite3.Row) -> ResultRecord:
    """The record stored in a ``results`` row."""
    return ResultRecord.from_row(dict(row))


def dumps(value: Sequence[Any] | Mapping[str, Any]) -> str:
    """Compact JSON that keeps Chinese readable in the file."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def list_query(
    *,
    limit: int,
    offset: int,
    channel: str | None,
    status: Status | str | None,
    since: float | None,
    until: float | None,
    uploader: str | None,
    scope: ChannelScope | None = None,
) -> tuple[str, list[Any]]:
    """SQL and parameters of ``SqliteStore.list``."""
    where: list[str] = []
    params: list[Any] = []
    if scope is not None:
        clause, values = scope.sql()
        where.append(clause)
        params.extend(values)
    for clause, value in (
        ("r.channel = ?", channel),
        ("r.status = ?", None if status is None else parse_status(status).value),
        ("r.created_at >= ?", since),
        ("r.created_at < ?", until),
        ("r.uploader = ?", uploader),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = "SELECT r.* FROM results AS r"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" {NEWEST_FIRST} LIMIT ? OFFSET ?"
    return sql, [*params, check_limit(limit), check_offset(offset)]


def search_query(
    query: str, *, limit: int, channel: str | None, scope: ChannelScope | None = None
) -> tuple[str, list[Any]]:
    """SQL and parameters of ``SqliteStore.search`` for a non-blank ``query``.

    3+ characters: one FTS5 phrase with inner quotes doubled, so user input can never be
    read as FTS syntax. Shorter: ``LIKE`` with ``%``, ``_`` and ``\\`` escaped.
    """
    needle = query.strip()
    params: list[Any]
    if len(needle) >= MIN_FTS_QUERY:
        sql = "SELECT r.* FROM results_fts AS f JOIN results AS r ON r.seq = f.rowid WHERE results_fts MATCH ?"
        params = ['"' + needle.replace('"', '""') + '"']
    else:
        pattern = "%" + escape_like(needle) + "%"
        sql = "SELECT r.* FROM results AS r WHERE (r.text LIKE ? ESCAPE '\\' OR r.filename LIKE ? ESCAPE '\\')"
        params = [pattern, pattern]
    if channel is not None:
        sql += " AND r.channel = ?"
        params.append(channel)
    if scope is not None:
        clause, values = scope.sql()
        sql += f" AND {clause}"
        params.extend(values)
    sql += f" {NEWEST_FIRST} LIMIT ?"
    return sql, [*params, check_limit(limit)]


def escape_like(text: str) -> str:
    """``text`` as a literal inside a ``LIKE ... ESCAPE '\\'`` pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def check_limit(limit: int) -> int:
    """``limit`` capped at :data:`MAX_LIMIT`; below 1 is a ``ValueError``."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return min(limit, MAX_LIMIT)


def check_offset(offset: int) -> int:
    """``offset`` itself; negative is a ``ValueError``."""
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}")
    return offset
