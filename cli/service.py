"""``teamocr run``, ``watch``, ``worker`` and ``web``: the service, whole or in its parts.

``run`` starts the whole service on this host: the daemon (recorder, watcher, supervisor) in this
process, the worker processes (``python -m cli worker``) and the web (``python -m cli.webserver``,
gevent, a process of its own) beside them. ``watch`` is the daemon without workers (the file
server), ``worker`` one OCR worker (GPU hosts), ``web`` the web alone (a separate web host).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

from cli.folders import make_dirs
from config.settings import Settings
from daemon.private import FOLDER_MODE


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``run``, ``watch``, ``worker`` and ``web`` on the ``teamocr`` subcommands."""
    run = commands.add_parser(
        "run",
        parents=[common],
        help="run the whole service on this host",
        description="Run the whole service on this host: watch shared_dir, OCR new files with worker "
        "processes, store results in data_dir, and serve the team web on host:port. Redis "
        "is embedded unless redis_url is set. Stop with Ctrl-C.",
    )
    run.set_defaults(handler=_cmd_run)
    watch = commands.add_parser(
        "watch",
        parents=[common],
        help="watch the shared folder and keep the store (no OCR here)",
        description="Watcher, intake and result store only; OCR happens in `teamocr worker` processes "
        "that reach the same Redis (redis_url).",
    )
    watch.set_defaults(handler=_cmd_watch)
    worker = commands.add_parser(
        "worker",
        parents=[common],
        help="one OCR worker taking jobs from Redis",
        description="Load the engine once and OCR jobs from the Redis queue until stopped "
        "(first SIGTERM: finish the batch; second: stop now).",
    )
    worker.add_argument(
        "--follow-parent",
        action="store_true",
        help="stop (after the batch in hand) when the process that started this one is gone; "
        "given by `teamocr run` to its workers",
    )
    worker.set_defaults(handler=_cmd_worker)
    web = commands.add_parser(
        "web",
        parents=[common],
        help="serve the team web only (needs redis_url)",
        description="Serve the REST API, Socket.IO and dashboard on host:port.",
    )
    web.set_defaults(handler=_cmd_web)


def worker_command(*args: str) -> list[str]:
    """How ``teamocr run`` starts one of its worker processes."""
    return [sys.executable, "-m", "cli", "worker", *args]


def web_command(*args: str) -> list[str]:
    """How the web's own (gevent) process starts: :mod:`cli.webserver`."""
    return [sys.executable, "-m", "cli.webserver", *args]


def _cmd_run(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from cli.webserver import EXIT_CONFIG, FOLLOW_PARENT
    from daemon.service import Child

    workers = args.workers or settings.daemon.workers
    # The web is a process of its own beside the workers, kept alive by the daemon's supervisor.
    web = Child("web", web_command(FOLLOW_PARENT), fatal_codes=frozenset({EXIT_CONFIG}))

    def on_ready(handle: Any) -> None:
        print(
            f"teamocr: watching {settings.shared_dir} with {workers} worker(s); results in {settings.data_dir}",
            flush=True,
        )

    return _serve(args, settings, workers=workers, ready=on_ready, children=[web])


def _cmd_watch(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    def on_ready(handle: Any) -> None:
        print(
            f"teamocr: watching {settings.shared_dir}, 0 worker(s), results in {settings.data_dir}, Redis {handle.url}",
            flush=True,
        )

    return _serve(args, settings, workers=0, ready=on_ready)


def _serve(args: argparse.Namespace, settings: Settings, **kwargs: Any) -> int:
    from cli.users import first_team
    from daemon.service import install_signals, serve

    make_dirs(settings.shared_dir)
    make_dirs(settings.data_dir, mode=FOLDER_MODE)  # the store, Redis, secrets: this user's alone
    stop = threading.Event()
    install_signals(stop)
    return serve(
        settings,
        watch=True,
        config_file=args.config,
        stop=stop,
        worker_command=worker_command("--follow-parent"),
        first_team=first_team(settings),
        **kwargs,
    )


def _cmd_worker(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from daemon.service import install_signals, work

    stop = threading.Event()
    install_signals(stop)
    return work(settings, stop, follow_parent=args.follow_parent)


def _cmd_web(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from config.settings import settings_env

    if not settings.redis_url:
        print(
            "teamocr: `teamocr web` alone needs redis_url (TEAMOCR_REDIS_URL); "
            "`teamocr run` starts everything with an embedded Redis",
            file=sys.stderr,
        )
        return 2
    env = {**os.environ, **settings_env(settings), "TEAMOCR_REDIS_URL": settings.redis_url}
    if args.config is not None:
        env["TEAMOCR_CONFIG"] = str(args.config)
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the server process (cli.webserver patches the standard library for gevent before it
    # imports the web, which this process, having imported the command line, cannot).
    command = web_command()
    os.execve(command[0], command, env)
    return 0  # not reached
