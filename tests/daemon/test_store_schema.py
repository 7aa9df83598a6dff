"""The store's schema on real files: an older store migrates keeping its rows, a newer one is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from daemon.records import Status
from daemon.results.schema import SCHEMA_VERSION
from daemon.results.store import SqliteStore, StoreError
from tests.daemon.test_store import fts_in_sync, ids, rec


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "teamocr.sqlite3"


# The v2 schema (before dedup was scoped by team), as its migrations wrote it.
V2_RESULTS = """
CREATE TABLE results (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, md5 TEXT NOT NULL, path TEXT NOT NULL,
    filename TEXT NOT NULL, channel TEXT NOT NULL, size INTEGER NOT NULL, width INTEGER, height INTEGER,
    status TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'done', 'duplicate', 'failed')),
    error TEXT, lines TEXT NOT NULL DEFAULT '[]', text TEXT NOT NULL DEFAULT '', timings TEXT NOT NULL DEFAULT '{}',
    engine_version TEXT, model_version TEXT, duplicate_of TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, finished_at REAL, uploader TEXT
);
CREATE UNIQUE INDEX results_primary_md5 ON results(md5) WHERE status != 'duplicate' AND md5 != '';
CREATE INDEX results_created ON results(created_at, seq);
CREATE INDEX results_channel_created ON results(channel, created_at);
CREATE INDEX results_status_created ON results(status, created_at);
CREATE INDEX results_uploader_created ON results(uploader, created_at);
CREATE VIRTUAL TABLE results_fts USING fts5(text, filename, content='results', content_rowid='seq', tokenize='trigram');
CREATE TRIGGER results_fts_insert AFTER INSERT ON results BEGIN
    INSERT INTO results_fts(rowid, text, filename) VALUES (new.seq, new.text, new.filename);
END;
CREATE TRIGGER results_fts_delete AFTER DELETE ON results BEGIN
    INSERT INTO results_fts(results_fts, rowid, text, filename) VALUES ('delete', old.seq, old.text, old.filename);
END;
CREATE TRIGGER results_fts_update AFTER UPDATE OF text, filename ON results BEGIN
    INSERT INTO results_fts(results_fts, rowid, text, filename) VALUES ('delete', old.seq, old.text, old.filename);
    INSERT INTO results_fts(rowid, text, filename) VALUES (new.seq, new.text, new.filename);
END;
CREATE TABLE corrections (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, result_id TEXT NOT NULL REFERENCES results(id) ON DELETE CASCADE,
    line_index INTEGER NOT NULL, original TEXT NOT NULL, text TEXT NOT NULL, user TEXT NOT NULL, at REAL NOT NULL
);
CREATE INDEX corrections_result ON corrections(result_id, seq);
INSERT INTO results (id, md5, path, filename, channel, size, status, lines, text, created_at, finished_at)
VALUES ('old', 'm1', '/s/finance/a.png', 'a.png', 'finance', 9, 'done', '[]', 'legacy invoice 7', 10.0, 11.0);
INSERT INTO results (id, md5, path, filename, channel, size, status, duplicate_of, created_at)
VALUES ('old-dup', 'm1', '/s/sales/b.png', 'b.png', 'sales', 9, 'duplicate', 'old', 12.0);
INSERT INTO corrections (result_id, line_index, original, text, user, at) VALUES ('old', 0, 'x', 'y', 'bob', 13.0);
INSERT INTO results (id, md5, path, filename, channel, size, status, timings, created_at, finished_at)
VALUES ('timed', 'm2', '/s/c.png', 'c.png', '', 9, 'done', '{"detect": 0.25, "total": 1.5}', 14.0, 15.0);
INSERT INTO results (id, md5, path, filename, channel, size, status, timings, created_at)
VALUES ('odd', 'm3', '/s/d.png', 'd.png', '', 9, 'failed', 'not json', 16.0);
PRAGMA user_version = 2;
"""


def test_a_v2_store_migrates_keeping_its_rows(db: Path) -> None:
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.executescript(V2_RESULTS)
    conn.close()
    with SqliteStore(db) as store:
        old, dup = store.get("old"), store.get("old-dup")
        assert old is not None and (old.status, old.text, old.scope) == (Status.DONE, "legacy invoice 7", "")
        assert dup is not None and (dup.status, dup.duplicate_of, dup.scope) == (Status.DUPLICATE, "old", "")
        assert ids(store.search("legacy")) == ["old"] and store.corrections("old")[0]["user"] == "bob"
        assert store.by_md5("m1", "") == old  # the rows kept their (legacy) scope ...
        new = store.add_queued(rec("new", md5="m1", scope="alpha", created_at=20.0))
        assert new.status is Status.QUEUED  # ... which is never a primary for a newer file of a team
        assert store.add_queued(rec("new2", md5="m1", scope="alpha", created_at=21.0)).duplicate_of == "new"
        # the running totals start from the rows already there (a timing that is no JSON counts 0)
        assert store.counts() == {"queued": 1, "processing": 0, "done": 2, "duplicate": 2, "failed": 1}
        assert store.stage_seconds() == {"decode": 0.0, "detect": 0.25, "recognize": 0.0, "total": 1.5}
    fts_in_sync(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert "results_primary_scope_md5" in indexes and "results_primary_md5" not in indexes


def test_newer_schema_is_refused(db: Path) -> None:
    SqliteStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match=f"{db.name}.*newer"):
        SqliteStore(db)


def test_running_totals_follow_every_write(db: Path) -> None:
    """Totals kept by triggers equal a count of the rows after adds, duplicates, completions,
    failures, retention and a write from a second connection (another process's store)."""
    with SqliteStore(db) as store, SqliteStore(db) as other:
        for n in range(6):
            store.add_queued(rec(f"r{n}", md5=f"m{n}", created_at=float(n)))
        store.add_queued(rec("dup", md5="m0", created_at=7.0))
        store.mark_processing("r1", 1)
        store.complete("r2", width=1, height=1, lines=[], text="", timings={"detect": 0.5, "total": 2.0},
                       engine_version="e", model_version="m", finished_at=9.0)  # fmt: skip
        other.complete("r3", width=1, height=1, lines=[], text="", timings={"total": 1.0},
                       engine_version="e", model_version="m", finished_at=9.0)  # fmt: skip
        store.fail("r4", "broken", 1, 9.0)
        store.delete_older_than(0.5)  # retention: r0, the only row created before 0.5
        with sqlite3.connect(db) as conn:
            counted = dict(conn.execute("SELECT status, COUNT(*) FROM results GROUP BY status").fetchall())
        conn.close()
        assert store.counts() == {status.value: counted.get(status.value, 0) for status in Status}
        assert other.stage_seconds() == {"decode": 0.0, "detect": 0.5, "recognize": 0.0, "total": 3.0}
