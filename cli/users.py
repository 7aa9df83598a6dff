"""``teamocr user add|list|passwd|disable|enable|remove|role``: the team web's accounts, from the
command line (the API's ``/api/v1/users`` is the same for admins).

They work on the accounts file in the data folder directly, so they also work while the service
is down. A password, role or state change and a removal revoke the user's tokens at once (the
account's stamp, web.accounts); a running web cuts their sockets within seconds.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cli.folders import make_dirs
from config.settings import Settings
from daemon.private import FOLDER_MODE

if TYPE_CHECKING:
    from web.accounts import AccountStore, User

SIGNED_OUT = "their tokens and live sessions are revoked"


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``user ...`` on the ``teamocr`` subcommand collection."""
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
    role = add.add_mutually_exclusive_group()
    role.add_argument("--admin", action="store_true", help="give the admin role")
    role.add_argument("--role", metavar="ROLE", help="admin, member (the default) or operator")
    add.set_defaults(handler=_cmd_user_add)

    listing = user_commands.add_parser(
        "list",
        parents=[common],
        help="list users: name, team, role, state",
        description="List the users, one a line: name, team, role and state (active or disabled).",
    )
    listing.add_argument("--team", help="only this team's users")
    listing.set_defaults(handler=_cmd_user_list)

    for action, text, handler in (
        ("passwd", "change a user's password (read from stdin); revokes their sessions", _cmd_user_passwd),
        ("disable", "disable a user: no login, their sessions revoked", _cmd_user_disable),
        ("enable", "enable a disabled user again", _cmd_user_enable),
        ("remove", "remove a user; their sessions are revoked", _cmd_user_remove),
    ):
        parser = user_commands.add_parser(
            action, parents=[common], help=text, description=text[0].upper() + text[1:] + "."
        )
        parser.add_argument("name")
        parser.set_defaults(handler=handler)

    change_role = user_commands.add_parser(
        "role",
        parents=[common],
        help="give a user a role: admin, member or operator; revokes their sessions",
        description="Give a user a role: member (reads and corrects), admin (also manages their team) or "
        "operator (also switches the model every worker uses and manages every team's accounts).",
    )
    change_role.add_argument("name")
    change_role.add_argument("role", metavar="ROLE", help="admin, member or operator")
    change_role.set_defaults(handler=_cmd_user_role)


def first_team(settings: Settings) -> Callable[[], str | None]:
    """The accounts' first team, as the web asks it (None while no account exists): the default
    team when ``teams.default_team`` is empty. Once there is one it is kept (it never changes)."""
    found: list[str] = []

    def first() -> str | None:
        from web.accounts import AccountStore
        from web.app import ACCOUNTS_NAME

        path = settings.data_dir / ACCOUNTS_NAME
        if found or not path.exists():
            return found[0] if found else None
        accounts = AccountStore(path)
        try:
            team = accounts.first_team()
        finally:
            accounts.close()
        if team is not None:
            found.append(team)
        return team

    return first


@contextmanager
def _accounts(settings: Settings) -> Iterator[AccountStore]:
    from web.accounts import AccountStore
    from web.app import ACCOUNTS_NAME

    make_dirs(settings.data_dir, mode=FOLDER_MODE)
    accounts = AccountStore(settings.data_dir / ACCOUNTS_NAME)
    try:
        yield accounts
    finally:
        accounts.close()


def _run(settings: Settings, change: Callable[[AccountStore], str]) -> int:
    """Run ``change`` on the accounts and print what it says; exit 2 with the reason if refused."""
    from web.accounts import AccountError

    with _accounts(settings) as accounts:
        try:
            message = change(accounts)
        except AccountError as exc:
            print(f"teamocr: {exc}", file=sys.stderr)
            return 2
    print(message)
    return 0


def _read_password(name: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {name}: ")
    return sys.stdin.readline().rstrip("\r\n")


def _existing(accounts: AccountStore, name: str) -> User:
    from web.accounts import UnknownUser

    user = accounts.get(name)
    if user is None:
        raise UnknownUser(name)
    return user


def _cmd_user_add(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    password = _read_password(args.name)

    def add(accounts: AccountStore) -> str:
        user = accounts.add_user(args.name, password, args.team, admin=args.admin, role=args.role)
        return f"created {user.role} {user.username} in team {user.team}"

    return _run(settings, add)


def _cmd_user_list(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    with _accounts(settings) as accounts:
        users = accounts.users(args.team)
    if not users:
        print(
            "no users" + (f" in team {args.team}" if args.team else "") + " (create one: teamocr user add)",
            file=sys.stderr,
        )
        return 0
    rows = [(u.username, u.team, u.role, u.state) for u in users]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3])
    return 0


def _cmd_user_passwd(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    def passwd(accounts: AccountStore) -> str:
        _existing(accounts, args.name)  # before asking for a password
        user = accounts.set_password(args.name, _read_password(args.name))
        return f"changed the password of {user.username}; {SIGNED_OUT}"

    return _run(settings, passwd)


def _cmd_user_disable(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    return _run(settings, lambda accounts: f"disabled {accounts.set_disabled(args.name, True).username}; {SIGNED_OUT}")


def _cmd_user_enable(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    return _run(settings, lambda accounts: f"enabled {accounts.set_disabled(args.name, False).username}")


def _cmd_user_remove(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    def remove(accounts: AccountStore) -> str:
        user = accounts.remove(args.name)
        return f"removed {user.role} {user.username} of team {user.team}; {SIGNED_OUT}"

    return _run(settings, remove)


def _cmd_user_role(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    def role(accounts: AccountStore) -> str:
        user = accounts.set_role(args.name, args.role)
        return f"{user.username} of team {user.team} is now {user.role}; {SIGNED_OUT}"

    return _run(settings, role)
