"""Folders the commands create before they write into them."""

from __future__ import annotations

from pathlib import Path

from daemon.errors import DaemonError
from daemon.private import private_dir


def make_dirs(*folders: Path, mode: int | None = None) -> None:
    """Create each folder (and its parents); a folder that cannot be made is a DaemonError naming it.

    With ``mode`` (``daemon.private.FOLDER_MODE``, 0o700, for the data folder) each folder is
    created with that mode, and an existing one of this user's loses the bits ``mode`` lacks.
    Without it the folders follow the umask (the shared folder belongs to the team)."""
    for folder in folders:
        try:
            if mode is None:
                folder.mkdir(parents=True, exist_ok=True)
            else:
                private_dir(folder, mode)
        except OSError as exc:
            raise DaemonError(f"cannot create folder {folder}: {exc.strerror or exc}") from exc
