"""Fine-tune jobs started from the dashboard: a background sequence of ``teamocr`` commands.

One job is three subprocesses, each the real command line:

1. ``teamocr corrections export DIR --team TEAM``   (the team's dashboard corrections as data)
2. ``teamocr train KIND --data DIR --workdir WORKDIR --progress json``   (one JSON object a line)
3. ``teamocr model add --KIND CHECKPOINT --name NAME``   (export, verify, register; not switched to)

The job's state (``queued`` -> ``exporting`` -> ``training`` -> ``registering`` -> ``done`` |
``failed``, with the last progress line) is kept in Redis under ``teamocr:training:<id>`` and
sent to the team's admins over Socket.IO (event ``training``) at every change. One job runs at a
time (training takes the machine's CPU). The commands' prefix and extra training arguments are
configurable, so tests run the real commands with tiny settings.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from config.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "teamocr:training:"
LATEST_KEY = "teamocr:training:latest"
KEEP_SECONDS = 7 * 24 * 3600
EVENT = "training"
KINDS = ("rec", "det")
SOURCES = ("corrections",)
FINAL = ("done", "failed")
TAIL_LINES = 20


def admin_room(team: str) -> str:
    """The Socket.IO room of a team's admins (``web.sockets`` puts admins in it)."""
    return f"admins:{team}"


class TrainingBusy(Exception):
    """Another fine-tune job is running."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"fine-tune job {job_id} is still running")
        self.job_id = job_id


@dataclass
class TrainingCommands:
    """How the job's commands are started: ``prefix`` is the ``teamocr`` command line."""

    prefix: list[str] = field(default_factory=lambda: [sys.executable, "-m", "cli"])
    train_extra: list[str] = field(default_factory=list)  # e.g. ["--epochs", "1"]
    add_extra: list[str] = field(default_factory=list)  # e.g. ["--images", "page.png"] for `model add`
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 24 * 3600.0


class TrainingJobs:
    """Starts jobs, runs them in a background thread, keeps and announces their state."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        redis_url: str,
        emit: Callable[[str, dict[str, Any], str], None],
        commands: TrainingCommands | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.settings = settings
        self.redis_url = redis_url
        self.emit = emit
        self.commands = commands or TrainingCommands()
        self.clock = clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running: str | None = None

    def get(self, job_id: str) -> dict[str, Any] | None:
        raw = self.client.get(KEY_PREFIX + job_id)
        return json.loads(raw) if raw else None

    def latest(self, team: str) -> dict[str, Any] | None:
        job_id = self.client.hget(LATEST_KEY, team)
        return self.get(str(job_id)) if job_id else None

    def recover(self) -> int:
        """Mark jobs left unfinished by an earlier web process as failed; returns how many."""
        count = 0
        for job_id in self.client.hvals(LATEST_KEY):
            state = self.get(str(job_id))
            if state is not None and state.get("state") not in FINAL and str(job_id) != self._running:
                state.update(
                    state="failed",
                    error="interrupted: the web server stopped while the job ran",
                    updated_at=self.clock(),
                )
                self._save(state)
                count += 1
        return count

    def start(self, team: str, user: str, kind: str, source: str) -> dict[str, Any]:
        """Queue a job and start it; raises TrainingBusy while another one runs."""
        if kind not in KINDS or source not in SOURCES:
            raise ValueError(f"kind must be one of {list(KINDS)} and source one of {list(SOURCES)}")
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._running:
                raise TrainingBusy(self._running)
            job_id = uuid.uuid4().hex[:12]
            now = self.clock()
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
            state = {
                "id": job_id,
                "team": team,
                "user": user,
                "kind": kind,
                "source": source,
                "state": "queued",
                "created_at": now,
                "updated_at": now,
                "progress": None,
                "version": f"{_name_part(team)}-{kind}-{stamp}",
                "error": None,
                "result": None,
            }
            self._save(state)
            self.client.hset(LATEST_KEY, team, job_id)
            self._running = job_id
            answer = dict(state)  # the thread changes ``state`` from now on
            self._thread = threading.Thread(target=self._run, args=(state,), name=f"training-{job_id}", daemon=True)
            self._thread.start()
        return answer

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running job's thread (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the job -----------------------------------------------------------------------------

    def _run(self, state: dict[str, Any]) -> None:
        work = self.settings.data_dir / "workdirs" / state["version"]
        data = work / "data"
        try:
            self._update(state, state="exporting")
            self._call(state, ["corrections", "export", str(data), "--team", state["team"]])
            self._update(state, state="training")
            done = self._train(state, data, work)
            checkpoint = done.get("checkpoint")
            if not isinstance(checkpoint, str) or not checkpoint:
                raise JobError("training ended without a checkpoint")
            self._update(state, state="registering", result=done)
            self._call(
                state,
                [
                    "model",
                    "add",
                    f"--{state['kind']}",
                    checkpoint,
                    "--name",
                    state["version"],
                    "--note",
                    f"fine-tuned on {state['team']}'s corrections by {state['user']}",
                    *self.commands.add_extra,
                ],
            )
            self._update(state, state="done")
            log.info("fine-tune job %s registered model version %s", state["id"], state["version"])
        except JobError as exc:
            log.error("fine-tune job %s failed: %s", state["id"], exc)
            self._update(state, state="failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a job must always end in a final state
            log.exception("fine-tune job %s failed", state["id"])
            self._update(state, state="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._running = None

    def _env(self) -> dict[str, str]:
        from config.settings import settings_env

        teams = self.settings.teams  # `corrections export --team` maps channels to teams
        return {
            **os.environ,
            **settings_env(self.settings),
            "TEAMOCR_REDIS_URL": self.redis_url,
            "TEAMOCR_TEAMS__CHANNELS": teams.channels,
            "TEAMOCR_TEAMS__DEFAULT_TEAM": teams.default_team,
            "PYTHONUNBUFFERED": "1",
            **self.commands.env,
        }

    def _call(self, state: dict[str, Any], args: list[str]) -> str:
        argv = [*self.commands.prefix, *args]
        log.info("fine-tune job %s: %s", state["id"], " ".join(args))
        try:
            done = subprocess.run(
                argv, env=self._env(), capture_output=True, text=True, timeout=self.commands.timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise JobError(f"`teamocr {args[0]} {args[1]}` could not run: {exc}") from exc
        if done.returncode != 0:
            raise JobError(f"`teamocr {args[0]} {args[1]}` failed (exit {done.returncode}): {_tail(done.stderr)}")
        return done.stdout

    def _train(self, state: dict[str, Any], data: Path, work: Path) -> dict[str, Any]:
        args = [
            "train",
            state["kind"],
            "--data",
            str(data),
            "--workdir",
            str(work / "train"),
            "--progress",
            "json",
            *self.commands.train_extra,
        ]
        argv = [*self.commands.prefix, *args]
        log.info("fine-tune job %s: %s", state["id"], " ".join(args))
        try:
            proc = subprocess.Popen(
                argv,
                env=self._env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            raise JobError(f"`teamocr train` could not run: {exc}") from exc
        errors: list[str] = []
        drain = threading.Thread(target=lambda: errors.extend(proc.stderr or []), daemon=True)
        drain.start()
        done: dict[str, Any] | None = None
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                item = json.loads(line)
            except ValueError:
                continue  # not ours: a stray print
            if not isinstance(item, dict):
                continue
            if item.get("type") == "progress":
                self._update(state, progress={k: item.get(k) for k in ("epoch", "step", "steps", "loss", "lr")})
            elif item.get("type") == "done":
                done = item
        code = proc.wait()
        drain.join(5)
        if code != 0:
            raise JobError(f"`teamocr train` failed (exit {code}): {_tail(''.join(errors))}")
        if done is None:
            raise JobError("`teamocr train` ended without a result line")
        return done

    def _update(self, job: dict[str, Any], /, **changes: Any) -> None:
        job.update(changes, updated_at=self.clock())
        try:
            self._save(job)
        except redis.RedisError as exc:  # the job goes on; its final state is saved if Redis is back
            log.warning("cannot save the state of fine-tune job %s: %s", job["id"], exc)
        try:
            self.emit(EVENT, dict(job), admin_room(job["team"]))
        except Exception as exc:  # noqa: BLE001 - a lost event must not stop the job
            log.warning("cannot announce fine-tune job %s: %s", job["id"], exc)

    def _save(self, state: dict[str, Any]) -> None:
        self.client.set(KEY_PREFIX + state["id"], json.dumps(state, ensure_ascii=False), ex=KEEP_SECONDS)


class JobError(Exception):
    """A step of a job failed; the message says which and why."""


def _name_part(team: str) -> str:
    """The team's name as a version-name part (letters, digits, '.', '_', '-'; at most 32)."""
    part = re.sub(r"[^A-Za-z0-9._-]+", "-", team).strip("-._")[:32]
    return part or "team"


def _tail(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return "\n".join(lines[-TAIL_LINES:]) or "(no output)"
