"""Wiring of the daemon's parts for ``teamocr run``, ``teamocr watch`` and ``teamocr worker``.

``run``    embedded (or configured) Redis + recorder + webhook deliverer + watcher + N worker
           processes, one command.
``watch``  recorder + webhook deliverer + watcher (the host holding the shared folder and the store).
``worker`` one OCR worker (GPU hosts); it reaches Redis by ``redis_url``.
Signals: the first SIGTERM/SIGINT stops gracefully (workers finish their batch), a second one
stops at once.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import Settings, settings_env
from config.values import delay_list
from daemon.intake.dedupe import Intake
from daemon.intake.filters import channel_of
from daemon.intake.watcher import FolderWatcher
from daemon.private import private_dir
from daemon.queue.redisconn import RedisHandle, open_redis, wait_for_redis
from daemon.queue.streams import ensure_groups
from daemon.results.events import LatestCache, SocketIOEvents
from daemon.results.recorder import Recorder
from daemon.results.store import STORE_NAME, SqliteStore
from daemon.results.teams import TeamMap
from daemon.webhooks.deliverer import Deliverer
from daemon.webhooks.queue import Outbox
from daemon.webhooks.registry import WebhookRegistry

log = logging.getLogger(__name__)


def install_signals(stop: threading.Event, interrupt_main: bool = False) -> None:
    """First SIGTERM/SIGINT sets ``stop`` (and, with ``interrupt_main``, ends a blocking server
    loop in the main thread); a second one exits at once."""

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            log.warning("second %s: stopping now", signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info("%s: finishing current work, then stopping (again to stop now)", signal.Signals(signum).name)
        stop.set()
        if interrupt_main:
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _connect(settings: Settings, stop: threading.Event) -> RedisHandle:
    handle = open_redis(settings.redis_url, settings.data_dir)
    wait_for_redis(handle.client, stop)
    ensure_groups(handle.client)
    return handle


class ChildFailed(RuntimeError):
    """A child process exited with a code that says restarting it would not help."""


@dataclass(frozen=True)
class Child:
    """A process ``serve`` keeps alive beside the workers (the web, for ``teamocr run``)."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the workers' environment
    fatal_codes: frozenset[int] = frozenset()  # exits that stop the service instead of a restart


class Supervisor:
    """Keeps N processes of one kind alive; restarts one that died, with a pause."""

    def __init__(
        self,
        count: int,
        env: dict[str, str],
        args: list[str],
        name: str = "worker",
        fatal_codes: frozenset[int] = frozenset(),
    ) -> None:
        self.count = count
        self.env = env
        self.args = args
        self.name = name
        self.fatal_codes = fatal_codes
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.restarts = [0.0] * count

    def check(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is None:
                continue
            if proc is not None and proc.returncode in self.fatal_codes:
                raise ChildFailed(f"the {self.name} process exited with {proc.returncode} (see its log above)")
            if time.monotonic() < self.restarts[i]:
                continue  # died moments after its last start: give it a pause
            if proc is not None:
                log.warning("%s %d exited with %s; restarting it", self.name, i, proc.returncode)
            self.restarts[i] = time.monotonic() + 5.0
            # own session: a Ctrl-C on the terminal reaches only us; we pass on one SIGTERM
            self.procs[i] = subprocess.Popen(self.args, env=self.env, start_new_session=True)

    def stop(self, timeout: float = 60.0) -> None:
        live = [p for p in self.procs if p is not None and p.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in live:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def log_backlog(store: SqliteStore) -> None:
    """Say at start-up what is left over from before (a stop or crash mid-burst): the workers take
    those jobs up again, and files dropped while stopped come in with the start-up scan."""
    counts = store.counts()
    unfinished = counts["queued"] + counts["processing"]
    if unfinished:
        log.info(
            "resuming: %d result(s) still queued or in progress from before the start (%d done so far)",
            unfinished,
            counts["done"],
        )


def serve(
    settings: Settings,
    *,
    workers: int,
    watch: bool = True,
    config_file: Path | None = None,
    stop: threading.Event | None = None,
    ready: Callable[[RedisHandle], None] | None = None,
    children: Sequence[Child] = (),
    worker_command: Sequence[str] = (),
    first_team: Callable[[], str | None] = lambda: None,
) -> int:
    """Run the recorder, the webhook deliverer and (optionally) the watcher here, plus ``workers``
    worker processes (each started as ``worker_command``, the command line's ``teamocr worker``)
    and ``children`` (kept alive the same way). ``first_team`` names the team created first (the
    accounts'), the default team while ``teams.default_team`` is empty. Returns 2 when a child
    exits with one of its fatal codes."""
    if workers > 0 and not worker_command:
        raise ValueError("serve: workers need a worker_command to start them with")
    stop = stop or threading.Event()
    private_dir(settings.data_dir, tighten=False)  # made 0700; a folder the operator chose is left as it is
    handle = _connect(settings, stop)
    store = SqliteStore(settings.data_dir / STORE_NAME)
    log_backlog(store)
    d = settings.daemon
    recorder = Recorder(
        handle.client,
        store,
        SocketIOEvents(handle.url, TeamMap.from_spec(settings.teams.channels)),
        LatestCache(handle.client, d.latest_cache),
        name=f"recorder-{socket.gethostname()}",
        retention_days=d.retention_days,
        delete_sources=d.retention_delete_sources,
        shared_dir=settings.shared_dir,
        webhooks=Outbox(),
    )
    registry = WebhookRegistry.for_data_dir(settings.data_dir)
    deliverer = Deliverer(
        handle.client,
        registry,
        functools.partial(
            TeamMap.from_spec(settings.teams.channels, settings.teams.default_team).team_of, first_team=first_team
        ),
        allow_private=settings.web.webhooks_allow_private,
        retry_delays=delay_list(d.webhook_retry_delays),
        timeout=d.webhook_timeout,
        name=f"webhooks-{socket.gethostname()}",
    )
    loops = {"recorder": recorder.run, "webhooks": deliverer.run}
    threads = [threading.Thread(target=run, args=(stop,), name=name, daemon=True) for name, run in loops.items()]
    watcher = None
    if watch:
        intake = Intake(
            handle.client,
            settings.engine.max_file_bytes,
            teams=TeamMap.from_spec(settings.teams.channels, settings.teams.default_team),
            shared_dir=settings.shared_dir,
            follow_symlinks=d.follow_symlinks,
            channel_engine=settings.channel_engine,
        )
        root = settings.shared_dir

        def on_ready(path: Path) -> None:
            intake.submit(path, channel_of(root, path))

        watcher = FolderWatcher(
            root,
            on_ready,
            polling=d.polling,
            poll_interval=d.poll_interval,
            stable_seconds=d.stable_seconds,
            rescan_seconds=d.rescan_seconds,
            follow_symlinks=d.follow_symlinks,
        )
    env = {**os.environ, **settings_env(settings), "TEAMOCR_REDIS_URL": handle.url}
    if config_file is not None:
        env["TEAMOCR_CONFIG"] = str(config_file)
    if settings.engine.threads == 0 and workers > 0:
        env["TEAMOCR_ENGINE__THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    supervisors = [Supervisor(workers, env, list(worker_command))]
    supervisors += [
        Supervisor(1, {**env, **child.env}, child.args, child.name, child.fatal_codes) for child in children
    ]
    code = 0
    try:
        for thread in threads:
            thread.start()
        if watcher is not None:
            watcher.start()
        if ready is not None:
            ready(handle)
        while not stop.is_set():
            try:
                for supervisor in supervisors:
                    supervisor.check()
            except ChildFailed as exc:
                log.error("%s; stopping", exc)
                code = 2
                break
            for i, (name, run) in enumerate(loops.items()):
                if not threads[i].is_alive() and not stop.is_set():
                    log.error("the %s thread stopped unexpectedly; starting it again", name)
                    threads[i] = threading.Thread(target=run, args=(stop,), name=name, daemon=True)
                    threads[i].start()
            stop.wait(1.0)
    finally:
        if watcher is not None:
            watcher.stop()
        for supervisor in reversed(supervisors):  # the web first: no new uploads while workers finish
            supervisor.stop()
        stop.set()
        for thread in threads:
            thread.join(10)
        store.close()
        registry.close()
        handle.close()
    return code


def work(settings: Settings, stop: threading.Event | None = None, follow_parent: bool = False) -> int:
    """One worker process: load the engine once, then take jobs until stopped (or, with
    ``follow_parent``, until the process that started it is gone)."""
    from daemon.versions.registry import ModelRegistry
    from daemon.worker.hotswap import SwappingEngine
    from daemon.worker.loop import Worker
    from daemon.worker.outputs import OutputWriter

    stop = stop or threading.Event()
    if follow_parent:
        follow_parent_of(stop.set, "worker")  # it finishes the batch in hand
    _lower_priority(settings.daemon.worker_nice)
    handle = _connect(settings, stop)
    name = f"{socket.gethostname()}-{os.getpid()}"
    # follows `teamocr model use` (the Redis key) between jobs, without a restart
    engine = SwappingEngine(handle.client, ModelRegistry.for_data_dir(settings.data_dir), settings.engine, name)
    outputs = None
    if settings.daemon.outputs:
        outputs = OutputWriter(
            settings.data_dir / "outputs", settings.engine.max_image_pixels, settings.engine.max_file_bytes
        )
    try:
        Worker(handle.client, engine, settings.daemon, name, outputs, shared_dir=settings.shared_dir).run(stop)
    finally:
        handle.client.close()
    return 0


def follow_parent_of(on_gone: Callable[[], None], what: str) -> None:
    """Start a daemon thread that calls ``on_gone`` once the process that started this one is gone:
    a `teamocr run` killed hard must not leave its workers or its web behind (its next start would
    add as many again, and the web would hold the port). Under gevent the thread is a greenlet."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("the process that started this %s (pid %d) is gone; stopping", what, parent)
        on_gone()

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _lower_priority(nice: int) -> None:
    """Make this (worker) process ``nice``: OCR is batch work, and on a host that also serves the
    web, API reads and live events should not queue behind it for the CPU."""
    if nice <= 0 or not hasattr(os, "nice"):
        return
    try:
        current = os.nice(0)
        if current < nice:
            os.nice(nice - current)
    except OSError as exc:  # not permitted: run at the current priority
        log.warning("cannot lower the worker's CPU priority to nice %d (%s)", nice, exc)
