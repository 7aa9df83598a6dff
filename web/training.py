"""Fine-tune jobs started from the dashboard: a background sequence of ``teamocr`` commands.

One job is three subprocesses, each the real command line:

1. ``teamocr corrections export DIR --team TEAM``   (the team's dashboard corrections as data)
2. ``teamocr train KIND --data DIR --workdir WORKDIR --progress json``   (one JSON object a line)
3. ``teamocr model add --KIND CHECKPOINT --name NAME``   (export, verify, register; not switched to)

The job's state (``queued`` or ``waiting`` -> ``exporting`` -> ``training`` -> ``registering`` ->
``done`` | ``failed``, with the last progress line) is kept in Redis under ``teamocr:training:<id>``
and sent to the team's admins over Socket.IO (event ``training``) at every change.

One job runs at a time (training takes the machine's CPU); the others wait in one first-in,
first-out line, each with its place in it (``"state": "waiting", "position": n``, 1 = next),
announced again whenever the line moves. A team has at most one job waiting or running, so no
team can fill the line, and a team sees only its own jobs (its place tells it how many are
ahead, never whose they are). The export step is given the team and the name the web's
default-team rule compares with (``daemon.results.teams.is_default_team``), so the command line
exports exactly the corrections the team's members can see. The commands' prefix and extra
training arguments are configurable, so tests run the real commands with tiny settings.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from config.settings import Settings
from daemon.private import private_dir

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
    """The team has a fine-tune job waiting or running already (one per team at a time)."""

    def __init__(self, job_id: str, state: str, position: int | None = None) -> None:
        where = f"waiting (position {position} in the line)" if state == "waiting" else f"running ({state})"
        super().__init__(f"your team's fine-tune job {job_id} is still {where}: one job per team at a time")
        self.job_id = job_id
        self.state = state


@dataclass
class TrainingCommands:
    """How the job's commands are started: ``prefix`` is the ``teamocr`` command line."""

    prefix: list[str] = field(default_factory=lambda: [sys.executable, "-m", "cli"])
    train_extra: list[str] = field(default_factory=list)  # e.g. ["--epochs", "1"]
    add_extra: list[str] = field(default_factory=list)  # e.g. ["--images", "page.png"] for `model add`
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 24 * 3600.0


@dataclass
class _Job:
    """A job in the line: its public state and what its commands need besides."""

    state: dict[str, Any]
    default_team: str  # the name is_default_team compared the team with when the job was asked for


class TrainingJobs:
    """Queues jobs, runs them one after another in a background thread, keeps and announces
    their state."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        redis_url: str,
        emit: Callable[[str, dict[str, Any], str], None],
        commands: TrainingCommands | None = None,
        clock: Callable[[], float] = time.time,
        first_team: Callable[[], str | None] = lambda: None,
    ) -> None:
        """``first_team`` is the accounts' first team (the default team while
        ``teams.default_team`` is empty), as the web's principals ask it."""
        self.client = client
        self.settings = settings
        self.redis_url = redis_url
        self.emit = emit
        self.commands = commands or TrainingCommands()
        self.clock = clock
        self.first_team = first_team
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None  # the runner, while the line is not empty
        self._running: _Job | None = None
        self._waiting: deque[_Job] = deque()

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
            if state is not None and state.get("state") not in FINAL and str(job_id) not in self._ours():
                waited = state.get("state") == "waiting"
                state.update(
                    state="failed",
                    position=None,
                    error=f"interrupted: the web server stopped while the job {'waited' if waited else 'ran'}",
                    updated_at=self.clock(),
                )
                self._save(state)
                count += 1
        return count

    def start(self, team: str, user: str, kind: str, source: str) -> dict[str, Any]:
        """Put a job in the line (it starts at once when the line is empty); raises TrainingBusy
        while the team has a job waiting or running."""
        if kind not in KINDS or source not in SOURCES:
            raise ValueError(f"kind must be one of {list(KINDS)} and source one of {list(SOURCES)}")
        default_team = self.default_team()  # resolved now, as the asking member's principal was
        with self._lock:
            for other in self._line():
                if other.state["team"] == team:
                    raise TrainingBusy(other.state["id"], other.state["state"], other.state.get("position"))
            job_id = uuid.uuid4().hex[:12]
            now = self.clock()
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
            busy = self._thread is not None
            state = {
                "id": job_id,
                "team": team,
                "user": user,
                "kind": kind,
                "source": source,
                "state": "waiting" if busy else "queued",
                "position": len(self._waiting) + 1 if busy else None,
                "created_at": now,
                "updated_at": now,
                "progress": None,
                # no team name in it: the current version's name is seen by every team (results)
                "version": f"ft-{kind}-{stamp}-{job_id[:6]}",
                "error": None,
                "result": None,
            }
            self._save(state)
            self.client.hset(LATEST_KEY, team, job_id)
            answer = dict(state)  # the runner changes ``state`` from now on
            self._waiting.append(_Job(state, default_team))
            if not busy:
                self._thread = threading.Thread(target=self._work, name="training-runner", daemon=True)
                self._thread.start()
        if busy:
            log.info("fine-tune job %s of team %s waits at position %s", job_id, team, state["position"])
            self._announce(answer)
        return answer

    def default_team(self) -> str:
        """The name :func:`daemon.results.teams.is_default_team` compares a team with: the setting
        ``teams.default_team``, else the accounts' first team ("" while there is none)."""
        return self.settings.teams.default_team or self.first_team() or ""

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the line is empty and the last job has ended (tests, shutdown)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                thread = self._thread
            if thread is None:
                return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            thread.join(left)

    def _line(self) -> list[_Job]:
        """The running job, then the waiting ones in order (call with the lock held)."""
        return ([self._running] if self._running else []) + list(self._waiting)

    def _ours(self) -> set[str]:
        with self._lock:
            return {job.state["id"] for job in self._line()}

    def _work(self) -> None:
        """The runner: the jobs of the line one after another, until it is empty."""
        try:
            while (job := self._next()) is not None:
                self._run(job)  # ends every job in a final state, whatever happens in it
        finally:
            with self._lock:  # only reached early when the thread itself is killed
                if self._thread is threading.current_thread():
                    self._thread, self._running = None, None

    def _next(self) -> _Job | None:
        """Take the first waiting job (None, and the runner ends, when none is left) and tell
        the others their new places."""
        with self._lock:
            self._running = None
            if not self._waiting:
                self._thread = None
                return None
            job = self._running = self._waiting.popleft()
            moved = list(self._waiting)
        for place, other in enumerate(moved, start=1):
            self._update(other.state, position=place)
        return job

    # -- the job -----------------------------------------------------------------------------

    def _run(self, job: _Job) -> None:
        state = job.state
        work = self.settings.data_dir / "workdirs" / state["version"]
        data = work / "data"
        try:
            private_dir(work)  # the team's training data: this user's alone (0700), as all of data_dir
            self._update(state, state="exporting", position=None)
            # the team's scope exactly as the web resolves it for the team's members: the same
            # rule (is_default_team) given the same default-team name
            self._call(
                state,
                ["corrections", "export", str(data), "--team", state["team"]],
                {"TEAMOCR_TEAMS__DEFAULT_TEAM": job.default_team},
            )
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
                    "--team",
                    state["team"],
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

    def _call(self, state: dict[str, Any], args: list[str], env: dict[str, str] | None = None) -> str:
        argv = [*self.commands.prefix, *args]
        log.info("fine-tune job %s: %s", state["id"], " ".join(args))
        try:
            done = subprocess.run(
                argv,
                env={**self._env(), **(env or {})},
                capture_output=True,
                text=True,
                timeout=self.commands.timeout,
                check=False,
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
        self._announce(dict(job))

    def _announce(self, job: dict[str, Any]) -> None:
        """Send the job's state to its team's admins (only theirs: a team sees its own jobs)."""
        try:
            self.emit(EVENT, dict(job), admin_room(job["team"]))
        except Exception as exc:  # noqa: BLE001 - a lost event must not stop the job
            log.warning("cannot announce fine-tune job %s: %s", job["id"], exc)

    def _save(self, state: dict[str, Any]) -> None:
        self.client.set(KEY_PREFIX + state["id"], json.dumps(state, ensure_ascii=False), ex=KEEP_SECONDS)


class JobError(Exception):
    """A step of a job failed; the message says which and why."""


def _tail(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return "\n".join(lines[-TAIL_LINES:]) or "(no output)"
