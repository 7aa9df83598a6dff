"""SqliteStore on real files: round trips, md5 races, idempotency, search, listing, retention,
reopening, and writers in several threads and processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.records import ResultRecord, Status
from daemon.results.schema import SCHEMA_VERSION
from daemon.results.store import MAX_LIMIT, SqliteStore, StoreError

LINE = {"text": "发票号码 Invoice No. 42", "points": [[1, 2], [90, 2], [90, 20], [1, 20]], "confidence": 0.98}
WAIT = 60.0  # seconds; a deadline for joins, never a sleep


def rec(rid: str, created_at: float = 1000.0, **fields: Any) -> ResultRecord:
    base: dict[str, Any] = {
        "id": rid, "md5": f"md5-{rid}", "path": f"/shared/{rid}.png", "filename": f"{rid}.png",
        "channel": "", "size": 10, "created_at": created_at,
    }  # fmt: skip
    return ResultRecord(**{**base, **fields})


def finish(store: SqliteStore, rid: str, text: str, **fields: Any) -> ResultRecord | None:
    args: dict[str, Any] = {
        "width": 90, "height": 20, "lines": [{**LINE, "text": text}], "text": text,
        "timings": {"total": 0.5}, "engine_version": "e1", "model_version": "m1", "finished_at": 2000.0,
    }  # fmt: skip
    return store.complete(rid, **{**args, **fields})


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "teamocr.sqlite3"


@pytest.fixture()
def store(db: Path) -> Iterator[SqliteStore]:
    with SqliteStore(db) as opened:
        yield opened


def fts_in_sync(db: Path) -> None:
    """FTS5's own check that the index matches the content table."""
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO results_fts(results_fts, rank) VALUES ('integrity-check', 1)")
    conn.close()


# -- basics -----------------------------------------------------------------------------


def test_round_trip_with_chinese_text(store: SqliteStore, db: Path) -> None:
    queued = store.add_queued(rec("a", channel="财务", path="/shared/财务/收据.png", filename="收据.png",
                                  uploader="王"))  # fmt: skip
    assert queued.status is Status.QUEUED and queued.channel == "财务"
    done = finish(store, "a", "合计 ¥128.00\n发票号码 42")
    assert done is not None and done.status is Status.DONE
    got = store.get("a")
    assert got == done
    assert got.text == "合计 ¥128.00\n发票号码 42" and got.lines[0]["points"] == LINE["points"]
    assert got.timings == {"total": 0.5} and got.finished_at == 2000.0 and got.width == 90
    assert store.get("missing") is None
    assert db.parent.is_dir()  # the folder was created
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_counts_has_every_status(store: SqliteStore) -> None:
    assert store.counts() == {"queued": 0, "processing": 0, "done": 0, "duplicate": 0, "failed": 0}
    store.add_queued(rec("a"))
    store.add_queued(rec("b"))
    store.mark_processing("b", 1)
    store.add_queued(rec("c", md5="md5-a"))
    assert store.counts() == {"queued": 1, "processing": 1, "done": 0, "duplicate": 1, "failed": 0}


def test_bad_input_is_a_value_error(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="queued or failed"):
        store.add_queued(rec("a", status=Status.DONE))
    with pytest.raises(ValueError, match="duplicate_of"):
        store.add_duplicate(rec("b", status=Status.DUPLICATE))
    with pytest.raises(ValueError, match="limit"):
        store.list(limit=0)
    with pytest.raises(ValueError, match="offset"):
        store.list(offset=-1)
    with pytest.raises(ValueError, match="unknown status"):
        store.list(status="lost")


def test_closed_store_and_unusable_path(store: SqliteStore, tmp_path: Path) -> None:
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get("a")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="not-a-folder"):
        SqliteStore(blocker / "teamocr.sqlite3")


# -- duplicates -------------------------------------------------------------------------


def test_same_md5_becomes_a_duplicate_of_the_primary(store: SqliteStore) -> None:
    first = store.add_queued(rec("a", md5="same"))
    second = store.add_queued(rec("b", md5="same", created_at=1001.0))
    third = store.add_queued(rec("c", md5="same", created_at=1002.0))
    assert first.status is Status.QUEUED
    assert (second.status, second.duplicate_of) == (Status.DUPLICATE, "a")
    assert (third.status, third.duplicate_of) == (Status.DUPLICATE, "a")
    assert store.by_md5("same") == first
    dup = store.add_duplicate(rec("d", md5="same", status=Status.DUPLICATE, duplicate_of="a"))
    assert dup.duplicate_of == "a" and store.by_md5("same") == first


def test_dedup_is_scoped_by_team(store: SqliteStore) -> None:
    alpha = store.add_queued(rec("a", md5="same", scope="alpha"))
    beta = store.add_queued(rec("b", md5="same", scope="beta", created_at=1001.0))  # another team: its own primary
    again = store.add_queued(rec("c", md5="same", scope="alpha", created_at=1002.0))  # the race path (no Redis claim)
    assert alpha.status is Status.QUEUED and beta.status is Status.QUEUED and beta.duplicate_of is None
    assert (again.status, again.duplicate_of, again.scope) == (Status.DUPLICATE, "a", "alpha")
    assert store.by_md5("same", "alpha") == alpha and store.by_md5("same", "beta") == beta
    assert store.by_md5("same", "gamma") is None and store.by_md5("same") == alpha  # None: the earliest, any scope
    assert "scope" not in beta.to_public()  # server-side, like the path


def test_unread_files_with_empty_md5_are_never_duplicates(store: SqliteStore) -> None:
    for rid in ("a", "b"):
        row = store.add_queued(rec(rid, md5="", status=Status.FAILED, error="cannot read", finished_at=5.0))
        assert row.status is Status.FAILED and row.duplicate_of is None
    assert store.by_md5("") is None


def test_md5_race_between_two_stores_in_two_threads(db: Path) -> None:
    stores = [SqliteStore(db), SqliteStore(db)]
    rounds = 25
    barrier = threading.Barrier(2, timeout=WAIT)
    returned: dict[str, ResultRecord] = {}
    errors: list[BaseException] = []

    def intake(n: int) -> None:
        try:
            for i in range(rounds):
                barrier.wait()
                row = stores[n].add_queued(rec(f"r{i}-{n}", md5=f"race-{i}"))
                returned[row.id] = row
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=intake, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in threads) and not errors, errors
    try:
        for i in range(rounds):
            rows = [stores[0].get(f"r{i}-{n}") for n in range(2)]
            assert all(row is not None for row in rows)
            primaries = [r for r in rows if r is not None and r.status is Status.QUEUED]
            duplicates = [r for r in rows if r is not None and r.status is Status.DUPLICATE]
            assert len(primaries) == 1 and len(duplicates) == 1
            assert duplicates[0].duplicate_of == primaries[0].id
            assert stores[1].by_md5(f"race-{i}") == primaries[0]
            assert all(returned[r.id] == r for r in rows if r is not None)
    finally:
        for opened in stores:
            opened.close()


# -- idempotency and order of states ----------------------------------------------------


def test_adding_an_existing_id_returns_the_stored_row(store: SqliteStore) -> None:
    first = store.add_queued(rec("a"))
    assert store.add_queued(rec("a", path="/elsewhere.png")) == first
    finish(store, "a", "hello")
    assert store.add_queued(rec("a")).status is Status.DONE
    dup = store.add_duplicate(rec("b", md5="md5-a", status=Status.DUPLICATE, duplicate_of="a"))
    assert store.add_duplicate(rec("b", md5="md5-a", status=Status.DUPLICATE, duplicate_of="x")) == dup
    assert store.counts()["done"] == 1 and store.counts()["duplicate"] == 1


def test_mark_processing_is_idempotent_and_never_lowers_attempts(store: SqliteStore) -> None:
    store.add_queued(rec("a"))
    once = store.mark_processing("a", 2)
    assert once is not None and (once.status, once.attempts) == (Status.PROCESSING, 2)
    assert store.mark_processing("a", 2) == once
    assert store.mark_processing("a", 1) == once
    assert store.mark_processing("missing", 1) is None


@pytest.mark.parametrize("final", [Status.DONE, Status.FAILED, Status.DUPLICATE])
def test_finished_rows_never_move_back_to_processing(store: SqliteStore, final: Status) -> None:
    store.add_queued(rec("p"))
    if final is Status.DUPLICATE:
        row = store.add_queued(rec("a", md5="md5-p"))
    else:
        store.add_queued(rec("a"))
        row = finish(store, "a", "text") if final is Status.DONE else store.fail("a", "bad", 3, 9.0)
    assert row is not None and row.status is final
    assert store.mark_processing("a", 4) == row
    assert store.get("a") == row


def test_complete_twice_keeps_the_first_result(store: SqliteStore, db: Path) -> None:
    store.add_queued(rec("a"))
    store.mark_processing("a", 1)
    first = finish(store, "a", "first text")
    assert finish(store, "a", "second text", finished_at=3000.0) == first
    assert store.search("second") == [] and [r.id for r in store.search("first")] == ["a"]
    assert store.complete("missing", width=1, height=1, lines=[], text="", timings={},
                          engine_version=None, model_version=None, finished_at=1.0) is None  # fmt: skip
    fts_in_sync(db)


def test_fail_is_a_no_op_on_done_and_repeatable(store: SqliteStore) -> None:
    store.add_queued(rec("a"))
    done = finish(store, "a", "ok")
    assert store.fail("a", "late failure", 3, 5000.0) == done
    store.add_queued(rec("b"))
    failed = store.fail("b", "cannot decode b.png", 3, 10.0)
    assert failed is not None and failed.status is Status.FAILED
    assert (failed.error, failed.attempts, failed.finished_at) == ("cannot decode b.png", 3, 10.0)
    assert store.fail("b", "cannot decode b.png", 3, 10.0) == failed
    assert store.fail("b", "cannot decode b.png", 1, 10.0) == failed  # attempts never go down
    assert store.fail("missing", "x", 1, 1.0) is None


def test_a_failed_row_can_still_complete(store: SqliteStore) -> None:
    store.add_queued(rec("a"))
    store.fail("a", "timeout", 1, 10.0)
    done = finish(store, "a", "late but fine")
    assert done is not None and done.status is Status.DONE and done.error is None


def test_duplicates_are_never_completed_or_failed(store: SqliteStore) -> None:
    store.add_queued(rec("a"))
    dup = store.add_queued(rec("b", md5="md5-a"))
    assert finish(store, "b", "text") == dup
    assert store.fail("b", "x", 1, 1.0) == dup


# -- search -----------------------------------------------------------------------------


@pytest.fixture()
def searchable(store: SqliteStore) -> SqliteStore:
    texts = {
        "old": "增值税发票 合计 ¥128.00",
        "mid": "Meeting notes: the Invoice is due",
        "new": '发票号码 "quoted" (a*b) 100% done_ok',
        "other": "购物小票 收银员",
    }
    for n, (rid, text) in enumerate(texts.items()):
        store.add_queued(rec(rid, created_at=1000.0 + n, channel="财务" if rid != "other" else "超市"))
        finish(store, rid, text)
    store.add_queued(rec("named", created_at=999.0, filename="Receipt-发票.png"))
    return store


def ids(rows: list[ResultRecord]) -> list[str]:
    return [r.id for r in rows]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("发票", ["new", "old", "named"]),  # 2 characters: LIKE, file names too
        ("发票号码", ["new"]),  # 4 characters: FTS5 trigram
        ("增值税发票", ["old"]),
        ("invoice", ["mid"]),
        ("INVOICE", ["mid"]),
        ("receipt", ["named"]),
        ("ok", ["new"]),
        ("OK", ["new"]),
        ("  收银员 ", ["other"]),
        ("不存在的词", []),
    ],
)
def test_search_chinese_and_english_newest_first(searchable: SqliteStore, query: str, expected: list[str]) -> None:
    assert ids(searchable.search(query)) == expected


@pytest.mark.parametrize(
    "query",
    ['"', '""', '"quoted"', "(a*b)", "a*b", "*", "**", "(", ")", "100%", "%", "_", "e_o",
     "AND", "x OR y", "NEAR(a b)", 'fa"il', "发票 OR *", "\\", "'; DROP TABLE results; --"],
)  # fmt: skip
def test_search_syntax_in_queries_is_literal(searchable: SqliteStore, query: str) -> None:
    rows = searchable.search(query)
    for row in rows:  # whatever is found contains the query literally (ignoring case)
        assert query.strip().lower() in (row.text + row.filename).lower()
    assert searchable.counts()["done"] == 4


def test_search_finds_literal_punctuation(searchable: SqliteStore) -> None:
    assert ids(searchable.search('"quoted"')) == ["new"]
    assert ids(searchable.search("(a*b)")) == ["new"]
    assert ids(searchable.search("%")) == ["new"]
    assert ids(searchable.search("_o")) == ["new"]
    assert searchable.search("") == [] and searchable.search("   ") == []


def test_search_channel_and_limit(searchable: SqliteStore) -> None:
    assert ids(searchable.search("发票", channel="财务")) == ["new", "old"]
    assert ids(searchable.search("收银员", channel="财务")) == []
    assert ids(searchable.search("发票", limit=1)) == ["new"]


# -- listing ----------------------------------------------------------------------------


def test_list_filters_and_pagination(store: SqliteStore) -> None:
    for n in range(10):
        store.add_queued(rec(f"r{n}", created_at=100.0 + n // 2, channel="a" if n % 2 else "b",
                             uploader="li" if n < 4 else None))  # fmt: skip
    store.mark_processing("r3", 1)
    store.fail("r4", "x", 1, 1.0)
    newest_first = ["r9", "r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0"]  # ties: later insert first
    assert ids(store.list()) == newest_first
    pages = [ids(store.list(limit=3, offset=o)) for o in range(0, 12, 3)]
    assert sum(pages, []) == newest_first and pages[-1] == ["r0"]
    assert ids(store.list(channel="a")) == ["r9", "r7", "r5", "r3", "r1"]
    assert ids(store.list(status=Status.PROCESSING)) == ["r3"]
    assert ids(store.list(status="failed")) == ["r4"]
    assert ids(store.list(since=102.0)) == ["r9", "r8", "r7", "r6", "r5", "r4"]
    assert ids(store.list(since=101.0, until=103.0)) == ["r5", "r4", "r3", "r2"]
    assert ids(store.list(uploader="li")) == ["r3", "r2", "r1", "r0"]
    assert ids(store.list(channel="a", uploader="li", status="queued")) == ["r1"]


def test_list_limit_is_capped(store: SqliteStore) -> None:
    for n in range(MAX_LIMIT + 5):
        store.add_queued(rec(f"r{n}", created_at=float(n)))
    rows = store.list(limit=10_000)
    assert len(rows) == MAX_LIMIT and rows[0].id == f"r{MAX_LIMIT + 4}"
    assert len(store.search("png", limit=10_000)) == MAX_LIMIT


# -- retention and durability -----------------------------------------------------------


def test_delete_older_than(store: SqliteStore, db: Path) -> None:
    for n in range(5):
        store.add_queued(rec(f"r{n}", created_at=100.0 + n, md5=f"m{n}"))
        finish(store, f"r{n}", f"收据 number {n}")
    removed = store.delete_older_than(102.0)
    assert ids(removed) == ["r0", "r1"] and removed[0].text == "收据 number 0"
    assert store.get("r0") is None and ids(store.list()) == ["r4", "r3", "r2"]
    assert ids(store.search("收据 number")) == ["r4", "r3", "r2"]
    assert ids(store.search("收据")) == ["r4", "r3", "r2"]
    assert store.delete_older_than(102.0) == []
    assert store.add_queued(rec("again", md5="m0")).status is Status.QUEUED  # md5 freed
    fts_in_sync(db)


def test_survives_reopen(db: Path) -> None:
    with SqliteStore(db) as first:
        first.add_queued(rec("a"))
        finish(first, "a", "持久 durable")
        first.add_queued(rec("b", md5="md5-a"))
    with SqliteStore(db) as again:
        assert again.get("a") is not None and again.get("a").text == "持久 durable"  # type: ignore[union-attr]
        assert ids(again.search("DURABLE")) == ["a"]
        assert again.counts()["duplicate"] == 1
        assert again.add_queued(rec("c", md5="md5-a")).duplicate_of == "a"


# -- concurrency ------------------------------------------------------------------------


def test_one_store_shared_by_threads(store: SqliteStore, db: Path) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                rid = f"t{n}-{i}"
                store.add_queued(rec(rid, created_at=float(i)))
                store.mark_processing(rid, 1)
                finish(store, rid, f"线程 thread {n} row {i}")
                store.search("thread")
                store.counts()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in threads) and not errors, errors
    assert store.counts()["done"] == 160
    fts_in_sync(db)


def _write_rows(db: str, worker: int, rows: int, start: Any, report: Any) -> None:
    """A spawned process: its own store on the shared file, one write per row."""
    try:
        start.wait(WAIT)
        with SqliteStore(Path(db)) as store:
            for i in range(rows):
                rid = f"p{worker}-{i}"
                store.add_queued(rec(rid, created_at=float(i)))
                if i % 2:
                    finish(store, rid, f"进程 process {worker} row {i}")
                store.list(limit=5)
        report.put((worker, "ok"))
    except BaseException:
        report.put((worker, traceback.format_exc()))


def test_writers_in_two_processes(db: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    report = ctx.Queue()
    procs = [ctx.Process(target=_write_rows, args=(str(db), n, 100, start, report)) for n in range(2)]
    for proc in procs:
        proc.start()
    try:
        outcomes = dict(report.get(timeout=WAIT) for _ in procs)
    finally:
        for proc in procs:
            proc.join(WAIT)
            if proc.is_alive():
                proc.kill()
                proc.join()
        report.close()
        report.join_thread()
    assert outcomes == {0: "ok", 1: "ok"}
    assert all(proc.exitcode == 0 for proc in procs)
    with SqliteStore(db) as store:
        assert store.counts() == {"queued": 100, "processing": 0, "done": 100, "duplicate": 0, "failed": 0}
        assert len(store.search("process 1")) == 50
    fts_in_sync(db)


def test_a_failed_primary_gives_its_content_up_and_a_late_reading_of_it_turns_duplicate(store: SqliteStore) -> None:
    """A failed result holds no primary place: the same content stored again is a new primary and
    is read; the failed one, read at last (a late done) becomes its duplicate, and a retry of it
    leaves it failed (its content has another primary)."""
    store.add_queued(rec("a", md5="same"))
    store.fail("a", "share briefly unreadable", 3, 1500.0)
    again = store.add_queued(rec("b", md5="same", created_at=1001.0))
    assert again.status is Status.QUEUED and store.by_md5("same") == again
    done = finish(store, "b", "Invoice 8 paid")
    assert done is not None and done.status is Status.DONE
    requeued = store.requeue("a")
    assert requeued is not None and requeued.status is Status.FAILED
    late = finish(store, "a", "Invoice 8 paid", finished_at=2100.0)
    assert late is not None and (late.status, late.duplicate_of) == (Status.DUPLICATE, "b")


def test_a_reread_keeps_the_old_reading_once(store: SqliteStore) -> None:
    store.add_queued(rec("a"))
    finish(store, "a", "first reading")
    again = finish(store, "a", "second reading", finished_at=3000.0, reread=True)
    assert again is not None and again.text == "second reading"
    replay = finish(store, "a", "second reading", finished_at=3000.0, reread=True)  # the same record again
    assert replay is not None and replay.text == "second reading"
    assert [(r["version"], r["text"]) for r in store.readings("a")] == [(1, "first reading")]
    assert finish(store, "a", "not a reread", finished_at=4000.0).text == "second reading"  # type: ignore[union-attr]
