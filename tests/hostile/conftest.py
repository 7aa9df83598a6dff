"""One running daemon (watcher + recorder in this process, one real worker process) per hostile test module,
and one web app on the same Redis and store for the upload road.

The worker is a child process of its own (not the service's supervisor's) so that a test can pause it
(SIGSTOP) to change a file between the intake and the read.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from daemon.queue.streams import HEARTBEATS
from daemon.records import FINAL_STATUSES, ResultRecord
from daemon.results.store import SqliteStore
from tests.daemon.servicekit import make_settings, running, start_worker, stop_process, store_of
from tests.polling import wait_until
from tests.web.conftest import PASSWORD, bearer, login
from web.app import create_app
from web.services import services

MAX_FILE_BYTES = 2_000_000
RESULT_SECONDS = 120.0  # a record's wait for its final status (OCR on a busy CI core)


class LogLines(logging.Handler):
    """Keeps the formatted messages of the ``daemon`` and ``web`` loggers (thread-safe append)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def has(self, *parts: str) -> bool:
        return any(all(part in line for part in parts) for line in list(self.lines))


@dataclass
class Daemon:
    settings: Settings
    handle: RedisHandle
    store: SqliteStore
    worker: Any  # subprocess.Popen
    log: LogLines

    def final(self, path: Path, timeout: float = RESULT_SECONDS) -> ResultRecord:
        """The record of ``path`` once it is done, failed or a duplicate."""

        def find() -> ResultRecord | None:
            for rec in self.store.list(limit=500):
                if rec.path == str(path) and rec.status in FINAL_STATUSES:
                    return rec
            return None

        return wait_until(find, timeout, f"a final record of {path.name!r}", interval=0.1)

    def records_of(self, path: Path) -> list[ResultRecord]:
        return [rec for rec in self.store.list(limit=500) if rec.path == str(path)]

    def assert_alive(self) -> None:
        """The recorder and watcher threads and the worker process still run; Redis answers."""
        names = {t.name for t in threading.enumerate() if t.is_alive()}
        assert {"recorder", f"watcher:{self.settings.shared_dir.name}"} <= names, f"service threads: {names}"
        assert self.worker.poll() is None, f"worker exited with {self.worker.returncode}"
        self.handle.client.ping()
        beats = self.handle.client.hgetall(HEARTBEATS)
        assert beats, "no worker heartbeat"

    def pause_worker(self) -> None:
        os.kill(self.worker.pid, signal.SIGSTOP)

    def resume_worker(self) -> None:
        os.kill(self.worker.pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    tmp = tmp_path_factory.mktemp("hostile")
    base = make_settings(tmp, rescan_seconds=1.0)
    settings = replace(
        base,
        engine=replace(base.engine, max_file_bytes=MAX_FILE_BYTES),
        teams=replace(base.teams, default_team="alpha", channels="finance=alpha, sales=beta"),
        web=replace(
            base.web, max_request_bytes=8_000_000, api_limit="100000 per minute", login_limit="1000 per minute"
        ),
    )
    settings.shared_dir.mkdir(parents=True, exist_ok=True)
    lines = LogLines()
    loggers = [logging.getLogger(name) for name in ("daemon", "web")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(lines)
        logger.setLevel(logging.DEBUG)
    try:
        with running(settings, workers=0) as handle:
            worker = start_worker(settings, handle.url, TEAMOCR_ENGINE__MAX_FILE_BYTES=str(MAX_FILE_BYTES))
            try:
                wait_until(lambda: handle.client.hlen(HEARTBEATS) > 0, 120, "the worker's first heartbeat")
                yield Daemon(settings, handle, store_of(settings), worker, lines)
            finally:
                if worker.poll() is None:
                    os.kill(worker.pid, signal.SIGCONT)
                stop_process(worker)
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(lines)
            logger.setLevel(level)


@pytest.fixture(scope="module")
def web(daemon: Daemon) -> Iterator[Flask]:
    """The team web on the daemon's Redis and store; alice (alpha admin) and carol (beta member)."""
    app, _ = create_app(daemon.settings, redis_url=daemon.handle.url)
    app.config["TESTING"] = True
    svc = services(app)
    svc.accounts.add_user("alice", PASSWORD, "alpha", admin=True)
    svc.accounts.add_user("carol", PASSWORD, "beta")
    yield app
    svc.store.close()
    svc.accounts.close()


@pytest.fixture(scope="module")
def web_client(web: Flask) -> FlaskClient:
    return web.test_client()


@pytest.fixture(scope="module")
def alice(web_client: FlaskClient) -> dict[str, str]:
    return bearer(login(web_client, "alice")["access_token"])
