"""Folders the commands create before they write into them."""

from __future__ import annotations

from pathlib import Path

from daemon.errors import DaemonError


def make_dirs(*folders: Path) -> None:
    """Create each folder (and its parents); a folder that cannot be made is a DaemonError naming it."""
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DaemonError(f"cannot create folder {folder}: {exc.strerror or exc}") from exc
