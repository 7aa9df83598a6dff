"""Folders and files of the data folder that only the service's own user may read.

The data folder holds every team's results (the SQLite store), the accounts and their password
hashes, the Redis append-only file with every queued job, fine-tuning work folders and output
files. Whatever teamocr creates there is made ``0700`` (folders) or ``0600`` (files), whatever the
process's umask; files and folders of ours that an older version left readable by others are
tightened (group and other bits taken away, nothing added) when they are opened again.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def private_dir(folder: Path, mode: int = FOLDER_MODE, *, tighten: bool = True) -> Path:
    """Create ``folder`` (and its missing parents) with ``mode`` (``0700``); with ``tighten``, an
    existing folder owned by this user loses the bits ``mode`` lacks. Raises the ``OSError`` of
    ``mkdir``; the parents made follow the umask (they are not ours alone)."""
    folder = Path(folder)
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:
            pass  # made meanwhile (another process) or a file there: tightened or refused below
        else:
            os.chmod(folder, mode)  # mkdir's mode is masked by the umask
            return folder
    if tighten:
        tighten_mode(folder, mode)
    return folder


def private_file(path: Path) -> Path:
    """Create ``path`` empty as ``0600`` if it does not exist, else tighten it as :func:`tighten_mode`
    does; the file's content is never touched. Raises the ``OSError`` of ``open``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, FILE_MODE)
    except FileExistsError:  # kept as it is (it may be read-only to us), but no longer readable by others
        tighten_mode(Path(path), FILE_MODE)
    else:
        os.close(fd)
        os.chmod(path, FILE_MODE)  # the umask may have masked more
    return Path(path)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (replacing its content), a file created ``0600``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tighten_mode(Path(path), FILE_MODE)


def tighten_mode(path: Path, mode: int) -> bool:
    """Take from ``path`` every permission bit ``mode`` lacks (never add one), if this user owns it;
    True when its mode changed. A link is left alone; failing to change it is logged, not raised."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        return False
    current = stat.S_IMODE(info.st_mode)
    wanted = current & (mode | ~0o777)
    if wanted == current:
        return False
    try:
        os.chmod(path, wanted)
    except OSError as exc:
        log.warning("cannot make %s private (mode %o): %s", path, wanted, exc.strerror or exc)
        return False
    log.info("made %s private: mode %o -> %o", path, current, wanted)
    return True
