"""``teamocr key add|list|revoke``: API keys, from the command line (``/api/v1/keys`` is the same
for a logged-in member). ``key add`` prints the key alone on stdout, once: it is stored hashed."""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cli.folders import make_dirs
from config.settings import Settings
from daemon.private import FOLDER_MODE


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``key ...`` on the ``teamocr`` subcommand collection."""
    key = commands.add_parser("key", help="manage API keys", description="Manage API keys.")
    key_commands = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    add = key_commands.add_parser(
        "add",
        parents=[common],
        help="make an API key for a user (printed once, on stdout)",
        description="Make an API key acting as USER on what a member may call; the key is printed "
        "alone on stdout and shown only this once.",
    )
    add.add_argument("name", help="what the key is for, e.g. ci-upload")
    add.add_argument("--user", required=True, help="the user the key acts as")
    add.add_argument("--expires-days", type=float, metavar="DAYS", help="expire after DAYS days (default: never)")
    add.set_defaults(handler=_cmd_key_add)
    listing = key_commands.add_parser(
        "list", parents=[common], help="list live keys: id, user, name, expiry, last use", description="List keys."
    )
    listing.add_argument("--user", help="only this user's keys")
    listing.set_defaults(handler=_cmd_key_list)
    revoke = key_commands.add_parser("revoke", parents=[common], help="revoke a key", description="Revoke a key.")
    revoke.add_argument("id", help="the key's id (teamocr key list)")
    revoke.set_defaults(handler=_cmd_key_revoke)


@contextmanager
def _stores(settings: Settings) -> Iterator[Any]:
    """The accounts and their keys (the same file in the data folder), closed after use."""
    from web.accounts import AccountStore
    from web.api_keys import ApiKeyStore
    from web.app import ACCOUNTS_NAME

    make_dirs(settings.data_dir, mode=FOLDER_MODE)
    path = settings.data_dir / ACCOUNTS_NAME
    accounts, keys = AccountStore(path), ApiKeyStore(path)
    try:
        yield accounts, keys
    finally:
        keys.close()
        accounts.close()


def _refused(exc: Exception) -> int:
    print(f"teamocr: {exc}", file=sys.stderr)
    return 2


def _cmd_key_add(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from web.api_keys import ApiKeyError

    with _stores(settings) as (accounts, keys):
        user = accounts.get(args.user)
        if user is None:
            return _refused(ValueError(f"no user {args.user!r}"))
        try:
            made, secret = keys.create(user.username, args.name, args.expires_days, user.stamp)
        except ApiKeyError as exc:
            return _refused(exc)
    print(secret)
    print(f"key {made.id} for {user.username} (team {user.team}); it is shown only now", file=sys.stderr)
    return 0


def _when(stamp: float | None) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M") if stamp else "-"


def _cmd_key_list(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    with _stores(settings) as (_, keys):
        for key in keys.list(username=args.user):
            when = f"expires {_when(key.expires_at)}\tused {_when(key.last_used_at)}"
            print(f"{key.id}\t{key.username}\t{key.name}\t{when}")
    return 0


def _cmd_key_revoke(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from web.api_keys import ApiKeyError

    with _stores(settings) as (_, keys):
        try:
            revoked = keys.revoke(args.id)
        except ApiKeyError as exc:
            return _refused(exc)
    print(f"revoked key {revoked.id} of {revoked.username} ({revoked.name})")
    return 0
