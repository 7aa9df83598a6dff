"""The real ``teamocr run`` as a child process, for benchmarks that measure it from outside: a free
port, the environment of a run on its own folders (embedded Redis), the ``teamocr`` command, waiting
for a condition, and the service started and stopped (SIGTERM, then SIGKILL past a timeout).

Run as a script's neighbour: ``python benchmarks/NAME.py`` puts this folder first on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("benchmarks.service_process")

REPO = Path(__file__).resolve().parent.parent
TEAMOCR = REPO / ".venv" / "bin" / "teamocr"
STOP_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(root: Path, port: int, threads: int) -> dict[str, str]:
    """The caller's environment with this run's folders, port, embedded Redis and engine threads."""
    env = dict(os.environ)
    env.update(
        {
            "TEAMOCR_SHARED_DIR": str(root / "share"),
            "TEAMOCR_DATA_DIR": str(root / "data"),
            "TEAMOCR_REDIS_URL": "",  # embedded
            "TEAMOCR_HOST": "127.0.0.1",
            "TEAMOCR_PORT": str(port),
            "TEAMOCR_ENGINE__THREADS": str(threads),
            "TEAMOCR_LOG_LEVEL": "INFO",
        }
    )
    return env


def teamocr(env: dict[str, str], *args: str, stdin: str = "") -> str:
    """Run ``teamocr ARGS``; its stdout, or RuntimeError with its stderr."""
    done = subprocess.run(
        [str(TEAMOCR), *args], input=stdin, env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"teamocr {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def wait_for(pred: Callable[[], Any], deadline: float, what: str, every: float = 0.1) -> Any:
    """Poll ``pred`` until truthy; TimeoutError at ``deadline`` (time.monotonic())."""
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


@contextlib.contextmanager
def running_service(
    env: dict[str, str], log_path: Path, stop_timeout: float = STOP_TIMEOUT
) -> Iterator[subprocess.Popen[bytes]]:
    """``teamocr run`` until the block ends, then SIGTERM and a wait (SIGKILL past ``stop_timeout``)."""
    with log_path.open("wb") as sink:
        proc = subprocess.Popen([str(TEAMOCR), "run"], env=env, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(stop_timeout)
                except subprocess.TimeoutExpired:
                    log.warning(
                        "teamocr run (pid %d) still running %.0f s after SIGTERM: killed", proc.pid, stop_timeout
                    )
                    proc.kill()
                    proc.wait()
            log.info("teamocr run exited %s", proc.returncode)
