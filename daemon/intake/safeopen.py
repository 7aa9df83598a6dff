"""Open a file of the shared folder without following a link on the way: the file opened is the one
at that very place inside the share, never one a member pointed a link at.

A member who may write ``sales/`` may also turn ``sales/x.png``, or a folder under ``sales/``, into
a symbolic link to ``finance/payroll.png`` or to ``/etc``. Checking a path and then opening it
leaves a gap a swap can slip through, so :func:`open_in_share` never opens a path as a whole: it
opens the share's root, then each folder below it with ``O_NOFOLLOW | O_DIRECTORY`` relative to
the folder before (``dir_fd``), then the file with ``O_NOFOLLOW``. A link anywhere below the root
refuses the file with :class:`RefusedFile`; whatever descriptor comes back therefore is a regular
file lying at ``root/<path relative to root>``, inside the channel its path names.

The root itself is opened as configured (a mount point or a link an operator set up is trusted).
Missing files and other failures of the file system are the plain ``OSError`` they are
(``FileNotFoundError``, ``PermissionError``...), so callers keep telling "gone" from "refused".
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePath

from daemon.errors import DaemonError

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: a FIFO planted under an image's name must not block the reader waiting for a writer.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC
LINK = "is a symbolic link; links in the shared folder are not followed"


class RefusedFile(DaemonError):
    """A file of the shared folder that may not be read: a link on its way, outside the share, or
    not a regular file.

    ``path`` is the path as given (server-side, for logs); ``shown`` names the file relative to the
    share (what a member may see); ``reason`` says why, in words meant for the user. The message
    reads ``"<shown>: <reason>"`` and never holds the server's layout.
    """

    def __init__(self, path: str, shown: str, reason: str) -> None:
        super().__init__(path, shown, reason)
        self.path = path
        self.shown = shown
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.shown}: {self.reason}"


def open_in_share(root: Path, path: Path | str, *, follow: bool = False) -> int:
    """A read-only descriptor (close it yourself) of the regular file at ``path`` inside ``root``.

    ``path`` is absolute or relative to the working directory, and must lie inside ``root`` once
    ``.`` and ``..`` are taken out (no link is looked at for that). Every folder between ``root``
    and the file, and the file itself, must be a real folder or file, not a symbolic link.

    ``follow``: a path that is a link (``daemon.follow_symlinks``) is resolved first, and the file
    it leads to must lie in the same channel folder as the link itself (``root/<channel>/``, for a
    file at the root: directly in ``root``); that file is then opened as above. Links leading to
    another channel or outside the share are refused all the same.

    Raises :class:`RefusedFile` (a link, outside ``root``, another channel, not a regular file;
    retrying cannot help) or the ``OSError`` of the file system (``FileNotFoundError`` when the
    file or a folder on its way is missing, ``PermissionError``, ``NotADirectoryError`` when a
    folder on its way is a file...).
    """
    given = str(path)
    rel = _relative(root, given)
    if follow:
        rel = _followed(root, given, rel)
    folder_fd = _walk(root, rel, given)
    try:
        try:
            fd = os.open(rel.name, _FILE_FLAGS, dir_fd=folder_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK) and _is_link(rel.name, folder_fd):
                raise RefusedFile(given, str(rel), LINK) from None
            raise
    finally:
        os.close(folder_fd)
    try:
        reason = not_regular(os.fstat(fd).st_mode)
    except OSError:
        os.close(fd)
        raise
    if reason is not None:
        os.close(fd)
        raise RefusedFile(given, str(rel), reason)
    return fd


def open_folder_in_share(root: Path, path: Path | str) -> int:
    """A descriptor (``O_DIRECTORY``; close it yourself) of the folder at ``path`` inside ``root``,
    reached without following a link, as :func:`open_in_share` reaches a file; ``path`` may be
    ``root`` itself. Use it with ``dir_fd=`` to look at or remove a name in that very folder."""
    given = str(path)
    if os.path.abspath(given) == os.path.abspath(root):
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    rel = _relative(root, given)
    parent_fd = _walk(root, rel, given)
    try:
        return _open_folder(rel.name, parent_fd, given, rel)
    finally:
        os.close(parent_fd)


def not_regular(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not an image file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISLNK(mode):
        return LINK
    return "is not a regular file (socket or device)"


def _relative(root: Path, given: str) -> PurePath:
    """``given`` relative to ``root``, lexically; RefusedFile when it is ``root`` or outside it."""
    full = PurePath(os.path.abspath(given))
    try:
        rel = full.relative_to(os.path.abspath(root))
    except ValueError:
        raise RefusedFile(given, full.name, "is not inside the shared folder") from None
    if not rel.parts:
        raise RefusedFile(given, full.name, "is the shared folder itself, not a file in it")
    return rel


def _followed(root: Path, given: str, rel: PurePath) -> PurePath:
    """Where the link ``rel`` leads, relative to ``root``, when that is in its own channel's folder."""
    real_root = os.path.realpath(root)
    try:
        target = PurePath(os.path.realpath(given)).relative_to(real_root)
    except ValueError:
        raise RefusedFile(given, str(rel), "leads through a symbolic link to outside the shared folder") from None
    if not target.parts or _channel(target) != _channel(rel):
        where = f"channel {_channel(rel)!r}" if _channel(rel) else "the shared folder's root"
        raise RefusedFile(given, str(rel), f"leads through a symbolic link out of {where}")
    return target


def _channel(rel: PurePath) -> str:
    """The first folder of ``rel`` ("" for a file directly in the root), as ``channel_of`` says."""
    return rel.parts[0] if len(rel.parts) > 1 else ""


def _walk(root: Path, rel: PurePath, given: str) -> int:
    """A descriptor of the folder holding ``rel``, opened one folder at a time from ``root``."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        for depth, name in enumerate(rel.parts[:-1]):
            next_fd = _open_folder(name, fd, given, rel, PurePath(*rel.parts[: depth + 1]))
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_folder(name: str, parent_fd: int, given: str, rel: PurePath, folder: PurePath | None = None) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        # Linux answers ENOTDIR for a link opened O_DIRECTORY | O_NOFOLLOW, others ELOOP.
        if exc.errno in (errno.ENOTDIR, errno.ELOOP, errno.EMLINK) and _is_link(name, parent_fd):
            if folder is None:
                raise RefusedFile(given, str(rel), LINK) from None
            raise RefusedFile(
                given, str(rel), f"its folder {folder} {LINK}; files reached through a linked folder are not read"
            ) from None
        raise


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False
