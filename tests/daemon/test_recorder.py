"""The recorder with a real SqliteStore, a real embedded Redis and a real event subscriber.

Records are written by the real intake where it makes them (queued, duplicate, intake failures)
and as the worker writes them otherwise. Events are read back from the Socket.IO Redis channel;
"no event" is proven by a later marker record whose event arrives while the other does not.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from daemon.intake.dedupe import Intake
from daemon.queue.streams import RECORDER_GROUP, RECORDS, add_record, md5_key
from daemon.records import ResultRecord, Status
from daemon.results.events import LATEST, LATEST_ITEMS, LatestCache, SocketIOEvents
from daemon.results.recorder import Recorder
from daemon.results.store import SqliteStore
from daemon.results.teams import TeamMap
from tests.daemon.servicekit import EventLog, embedded_redis, text_image, wait_subscribed
from tests.polling import wait_until

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

MAX_BYTES = 50 * 1024 * 1024
BLOCK_MS = 20
DAY = 86400.0


@dataclass
class Rig:
    client: redis.Redis
    store: SqliteStore
    events: EventLog
    recorder: Recorder
    url: str
    share: Path


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with embedded_redis(tmp_path / "data") as handle:
        store = SqliteStore(tmp_path / "data" / "teamocr.sqlite3")
        events = EventLog(handle.url)
        try:
            wait_subscribed(handle.client)
            recorder = Recorder(handle.client, store, sink(handle.url), LatestCache(handle.client, 200))
            yield Rig(handle.client, store, events, recorder, handle.url, tmp_path / "share")
        finally:
            events.close()
            store.close()


def sink(url: str) -> SocketIOEvents:
    """The real emitter, every channel belonging to the default team."""
    return SocketIOEvents(url, TeamMap.from_spec(""))


def done_record(rid: str, finished_at: float = 1_700_000_100.0) -> dict[str, Any]:
    """A "done" record as the worker writes it."""
    return {
        "type": "done",
        "id": rid,
        "attempts": 1,
        "finished_at": finished_at,
        "width": 720,
        "height": 160,
        "lines": [
            {"text": "Invoice 1043 paid", "points": [[20, 40], [300, 40], [300, 80], [20, 80]], "confidence": 0.98}
        ],
        "text": "Invoice 1043 paid",
        "timings": {"decode": 0.01, "total": 0.5},
        "engine_version": "teamocr-engine test",
        "model_version": "PP-OCRv6-small",
    }


def drain(recorder: Recorder) -> int:
    """Run the recorder until the stream has nothing new for it."""
    total = 0
    while (n := recorder.run_once(BLOCK_MS)) > 0:
        total += n
    return total


def events_for(rig: Rig, rid: str) -> list[str]:
    return [e["status"] for e in rig.events.items if e["id"] == rid]


def submit(rig: Rig, name: str, words: str, seed: int = 0, intake: Intake | None = None) -> dict[str, Any]:
    record = (intake or Intake(rig.client, MAX_BYTES)).submit(text_image(rig.share / name, words, seed), "")
    assert record is not None
    return record


def test_queued_processing_done_are_stored_and_announced_once_each(rig: Rig) -> None:
    rid = submit(rig, "invoice.png", "Invoice 1043 paid")["id"]
    stored = []
    for record in (None, {"type": "processing", "id": rid, "attempts": 1, "worker": "w1"}, done_record(rid)):
        if record is not None:
            add_record(rig.client, record)
        assert drain(rig.recorder) == 1
        stored.append(rig.store.get(rid))
    assert [r.status for r in stored] == [Status.QUEUED, Status.PROCESSING, Status.DONE]
    wait_until(lambda: len(events_for(rig, rid)) >= 3, 60, "3 events")
    assert events_for(rig, rid) == ["queued", "processing", "done"]
    final = rig.events.items[-1]
    assert final["text"] == "Invoice 1043 paid" and final["width"] == 720 and final["attempts"] == 1
    assert final == stored[-1].to_public()
    assert all("path" not in e for e in rig.events.items)  # clients never see server-side paths
    assert rig.client.xpending(RECORDS, RECORDER_GROUP)["pending"] == 0
    assert [i["id"] for i in LatestCache(rig.client, 200).items()] == [rid]


def test_replaying_a_done_record_changes_nothing_and_announces_nothing(rig: Rig) -> None:
    rid = submit(rig, "invoice.png", "Invoice 1043 paid")["id"]
    add_record(rig.client, done_record(rid, finished_at=1_700_000_100.0))
    drain(rig.recorder)
    before = rig.store.get(rid)
    assert before is not None and before.status == Status.DONE
    wait_until(lambda: "done" in events_for(rig, rid), 60, "the done event")
    assert rig.recorder.apply(done_record(rid, finished_at=1_700_000_999.0)) is None
    add_record(rig.client, done_record(rid, finished_at=1_700_000_999.0))
    add_record(rig.client, {"type": "processing", "id": rid, "attempts": 2, "worker": "w2"})  # a late straggler
    marker = submit(rig, "marker.png", "Quarterly report", seed=1)["id"]
    assert drain(rig.recorder) == 3
    wait_until(lambda: events_for(rig, marker), 60, "the marker's event")
    assert rig.store.get(rid) == before
    assert events_for(rig, rid) == ["queued", "done"]
    assert rig.client.xpending(RECORDS, RECORDER_GROUP)["pending"] == 0


def test_a_duplicate_is_stored_pointing_at_the_primary(rig: Rig) -> None:
    first = submit(rig, "invoice.png", "Invoice 1043 paid")
    copy = rig.share / "finance" / "copy of invoice.png"
    copy.parent.mkdir()
    shutil.copyfile(rig.share / "invoice.png", copy)
    dup = Intake(rig.client, MAX_BYTES).submit(copy, "finance")
    assert dup is not None and dup["type"] == "duplicate" and dup["duplicate_of"] == first["id"]
    assert drain(rig.recorder) == 2
    row = rig.store.get(dup["id"])
    assert row is not None and row.status == Status.DUPLICATE and row.duplicate_of == first["id"]
    assert row.channel == "finance" and row.md5 == first["md5"]
    assert rig.store.by_md5(first["md5"]).id == first["id"]  # type: ignore[union-attr]
    wait_until(lambda: events_for(rig, dup["id"]), 60, "the duplicate's event")
    assert events_for(rig, dup["id"]) == ["duplicate"]
    assert rig.events.items[-1]["duplicate_of"] == first["id"]


def test_an_intake_failure_is_stored_failed_with_its_cause(rig: Rig) -> None:
    big = text_image(rig.share / "poster.png", "Budget approved")
    record = Intake(rig.client, max_bytes=100).submit(big, "")
    assert record is not None and record["type"] == "failed" and record["md5"] == ""
    assert drain(rig.recorder) == 1
    row = rig.store.get(record["id"])
    assert row is not None and row.status == Status.FAILED and row.md5 == ""
    assert row.error is not None and "over the limit of 100" in row.error and row.filename == "poster.png"
    assert row.finished_at is not None
    wait_until(lambda: events_for(rig, record["id"]), 60, "the failure's event")
    assert events_for(rig, record["id"]) == ["failed"]


def test_a_failure_naming_server_paths_is_announced_without_them(rig: Rig) -> None:
    """The store keeps the cause as written (for the operator); the feed members see names it relative
    to the shared folder, and other server paths by their last name only."""
    recorder = Recorder(
        rig.client, rig.store, sink(rig.url), LatestCache(rig.client, 200), shared_dir=rig.share, name="redacting"
    )
    record = submit(rig, "sales/scan.png", "Quarterly plan")
    cause = f"cannot read {rig.share}/sales/scan.png: model /opt/models/rec.onnx failed"
    add_record(rig.client, {"type": "failed", "id": record["id"], "error": cause, "attempts": 1, "finished_at": 2.0})
    drain(recorder)
    row = rig.store.get(record["id"])
    assert row is not None and row.error == cause
    wait_until(lambda: "failed" in events_for(rig, record["id"]), 60, "the failure's event")
    shown = next(e for e in rig.events.items if e["id"] == record["id"] and e["status"] == "failed")
    assert shown["error"] == "cannot read sales/scan.png: model rec.onnx failed"


@pytest.mark.parametrize("delete_sources", [True, False], ids=["delete-sources", "keep-sources"])
def test_retention_removes_old_rows_their_md5_keys_and_maybe_their_files(rig: Rig, delete_sources: bool) -> None:
    old = [submit(rig, f"old{i}.png", f"Ticket {i} closed", seed=i) for i in range(2)]
    drain(rig.recorder)
    later = 2 * DAY + rig.store.get(old[0]["id"]).created_at  # type: ignore[union-attr]
    young = submit(rig, "young.png", "Train ticket", seed=9, intake=Intake(rig.client, MAX_BYTES, clock=lambda: later))
    drain(rig.recorder)
    assert all(rig.client.get(md5_key(r["md5"], r["scope"])) == r["id"] for r in [*old, young])
    keeper = Recorder(
        rig.client,
        rig.store,
        sink(rig.url),
        LatestCache(rig.client, 200),
        retention_days=1,
        delete_sources=delete_sources,
        clock=lambda: later,
    )
    assert keeper.run_once(BLOCK_MS) == 0  # no records, but retention is due at the first pass
    assert [r.id for r in rig.store.list()] == [young["id"]]
    assert all(rig.client.get(md5_key(r["md5"], r["scope"])) is None for r in old)
    assert rig.client.get(md5_key(young["md5"], young["scope"])) == young["id"]
    assert all(Path(r["path"]).exists() != delete_sources for r in old)
    assert Path(young["path"]).exists()
    assert keeper.apply_retention() == 0  # nothing more to remove


def test_the_same_content_in_two_teams_is_two_primaries_and_retention_frees_each_claim(rig: Rig) -> None:
    intake = Intake(rig.client, MAX_BYTES, teams=TeamMap.from_spec("finance=alpha, sales=beta", "alpha"))
    alpha = intake.submit(text_image(rig.share / "finance" / "a.png", "Invoice 1043 paid"), "finance")
    (rig.share / "sales").mkdir()
    shutil.copyfile(rig.share / "finance" / "a.png", rig.share / "sales" / "b.png")
    beta = intake.submit(rig.share / "sales" / "b.png", "sales")
    shutil.copyfile(rig.share / "finance" / "a.png", rig.share / "root.png")
    root = intake.submit(rig.share / "root.png", "")  # the root is the default team's: alpha
    assert alpha is not None and beta is not None and root is not None
    assert (alpha["type"], alpha["scope"], beta["type"], beta["scope"]) == ("queued", "alpha", "queued", "beta")
    assert "duplicate_of" not in beta and (root["type"], root["duplicate_of"]) == ("duplicate", alpha["id"])
    assert drain(rig.recorder) == 3
    assert rig.store.by_md5(alpha["md5"], "beta").id == beta["id"]  # type: ignore[union-attr]
    legacy = "f" * 32  # a claim from before dedup was scoped: the one global key
    rig.client.set(md5_key(legacy), "legacy-id")
    rig.store.add_queued(
        ResultRecord(
            id="legacy-id",
            md5=legacy,
            path=str(rig.share / "old.png"),
            filename="old.png",
            channel="",
            size=1,
            created_at=1.0,
        )
    )
    keeper = Recorder(
        rig.client,
        rig.store,
        sink(rig.url),
        LatestCache(rig.client, 200),
        retention_days=1,
        clock=lambda: alpha["created_at"] + 2 * DAY,
    )
    assert keeper.apply_retention() == 4
    assert [rig.client.get(md5_key(r["md5"], r["scope"])) for r in (alpha, beta)] == [None, None]
    assert rig.client.get(md5_key(legacy)) is None


def test_the_latest_cache_keeps_the_newest_items(rig: Rig) -> None:
    recorder = Recorder(rig.client, rig.store, sink(rig.url), LatestCache(rig.client, 3))
    clocks = [1_700_000_000.0 + i for i in range(5)]
    ids = [
        submit(
            rig, f"n{i}.png", f"Gym schedule {i}", seed=i, intake=Intake(rig.client, MAX_BYTES, clock=lambda t=t: t)
        )["id"]
        for i, t in enumerate(clocks)
    ]
    assert drain(recorder) == 5
    items = LatestCache(rig.client, 3).items()
    assert [i["id"] for i in items] == ids[::-1][:3]
    assert rig.client.zcard(LATEST) == 3 and rig.client.hlen(LATEST_ITEMS) == 3
    add_record(rig.client, done_record(ids[4]))
    drain(recorder)
    assert LatestCache(rig.client, 3).items()[0]["status"] == "done"  # the cached item is the newest state
    assert json.loads(rig.client.hget(LATEST_ITEMS, ids[4]))["text"] == "Invoice 1043 paid"


class LockedOnceStore:
    """Stand-in for the store at the recorder's boundary: the real SqliteStore, except that the
    first ``mark_processing`` fails as SQLite does when another writer (the web) holds the lock
    past the busy timeout."""

    def __init__(self, real: SqliteStore) -> None:
        self.real = real
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def mark_processing(self, result_id: str, attempts: int, page_count: int | None = None) -> Any:
        if not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("database is locked")
        return self.real.mark_processing(result_id, attempts, page_count)


def test_a_store_error_is_waited_out_and_the_records_applied_in_order(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    first = submit(rig, "invoice.png", "Invoice 1043 paid")["id"]
    add_record(rig.client, {"type": "processing", "id": first, "attempts": 1, "worker": "w1"})
    add_record(rig.client, done_record(first))
    second = submit(rig, "report.png", "Quarterly report", seed=1)["id"]
    store = LockedOnceStore(rig.store)
    recorder = Recorder(rig.client, store, sink(rig.url), LatestCache(rig.client, 200))  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=recorder.run, args=(stop,), name="recorder-under-test")
    thread.start()
    try:
        wait_until(
            lambda: len(events_for(rig, first)) == 3 and events_for(rig, second),
            60,
            "every record applied after the store error",
        )
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and store.failed
    assert events_for(rig, first) == ["queued", "processing", "done"]
    assert rig.store.get(first).status == Status.DONE  # type: ignore[union-attr]
    assert rig.store.get(second).status == Status.QUEUED  # type: ignore[union-attr]
    assert rig.client.xpending(RECORDS, RECORDER_GROUP)["pending"] == 0
    assert any("database is locked" in r.getMessage() for r in caplog.records if r.name == "daemon.results.recorder")


def test_an_event_whose_publish_failed_is_announced_once_when_its_record_comes_back(rig: Rig) -> None:
    """Redis away between storing and announcing: the record stays unacknowledged, and the next pass
    announces it although applying it again changes nothing (python-socketio's emitter used to log
    the failed publish and drop the event)."""
    from tests.daemon.servicekit import free_port

    rid = Intake(rig.client, MAX_BYTES).submit(text_image(rig.share / "paid.png", "Invoice 1043 paid"), "")["id"]
    add_record(rig.client, done_record(rid))
    working = rig.recorder.events
    rig.recorder.events = SocketIOEvents(f"redis://127.0.0.1:{free_port()}/0", TeamMap.from_spec(""))  # nobody there
    with pytest.raises(redis.ConnectionError):
        rig.recorder.run_once(BLOCK_MS)
    assert rig.store.get(rid).status == Status.QUEUED  # stored, then the announcement failed
    rig.recorder.events = working
    assert drain(rig.recorder) == 2
    wait_until(lambda: any(e["status"] == "done" for e in rig.events.items), 60, "the done event")
    assert [e["status"] for e in rig.events.items if e["id"] == rid] == ["queued", "done"]
    assert rig.client.xpending(RECORDS, RECORDER_GROUP)["pending"] == 0


def test_a_documents_pages_are_stored_with_it(rig: Rig) -> None:
    record = submit(rig, "report.png", "Quarterly plan")  # the recorder stores what the worker read
    pages = [
        {"page": 1, "width": 1654, "height": 2339, "rotation": 0},
        {"page": 2, "error": "page 2 cannot be rendered"},
    ]
    lines = [{**done_record(record["id"])["lines"][0], "page": 1}]
    add_record(rig.client, {**done_record(record["id"]), "lines": lines, "page_count": 2, "pages": pages})
    drain(rig.recorder)
    row = rig.store.get(record["id"])
    assert row is not None and row.status == Status.DONE
    assert (row.page_count, row.pages, row.lines[0]["page"]) == (2, pages, 1)
    assert row.to_public()["page_count"] == 2
    image = submit(rig, "scan.png", "Invoice 7", seed=3)
    add_record(rig.client, done_record(image["id"]))
    drain(rig.recorder)
    plain = rig.store.get(image["id"])
    assert plain is not None and (plain.page_count, plain.pages) == (1, [])


def test_a_documents_progress_is_announced_with_its_page_count(rig: Rig) -> None:
    """A worker's progress (a processing record with pages done of the count) is announced with
    the item; the row keeps the page count, and a later done record ends the progress."""
    rid = submit(rig, "scan.png", "Minutes of the meeting")["id"]
    drain(rig.recorder)
    for done in (0, 3):
        progress = {"type": "processing", "id": rid, "attempts": 1, "worker": "w1", "pages_done": done}
        add_record(rig.client, {**progress, "page_count": 200})
        drain(rig.recorder)
    row = rig.store.get(rid)
    assert row is not None and (row.status, row.page_count) == (Status.PROCESSING, 200)
    wait_until(lambda: len(events_for(rig, rid)) >= 3, 60, "3 events")
    shown = [(e.get("pages_done"), e["page_count"]) for e in rig.events.items if e["id"] == rid][1:]
    assert shown == [(0, 200), (3, 200)]
