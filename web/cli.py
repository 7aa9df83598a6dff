"""The ``teamocr`` console command: the daemon's commands, plus the web's.

``run`` here starts the whole service (daemon + web) in one command; ``web`` starts the web
alone (for a separate web host); ``user add`` creates accounts. The web sits on top of the
daemon, so this is where the two are wired together.
"""
from __future__ import annotations

import argparse
import getpass
import logging
import sys
import threading
from collections.abc import Sequence
from typing import Any

from config.settings import Settings
from daemon import cli as daemon_cli

log = logging.getLogger(__name__)


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


def _serve_web(settings: Settings, redis_url: str, stop: threading.Event) -> None:
    from web.app import create_app

    app, socketio = create_app(settings, redis_url=redis_url)
    print(f"teamocr web: http://{settings.host}:{settings.port}/", flush=True)
    try:
        socketio.run(app, host=settings.host, port=settings.port, allow_unsafe_werkzeug=True,
                     use_reloader=False, log_output=False)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        stop.set()


def _cmd_web(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from daemon.service import install_signals

    if not settings.redis_url:
        print("teamocr: `teamocr web` alone needs redis_url (TEAMOCR_REDIS_URL); "
              "`teamocr run` starts everything with an embedded Redis", file=sys.stderr)
        return 2
    stop = threading.Event()
    install_signals(stop, interrupt_main=True)
    _serve_web(settings, settings.redis_url, stop)
    return 0


def _cmd_run(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from daemon.service import install_signals, serve

    daemon_cli.make_dirs(settings.shared_dir, settings.data_dir)
    stop = threading.Event()
    install_signals(stop, interrupt_main=True)
    ready = threading.Event()
    urls: list[str] = []
    workers = args.workers or settings.daemon.workers

    def on_ready(handle: Any) -> None:
        urls.append(handle.url)
        print(f"teamocr: watching {settings.shared_dir} with {workers} worker(s); results in {settings.data_dir}",
              flush=True)
        ready.set()

    daemon = threading.Thread(target=serve, args=(settings,), name="daemon",
                              kwargs={"workers": workers, "watch": True, "config_file": args.config,
                                      "stop": stop, "ready": on_ready})
    daemon.start()
    while not ready.wait(0.5):
        if not daemon.is_alive():
            log.error("the daemon could not start")
            return 2
    try:
        _serve_web(settings, urls[0], stop)
    finally:
        stop.set()
        daemon.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
