"""The ``teamocr`` console command: the daemon's commands, plus the web's.

``run`` here starts the whole service (daemon + web) in one command: the daemon in this process,
the web (:mod:`web.server`) as a child process beside the workers; ``web`` starts the web alone
(for a separate web host); ``user add`` creates accounts. The web sits on top of the daemon, so
this is where the two are wired together.
"""
from __future__ import annotations

import argparse
import getpass
import sys
import threading
from collections.abc import Sequence
from typing import Any

from config.settings import Settings
from daemon import cli as daemon_cli


def build_parser() -> argparse.ArgumentParser:
    parser, commands, common = daemon_cli.make_parser()
    run = commands.choices["run"]
    run.description = ("Run the whole service on this host: watch shared_dir, OCR new files with worker "
                       "processes, store results in data_dir, and serve the team web on host:port. Redis "
                       "is embedded unless redis_url is set. Stop with Ctrl-C.")
    run.set_defaults(handler=_cmd_run)
    web = commands.add_parser("web", parents=[common], help="serve the team web only (needs redis_url)",
                              description="Serve the REST API, Socket.IO and dashboard on host:port.")
    web.set_defaults(handler=_cmd_web)
    user = commands.add_parser("user", help="manage accounts", description="Manage accounts.")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_commands.add_parser("add", parents=[common], help="create a user (password read from stdin)",
                                   description="Create a user; the password is read from stdin "
                                   "(or asked for on a terminal).")
    add.add_argument("name")
    add.add_argument("--team", required=True)
    add.add_argument("--admin", action="store_true", help="give the admin role")
    add.set_defaults(handler=_cmd_user_add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return daemon_cli.main(argv, parser=build_parser())


def _cmd_user_add(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from web.accounts import AccountError, AccountStore
    from web.app import ACCOUNTS_NAME

    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    accounts = AccountStore(settings.data_dir / ACCOUNTS_NAME)
    try:
        user = accounts.add_user(args.name, password, args.team, admin=args.admin)
    except AccountError as exc:
        print(f"teamocr: {exc}", file=sys.stderr)
        return 2
    finally:
        accounts.close()
    print(f"created {user.role} {user.username} in team {user.team}")
    return 0


def _web_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "web.server", *args]


def _cmd_web(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    import os

    from daemon.service import settings_env

    if not settings.redis_url:
        print("teamocr: `teamocr web` alone needs redis_url (TEAMOCR_REDIS_URL); "
              "`teamocr run` starts everything with an embedded Redis", file=sys.stderr)
        return 2
    env = {**os.environ, **settings_env(settings), "TEAMOCR_REDIS_URL": settings.redis_url}
    if args.config is not None:
        env["TEAMOCR_CONFIG"] = str(args.config)
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the server process (web.server patches the standard library for gevent before it
    # imports anything else, which this process, having imported the daemon's CLI, cannot).
    command = _web_command()
    os.execve(command[0], command, env)
    return 0  # not reached


def _cmd_run(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from daemon.service import Child, install_signals, serve
    from web.server import EXIT_CONFIG, FOLLOW_PARENT

    daemon_cli.make_dirs(settings.shared_dir, settings.data_dir)
    stop = threading.Event()
    install_signals(stop)
    workers = args.workers or settings.daemon.workers

    def on_ready(handle: Any) -> None:
        print(f"teamocr: watching {settings.shared_dir} with {workers} worker(s); results in {settings.data_dir}",
              flush=True)

    # The web is a process of its own beside the workers, kept alive by the daemon's supervisor.
    web = Child("web", _web_command(FOLLOW_PARENT), fatal_codes=frozenset({EXIT_CONFIG}))
    return serve(settings, workers=workers, watch=True, config_file=args.config, stop=stop, ready=on_ready,
                 children=[web])


if __name__ == "__main__":
    sys.exit(main())
