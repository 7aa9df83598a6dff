"""Wait until a file has stopped changing before anyone reads it.

A copy onto a share arrives in pieces; reading it half-way gives a broken image. The tracker keeps
the (size, mtime_ns) last seen for each pending path and calls a path stable once that pair has
not changed for ``stable_seconds``. It never sleeps: the caller asks :meth:`StabilityTracker.due`
on its own tick.

A pending path that is or becomes a symbolic link (``mv -f link x.png`` over a file being
watched), or whose folder becomes one, is dropped: reading through it would read another file
than the one dropped there (another team's). Only with ``follow_symlinks`` is a file link stat'ed
through (the intake then checks where it leads).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# An empty file may be one a writer has just created and not written yet; give it longer.
EMPTY_FILE_FACTOR = 3.0
# A file its writer has closed, or that was renamed into place, is very likely complete: it only
# has to hold still this long (unless it changes again, which drops the hint).
SETTLED_SECONDS = 0.15


@dataclasses.dataclass(frozen=True)
class StableFile:
    """A file whose size and mtime have not changed for the tracker's ``stable_seconds``."""

    path: Path
    size: int
    mtime_ns: int


@dataclasses.dataclass
class _Pending:
    size: int
    mtime_ns: int
    since: float
    finished: bool = False  # closed by its writer or renamed into place, at this size and mtime


def _stat_file(path: Path, follow_symlinks: bool = False) -> os.stat_result | None:
    """The stat of a regular file, or None when it is gone, not a regular file, or a symbolic link
    (a link is stat'ed through only with ``follow_symlinks``)."""
    try:
        st = os.stat(path) if follow_symlinks else os.lstat(path)
    except OSError as exc:
        log.debug("%s vanished before it was stable: %s", path, exc)
        return None
    if stat.S_ISLNK(st.st_mode):
        log.debug("%s is a symbolic link now; dropped", path)
        return None
    if not stat.S_ISREG(st.st_mode):
        log.debug("%s is no longer a regular file; dropped", path)
        return None
    return st


class _Folders:
    """Whether each folder is where its path says inside ``root``, no link on the way (one check
    per folder per pass, however many pending files it holds)."""

    def __init__(self, root: Path | None) -> None:
        self._root = root
        self._real_root = os.path.realpath(root) if root is not None else ""
        self._known: dict[Path, bool] = {}

    def real(self, folder: Path) -> bool:
        if self._root is None:
            return True
        known = self._known.get(folder)
        if known is None:
            try:
                rel = os.path.relpath(os.path.abspath(folder), os.path.abspath(self._root))
            except ValueError:
                rel = os.pardir
            expected = os.path.normpath(os.path.join(self._real_root, rel))
            known = not rel.startswith(os.pardir) and os.path.realpath(folder) == expected
            self._known[folder] = known
            if not known:
                log.debug("%s is a symbolic link now, or lies under one; its files are dropped", folder)
        return known


class StabilityTracker:
    """Pending paths and the moment each was first seen with its current size and mtime.

    Thread-safe: the watcher's dispatcher observes and asks, tests may observe from elsewhere.
    """

    def __init__(
        self,
        stable_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        root: Path | None = None,
        follow_symlinks: bool = False,
    ) -> None:
        """``root``: the watched folder; a pending file whose folder is no longer its real self
        there (the folder or one above it became a link) is dropped. None: folders are not checked.
        ``follow_symlinks``: stat file links through rather than dropping them."""
        if stable_seconds < 0:
            raise ValueError(f"stable_seconds must be >= 0, got {stable_seconds!r}")
        self._stable_seconds = stable_seconds
        self._clock = clock
        self._root = root
        self._follow = follow_symlinks
        self._lock = threading.Lock()
        self._pending: dict[Path, _Pending] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def __contains__(self, path: object) -> bool:
        with self._lock:
            return path in self._pending

    def observe(self, path: Path, finished: bool = False) -> None:
        """Start (or keep) tracking ``path``; a changed size or mtime restarts its timer.

        ``finished``: the writer closed the file or it was renamed into place (an inotify
        close-write or move event), so it need only hold still for :data:`SETTLED_SECONDS`.
        """
        st = self._stat(path, _Folders(self._root))
        now = self._clock()
        with self._lock:
            if st is None:
                self._pending.pop(path, None)
                return
            entry = self._update(path, st, now)
            if finished:
                entry.finished = True

    def forget(self, path: Path) -> None:
        """Stop tracking ``path`` (nothing happens when it is not tracked)."""
        with self._lock:
            self._pending.pop(path, None)

    def pop_due(self, now: float | None = None) -> list[StableFile]:
        """Re-stat every pending path; return (and forget) those unchanged for long enough."""
        with self._lock:
            paths = list(self._pending)
        # Stat outside the lock: on a slow share this may take a while.
        folders = _Folders(self._root)
        stats = {path: self._stat(path, folders) for path in paths}
        if now is None:
            now = self._clock()
        ready: list[StableFile] = []
        with self._lock:
            for path, st in stats.items():
                if path not in self._pending:
                    continue  # forgotten meanwhile
                if st is None:
                    del self._pending[path]
                    continue
                entry = self._update(path, st, now)
                wait = self._stable_seconds * (EMPTY_FILE_FACTOR if entry.size == 0 else 1.0)
                if entry.finished and entry.size > 0:
                    wait = min(wait, SETTLED_SECONDS)
                if now - entry.since >= wait:
                    del self._pending[path]
                    ready.append(StableFile(path, entry.size, entry.mtime_ns))
        ready.sort(key=lambda f: str(f.path))
        return ready

    def due(self, now: float | None = None) -> list[Path]:
        """The paths of :meth:`pop_due`: each stable path is returned once, then forgotten."""
        return [f.path for f in self.pop_due(now)]

    def _stat(self, path: Path, folders: _Folders) -> os.stat_result | None:
        if not folders.real(path.parent):
            return None
        return _stat_file(path, self._follow)

    def _update(self, path: Path, st: os.stat_result, now: float) -> _Pending:
        entry = self._pending.get(path)
        if entry is None or (entry.size, entry.mtime_ns) != (st.st_size, st.st_mtime_ns):
            entry = _Pending(st.st_size, st.st_mtime_ns, now)
            self._pending[path] = entry
        return entry
