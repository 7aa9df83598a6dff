"""The daemon end to end: real folders, the embedded Redis, real worker processes, real weights."""

from __future__ import annotations

import shutil
import signal
from dataclasses import replace
from pathlib import Path

from daemon.queue.streams import JOBS, WORKERS_GROUP
from daemon.records import Status
from tests.daemon.servicekit import (
    EventLog,
    make_settings,
    running,
    start_worker,
    stop_process,
    store_of,
    text_image,
    write_slowly,
)
from tests.polling import wait_until

WORDS = [
    "Invoice 1043 paid",
    "Quarterly report",
    "Meeting at noon",
    "Server restarted",
    "Budget approved",
    "Ticket closed",
    "Deploy finished",
    "Coffee order",
    "Lunch receipt",
    "Parking permit",
    "Library card",
    "Train ticket",
    "Hotel booking",
    "Gym schedule",
]


def test_twenty_drops_one_result_per_content(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    staging = tmp_path / "staging"
    originals = [text_image(staging / f"img{i:02d}.png", words, seed=i) for i, words in enumerate(WORDS)]
    share = settings.shared_dir
    with running(settings, workers=1) as handle:
        events = EventLog(handle.url)
        try:
            writers = []
            for i, src in enumerate(originals):  # 14 distinct images, a third of them copied slowly
                dest = share / ("finance" if i % 2 else "") / src.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if i % 3 == 0:
                    writers.append(write_slowly(dest, src.read_bytes()))
                else:
                    shutil.copyfile(src, dest)
            for i in range(4):  # 5 duplicates under new names, one in another channel
                shutil.copyfile(originals[i], share / f"copy of {i}.png")
            (share / "sales").mkdir(exist_ok=True)
            shutil.copyfile(originals[4], share / "sales" / "again.png")
            (share / "broken.png").write_bytes(b"this is not an image at all")
            for writer in writers:
                writer.join()
            store = store_of(settings)
            wait_until(lambda: len(events.final()) >= 20, 240, "20 final events")
            rows = store.list(limit=500)
        finally:
            events.close()
    assert len(rows) == 20
    done = [r for r in rows if r.status == Status.DONE]
    dups = [r for r in rows if r.status == Status.DUPLICATE]
    failed = [r for r in rows if r.status == Status.FAILED]
    assert len(done) == 14 and len(dups) == 5 and len(failed) == 1
    assert len({r.md5 for r in done}) == 14
    by_id = {r.id: r for r in rows}
    for dup in dups:
        assert by_id[dup.duplicate_of].md5 == dup.md5 and by_id[dup.duplicate_of].status == Status.DONE
    assert "not a supported image" in failed[0].error and failed[0].filename == "broken.png"
    texts = " ".join(r.text for r in done).lower()
    assert "quarterly report" in texts and "invoice 1043" in texts
    # which copy of a content comes first is a race; every copy is recorded with its channel
    assert {r.channel for r in rows} == {"", "finance", "sales"}
    final = events.final()
    assert set(final) == {r.id for r in rows}
    assert all(final[r.id]["status"] == r.status.value for r in rows)


def test_the_same_image_in_two_teams_is_read_for_each_team(tmp_path: Path) -> None:
    base = make_settings(tmp_path)
    settings = replace(base, teams=replace(base.teams, channels="finance=alpha, sales=beta", default_team="alpha"))
    original = text_image(tmp_path / "staging" / "invoice.png", "Invoice 1043 paid", seed=3)
    with running(settings, workers=1) as handle:
        events = EventLog(handle.url)
        try:
            for dest in ("finance/alpha.png", "sales/beta.png", "finance/alpha again.png"):
                (settings.shared_dir / dest).parent.mkdir(exist_ok=True)
                shutil.copyfile(original, settings.shared_dir / dest)
            wait_until(lambda: len(events.final()) >= 3, 180, "3 final events")
            rows = store_of(settings).list()
        finally:
            events.close()
    assert len(rows) == 3 and len({r.md5 for r in rows}) == 1
    done = {r.channel: r for r in rows if r.status == Status.DONE}
    (dup,) = [r for r in rows if r.status == Status.DUPLICATE]
    assert set(done) == {"finance", "sales"}  # one primary per team, each read on its own
    assert (done["finance"].scope, done["sales"].scope) == ("alpha", "beta")
    assert all("invoice 1043" in r.text.lower() for r in done.values())
    assert dup.channel == "finance" and dup.duplicate_of == done["finance"].id and dup.scope == "alpha"
    assert events.final()[dup.id]["duplicate_of"] == done["finance"].id


def test_worker_killed_mid_batch_loses_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, batch_size=4, claim_idle_seconds=2.0)
    with running(settings, workers=0) as handle:
        events = EventLog(handle.url)
        first = start_worker(settings, handle.url)
        second = None
        try:
            for i, words in enumerate(WORDS[:8]):
                text_image(settings.shared_dir / f"k{i}.png", words, seed=100 + i)
            wait_until(lambda: any(e["status"] == "processing" for e in events.items), 120, "a job in progress")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            second = start_worker(settings, handle.url)
            wait_until(lambda: len(events.final()) >= 8, 240, "all 8 results")
            pending = handle.client.xpending(JOBS, WORKERS_GROUP)
        finally:
            events.close()
            stop_process(first)
            if second is not None:
                stop_process(second)
    rows = store_of(settings).list(limit=500)
    assert len(rows) == 8 and all(r.status == Status.DONE for r in rows)
    done_events = [e["id"] for e in events.items if e["status"] == "done"]
    assert sorted(done_events) == sorted(r.id for r in rows)  # each stored and announced exactly once
    assert pending["pending"] == 0


def test_files_dropped_while_stopped_are_processed_on_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    text_image(settings.shared_dir / "before.png", "Before the stop", seed=1)
    with running(settings, workers=1):
        wait_until(lambda: [r for r in store_of(settings).list() if r.status == Status.DONE], 120, "first result")
    for i in range(3):
        text_image(settings.shared_dir / "later" / f"while_down_{i}.png", f"Dropped while down {i}", seed=10 + i)
    with running(settings, workers=1):
        wait_until(
            lambda: len([r for r in store_of(settings).list() if r.status == Status.DONE]) >= 4,
            180,
            "files dropped while down",
        )
    rows = store_of(settings).list()
    assert len(rows) == 4 and {r.channel for r in rows} == {"", "later"}
