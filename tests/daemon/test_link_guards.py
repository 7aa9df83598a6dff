"""Links and swaps at each stage: the stability tracker, the intake, the worker's read and retention.

A member who may write ``sales/`` turns a file, or a folder, into a link to ``finance/``: no stage may
read (or delete) finance's file as the sales file. Real files, a real embedded Redis, the real engine.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.settings import DaemonSettings, EngineSettings
from daemon.intake.dedupe import Intake
from daemon.intake.stability import StabilityTracker
from daemon.queue.redisconn import RedisHandle
from daemon.queue.streams import JOBS, Job
from daemon.results.events import LatestCache, SocketIOEvents
from daemon.results.recorder import Recorder
from daemon.results.store import SqliteStore
from daemon.results.teams import TeamMap
from daemon.worker.loop import Worker
from daemon.worker.sourcefile import read_queued
from engine.errors import ImageError
from engine.pipeline import OcrEngine, build_engine
from tests.daemon.servicekit import embedded_redis, records, text_image

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

MAX_BYTES = 50 * 1024 * 1024
BLOCK_MS = 20
TEAMS = "finance=ops, sales=sales"


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return build_engine(EngineSettings(threads=1))


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[RedisHandle]:
    with embedded_redis(tmp_path / "data") as handle:
        yield handle


@pytest.fixture
def client(handle: RedisHandle) -> redis.Redis:
    return handle.client


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    text_image(root / "finance" / "payroll.png", "Payroll secret")
    (root / "sales").mkdir()
    return root


def intake(client: redis.Redis, share: Path) -> Intake:
    return Intake(client, MAX_BYTES, teams=TeamMap.from_spec(TEAMS), shared_dir=share)


def final_of(client: redis.Redis, rid: str) -> dict:
    [last] = [r for r in records(client) if r["id"] == rid and r["type"] in ("done", "failed")][-1:]
    return last


def swap_for_link(path: Path, target: Path) -> None:
    """``ln -s target dir/.l; mv -f dir/.l path``."""
    link = path.with_name(".l")
    link.symlink_to(target)
    os.replace(link, path)


# -- the stability tracker -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_pending_file_swapped_for_a_link_is_dropped(share: Path) -> None:
    clock = Clock()
    tracker = StabilityTracker(1.0, clock, root=share)
    path = share / "sales" / "x.png"
    path.write_bytes(b"")
    tracker.observe(path)
    swap_for_link(path, share / "finance" / "payroll.png")
    clock.now += 10
    assert tracker.due() == [] and path not in tracker


def test_a_pending_file_whose_folder_became_a_link_is_dropped(share: Path) -> None:
    clock = Clock()
    tracker = StabilityTracker(1.0, clock, root=share)
    path = share / "sales" / "reports" / "payroll.png"
    path.parent.mkdir()
    path.write_bytes(b"")
    other = share / "sales" / "other.png"
    other.write_bytes(b"fine")
    tracker.observe(path)
    tracker.observe(other)
    shutil.rmtree(path.parent)
    (share / "finance" / "reports").mkdir()
    shutil.copyfile(share / "finance" / "payroll.png", share / "finance" / "reports" / "payroll.png")
    path.parent.symlink_to(share / "finance" / "reports", target_is_directory=True)
    clock.now += 10
    assert tracker.due() == [other]


def test_with_follow_symlinks_a_link_is_tracked_through(share: Path) -> None:
    clock = Clock()
    tracker = StabilityTracker(1.0, clock, root=share, follow_symlinks=True)
    target = share / "sales" / "real.png"
    target.write_bytes(b"data")
    (share / "sales" / "alias.png").symlink_to(target)
    tracker.observe(share / "sales" / "alias.png")
    clock.now += 10
    assert tracker.due() == [share / "sales" / "alias.png"]  # the intake then checks where it leads


# -- the intake ------------------------------------------------------------------------------------


def test_the_intake_records_a_file_under_a_linked_folder_as_refused(client: redis.Redis, share: Path) -> None:
    (share / "sales" / "reports").symlink_to(share / "finance", target_is_directory=True)
    message = intake(client, share).submit(share / "sales" / "reports" / "payroll.png", "sales")
    assert message is not None and message["type"] == "failed"
    assert "its folder sales/reports is a symbolic link" in message["error"], message
    assert str(share) not in message["error"]
    assert client.xlen(JOBS) == 0
    assert [r["type"] for r in records(client)] == ["failed"]  # recorded, so the member sees why


def test_the_intake_records_a_file_that_is_a_link_as_refused(client: redis.Redis, share: Path) -> None:
    path = share / "sales" / "x.png"
    path.symlink_to(share / "finance" / "payroll.png")
    message = intake(client, share).submit(path, "sales")
    assert message is not None and message["type"] == "failed" and "symbolic link" in message["error"]
    assert client.xlen(JOBS) == 0


def test_the_intake_refuses_a_file_outside_its_channel_folder(client: redis.Redis, share: Path) -> None:
    message = intake(client, share).submit(share / "finance" / "payroll.png", "sales")
    assert message is not None and message["type"] == "failed"
    assert "not in the folder of channel 'sales'" in message["error"]


def test_with_follow_symlinks_a_link_into_another_channel_is_refused(client: redis.Redis, share: Path) -> None:
    path = share / "sales" / "x.png"
    path.symlink_to(share / "finance" / "payroll.png")
    follow = Intake(client, MAX_BYTES, teams=TeamMap.from_spec(TEAMS), shared_dir=share, follow_symlinks=True)
    message = follow.submit(path, "sales")
    assert message is not None and message["type"] == "failed" and "out of channel 'sales'" in message["error"]


def test_the_job_carries_the_identity_of_the_file_hashed(client: redis.Redis, share: Path) -> None:
    path = text_image(share / "sales" / "x.png", "Sales invoice")
    message = intake(client, share).submit(path, "sales")
    assert message is not None and message["type"] == "queued"
    [(_, fields)] = client.xrange(JOBS)
    job = Job.from_json(fields["job"])
    st = os.stat(path)
    assert job.identity == [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


# -- the worker's read -----------------------------------------------------------------------------


def worker(client: redis.Redis, engine: OcrEngine, share: Path | None) -> Worker:
    return Worker(client, engine, DaemonSettings(batch_size=2), "w1", shared_dir=share)


def test_a_queued_file_swapped_for_a_link_to_the_same_bytes_is_refused(
    client: redis.Redis, engine: OcrEngine, share: Path
) -> None:
    """Even when the link leads to a file with the very bytes hashed (so the MD5 check passes)."""
    path = share / "sales" / "x.png"
    shutil.copyfile(share / "finance" / "payroll.png", path)
    message = intake(client, share).submit(path, "sales")
    assert message is not None and message["type"] == "queued"
    swap_for_link(path, share / "finance" / "payroll.png")
    assert worker(client, engine, share).run_once(BLOCK_MS) == 1
    final = final_of(client, message["id"])
    assert final["type"] == "failed" and "symbolic link" in final["error"], final
    assert final["attempts"] == 1  # refused for good, not retried


def test_a_queued_file_under_a_folder_swapped_for_a_link_is_refused(
    client: redis.Redis, engine: OcrEngine, share: Path
) -> None:
    path = share / "sales" / "q3" / "payroll.png"
    path.parent.mkdir()
    shutil.copyfile(share / "finance" / "payroll.png", path)
    message = intake(client, share).submit(path, "sales")
    assert message is not None and message["type"] == "queued"
    shutil.rmtree(path.parent)
    path.parent.symlink_to(share / "finance", target_is_directory=True)
    assert worker(client, engine, share).run_once(BLOCK_MS) == 1
    final = final_of(client, message["id"])
    assert final["type"] == "failed" and "its folder sales/q3 is a symbolic link" in final["error"], final


def test_a_queued_file_replaced_by_another_with_the_same_bytes_is_refused(
    client: redis.Redis, engine: OcrEngine, share: Path
) -> None:
    """Another inode at the path (a hard link to finance's file, a copy): not the file intake hashed."""
    path = share / "sales" / "x.png"
    shutil.copyfile(share / "finance" / "payroll.png", path)
    message = intake(client, share).submit(path, "sales")
    assert message is not None and message["type"] == "queued"
    os.unlink(path)
    os.link(share / "finance" / "payroll.png", path)
    assert worker(client, engine, share).run_once(BLOCK_MS) == 1
    final = final_of(client, message["id"])
    assert final["type"] == "failed" and "changed after it was queued" in final["error"], final


def test_a_device_number_changed_with_its_whole_folder_is_the_same_file(share: Path) -> None:
    """A share mounted again may come back under another device number: the file and its folder
    moved together is no swap; the file alone on another device is."""
    path = text_image(share / "sales" / "x.png", "Sales invoice")
    st, where = os.stat(path), os.stat(path.parent)
    data = path.read_bytes()
    md5 = hashlib.md5(data).hexdigest()
    old_dev = st.st_dev + 1
    identity = [old_dev, st.st_ino, st.st_size, st.st_mtime_ns]
    remounted = [old_dev, where.st_ino]  # the folder was on the old device too
    read = functools.partial(read_queued, str(path), "x.png", len(data), md5, share=share, channel="sales")
    assert read(remounted, identity=identity) == data
    with pytest.raises(ImageError, match="changed after it was queued"):
        read([where.st_dev, where.st_ino], identity=identity)  # its folder stayed: the file moved alone
    with pytest.raises(ImageError, match="changed after it was queued"):
        read(remounted, identity=[old_dev, st.st_ino + 1, st.st_size, st.st_mtime_ns])


def test_a_job_outside_the_workers_shared_folder_is_refused(
    client: redis.Redis, engine: OcrEngine, share: Path, tmp_path: Path
) -> None:
    """A job naming a file elsewhere (another host's layout, or a forged job) is failed, never read."""
    secret = text_image(tmp_path / "elsewhere" / "secret.png", "Secret elsewhere")
    message = Intake(client, MAX_BYTES).submit(secret, "")  # an intake that knows no shared folder
    assert message is not None and message["type"] == "queued"
    assert worker(client, engine, share).run_once(BLOCK_MS) == 1
    final = final_of(client, message["id"])
    assert final["type"] == "failed" and "not inside this worker's shared folder" in final["error"], final
    assert str(tmp_path) not in final["error"]


def test_a_job_queued_before_identities_still_reads(client: redis.Redis, engine: OcrEngine, share: Path) -> None:
    path = text_image(share / "sales" / "x.png", "Invoice 1043 paid")
    message = intake(client, share).submit(path, "sales")
    assert message is not None
    [(entry, fields)] = client.xrange(JOBS)
    old = {k: v for k, v in json.loads(fields["job"]).items() if k != "identity"}
    client.xdel(JOBS, entry)
    client.xadd(JOBS, {"job": json.dumps(old)})
    assert Job.from_json(json.dumps(old)).identity is None
    assert worker(client, engine, share).run_once(BLOCK_MS) == 1
    final = final_of(client, message["id"])
    assert final["type"] == "done" and "invoice" in final["text"].lower()


def test_identity_round_trips_through_json() -> None:
    job = Job(id="a", md5="m", path="/p", filename="p", channel="", size=1, created_at=1.0, identity=[1, 2, 3, 4])
    assert Job.from_json(job.to_json()) == job
    assert dataclasses.replace(job, identity=None).identity is None


# -- retention -------------------------------------------------------------------------------------


def test_retention_never_deletes_through_a_link(
    handle: RedisHandle, client: redis.Redis, share: Path, tmp_path: Path
) -> None:
    """A stored result's folder later replaced by a link to elsewhere: the file there stays."""
    path = text_image(share / "sales" / "q3" / "old.png", "Old receipt")
    kept_link = text_image(share / "sales" / "linked.png", "Linked receipt")
    plain = text_image(share / "sales" / "plain.png", "Plain receipt")
    store = SqliteStore(tmp_path / "data" / "teamocr.sqlite3")
    try:
        new = intake(client, share)
        ids = [new.submit(p, "sales") for p in (path, kept_link, plain)]
        assert all(m is not None and m["type"] == "queued" for m in ids)
        later = 10 * 86400 + max(m["created_at"] for m in ids if m is not None)
        events = SocketIOEvents(handle.url, TeamMap.from_spec(TEAMS))
        recorder = Recorder(client, store, events, LatestCache(client, 200))
        while recorder.run_once(BLOCK_MS) > 0:
            pass
        keeper = Recorder(
            client,
            store,
            events,
            LatestCache(client, 200),
            retention_days=1,
            delete_sources=True,
            clock=lambda: later,
            shared_dir=share,
        )
        victim = tmp_path / "victim"
        victim.mkdir()
        (victim / "old.png").write_bytes(b"not the share's")
        shutil.rmtree(path.parent)
        path.parent.symlink_to(victim, target_is_directory=True)  # sales/q3 -> outside
        os.unlink(kept_link)
        kept_link.symlink_to(share / "finance" / "payroll.png")  # sales/linked.png -> finance's file
        assert keeper.apply_retention() == 3
        assert (victim / "old.png").read_bytes() == b"not the share's"
        assert kept_link.is_symlink() and (share / "finance" / "payroll.png").exists()
        assert not plain.exists()  # a plain file of the share is still deleted
    finally:
        store.close()
