"""The worker's read of a queued file: exactly the bytes the intake hashed, or a failure saying why.

Between the intake (which hashed the file) and the worker, the file may be deleted, replaced by
other content, or swapped for a FIFO or for a symlink to a file outside the shared folder. The
worker reads the bytes once, here, checks them against the job's size and MD5, and hands those
very bytes to the engine, so a result is never stored under an MD5 it does not belong to and a
swapped-in link never gets its target read into a result.
"""

from __future__ import annotations

import hashlib
import os
import stat

from engine.errors import ImageError

CHANGED = "the file changed after it was queued (its new content is queued as a new result)"


class ShareAway(OSError):
    """The file is missing because the share holding it is away (unmounted, or its folder not the
    one the file was queued in): the worker waits for it rather than failing the file."""


def read_queued(path: str, name: str, size: int, md5: str, folder: list[int] | None = None) -> bytes:
    """The ``size`` bytes at ``path`` whose MD5 is ``md5``; ``folder`` is [st_dev, st_ino] of the
    file's folder when it was queued (None: not known).

    Raises :class:`~engine.errors.ImageError` (a final failure) when the file is gone from its
    folder, not a regular file, unreadable by permission, or no longer that content;
    :class:`ShareAway` when its folder is gone or is another folder now (an unmounted share leaves
    its empty mount point); other ``OSError`` (a share briefly failing) so that the job is retried.
    """
    # O_NONBLOCK: a path swapped for a FIFO must not block the worker waiting for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
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
        mode = os.fstat(handle.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise ImageError(name, "is a directory, not an image file")
        if stat.S_ISFIFO(mode):
            raise ImageError(name, "is a FIFO (named pipe), not a regular file")
        if not stat.S_ISREG(mode):
            raise ImageError(name, "is not a regular file (socket or device)")
        data = handle.read(size + 1)
    if len(data) != size or (md5 and hashlib.md5(data).hexdigest() != md5):
        raise ImageError(name, CHANGED)
    return data
