"""``teamocr user add``: accounts of the team web, created from the command line."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from config.settings import Settings


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``user add`` on the ``teamocr`` subcommand collection."""
    user = commands.add_parser("user", help="manage accounts", description="Manage accounts.")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_commands.add_parser(
        "add",
        parents=[common],
        help="create a user (password read from stdin)",
        description="Create a user; the password is read from stdin (or asked for on a terminal).",
    )
    add.add_argument("name")
    add.add_argument("--team", required=True)
    add.add_argument("--admin", action="store_true", help="give the admin role")
    add.set_defaults(handler=_cmd_user_add)


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
