"""The worker's read of a queued file: exactly the bytes the intake hashed, or a failure saying why.

Between the intake (which hashed the file) and the worker, the file may be deleted, replaced by
other content, or swapped for a FIFO or for a symlink to a file outside the shared folder. The
worker reads the bytes once, here, checks them against the job's size and MD5, and hands those
very bytes to the engine, so a result is never stored under an MD5 it does not belong to and a
swapped-in link never gets its target read into a result: the file is opened with no link
followed on its way from the shared folder's root (``daemon.intake.safeopen``) and must be the
very file intake hashed (device, inode, size, mtime).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from daemon.intake.filters import channel_of
from daemon.intake.safeopen import RefusedFile, open_in_share
from engine.errors import ImageError

log = logging.getLogger(__name__)

CHANGED = "the file changed after it was queued (its new content is queued as a new result)"
REPLACED = (
    "the file changed after it was queued: another file, or this one modified, is in its place now "
    "(new content is queued as a new result)"
)


class ShareAway(OSError):
    """The file is missing because the share holding it is away (unmounted, or its folder not the
    one the file was queued in): the worker waits for it rather than failing the file."""


def read_queued(
    path: str,
    name: str,
    size: int,
    md5: str,
    folder: list[int] | None = None,
    *,
    share: Path | None = None,
    identity: list[int] | None = None,
    follow: bool = False,
    channel: str | None = None,
) -> bytes:
    """The ``size`` bytes at ``path`` whose MD5 is ``md5``; ``folder`` is [st_dev, st_ino] of the
    file's folder when it was queued (None: not known).

    ``share``: the shared folder; the file must lie inside it and be reached without a link on
    the way (:func:`~daemon.intake.safeopen.open_in_share`, ``follow`` as there). None: only the
    file itself must not be a link. ``identity``: [st_dev, st_ino, st_size, st_mtime_ns] of the
    file intake hashed; another file at that path (even with the same bytes) is refused.
    ``channel``: the job's channel, whose folder of ``share`` the file must lie in (None: any).

    Raises :class:`~engine.errors.ImageError` (a final failure) when the file is gone from its
    folder, a link or under one, outside the share, not a regular file, unreadable by permission,
    or no longer that file or content; :class:`ShareAway` when its folder is gone or is another
    folder now (an unmounted share leaves its empty mount point); other ``OSError`` (a share
    briefly failing) so that the job is retried.
    """
    if share is not None:
        _check_place(share, path, name, channel)
    try:
        fd = open_in_share(share if share is not None else Path(path).parent, path, follow=follow)
    except RefusedFile as exc:
        raise ImageError(name, exc.reason) from None
    except FileNotFoundError:
        parent = os.path.dirname(path)
        try:
            where = os.stat(parent)
        except OSError:
            # Its folder is gone too: a share unmounted or a folder moved away, more likely back
            # soon than a file deleted.
            raise ShareAway(f"{name}: its folder {parent} is gone (share unmounted?)") from None
        if folder is not None and [where.st_dev, where.st_ino] != list(folder):
            raise ShareAway(
                f"{name}: its folder {parent} is not the folder it was queued in (share unmounted or mounted again?)"
            ) from None
        raise ImageError(name, "file not found (deleted after it was queued)") from None
    except PermissionError:
        raise ImageError(name, "permission denied") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if identity is not None and not _same_file(st, identity, path, folder):
            raise ImageError(name, REPLACED)
        data = handle.read(size + 1)
    if len(data) != size or (md5 and hashlib.md5(data).hexdigest() != md5):
        raise ImageError(name, CHANGED)
    return data


def _check_place(share: Path, path: str, name: str, channel: str | None) -> None:
    """ImageError unless ``path`` lies inside ``share`` (in ``channel``'s folder when given)."""
    try:
        actual = channel_of(share, Path(path))
    except ValueError:
        log.error(
            "%s is not inside this worker's shared folder %s; refused (is shared_dir the same path on every host?)",
            path,
            share,
        )
        raise ImageError(name, "is not inside this worker's shared folder; refused") from None
    if channel is not None and actual != channel:
        log.error("%s is not in the folder of its job's channel %r; refused", path, channel)
        raise ImageError(name, "is not in the folder of its channel; refused")


def _same_file(st: os.stat_result, identity: list[int], path: str, folder: list[int] | None) -> bool:
    """Whether the file opened (``st``) is the one intake hashed (``identity``).

    A share mounted again (after an outage, or a reboot with jobs still queued) may come back under
    another device number; that is no other file when its whole folder moved to the new device with
    it (only a mount can do that, and the MD5 is checked all the same).
    """
    dev, ino, size, mtime_ns = identity
    if (st.st_ino, st.st_size, st.st_mtime_ns) != (ino, size, mtime_ns):
        return False
    if st.st_dev == dev:
        return True
    if folder is None or folder[0] != dev:
        return False
    try:
        now = os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False
    return now == st.st_dev and now != folder[0]
