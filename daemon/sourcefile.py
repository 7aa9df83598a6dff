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


def read_queued(path: str, name: str, size: int, md5: str) -> bytes:
    """The ``size`` bytes at ``path`` whose MD5 is ``md5``.

    Raises :class:`~engine.errors.ImageError` (a final failure) when the file is gone, not a
    regular file, unreadable by permission, or no longer that content; other ``OSError`` (a share
    briefly away, its folder missing with the file) propagate so that the job is retried.
    """
    # O_NONBLOCK: a path swapped for a FIFO must not block the worker waiting for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if not os.path.isdir(os.path.dirname(path)):
            # Its folder is gone too: a share unmounted (its empty mount point left) or a folder
            # moved away, more likely back soon than a file deleted; an OSError is retried.
            raise FileNotFoundError(f"{name}: its folder {os.path.dirname(path)} is gone (share unmounted?)") \
                from None
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
