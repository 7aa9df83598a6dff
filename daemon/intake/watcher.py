"""Watch the shared folder and hand each new, finished file to a callback once.

Three sources feed one queue: watchdog events (inotify, or polling for network shares where
inotify sees nothing), a start-up scan (files dropped while the daemon was down) and a periodic
rescan (events do get lost). The watchdog handler only puts paths on the queue; one dispatcher
thread filters them, lets the :class:`~daemon.intake.stability.StabilityTracker` decide when a file has
stopped changing, and calls ``on_ready``. Deduplication by content is the intake's job; the watcher
only avoids handing the same unchanged file (path, size, mtime) twice in one process.

Links are not read as files: a link leading outside the folder is refused with a warning, one
inside is skipped (followed only with ``follow_symlinks``), and a pending file that turns into a
link, or whose folder does, is forgotten rather than handed with the link's target.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from daemon.intake.filters import is_clutter, relative_inside
from daemon.intake.stability import StabilityTracker, StableFile

log = logging.getLogger(__name__)

TICK_SECONDS = 0.2  # how often the dispatcher asks the tracker for stable files
ROOT_CHECK_SECONDS = 1.0  # how often it checks that the folder (maybe a share) is still there
MAX_DRAIN = 10_000  # queued paths handled per tick, so that due files are not starved
_REFUSED_LIMIT = 10_000
_FILE_EVENTS = frozenset({"created", "modified", "moved", "closed", "attrib"})
_FINISHED_EVENTS = frozenset({"moved", "closed"})
T = TypeVar("T")


class _QueueingHandler(FileSystemEventHandler):
    """Puts file paths on the dispatcher's queue and nothing else (it runs on watchdog's thread)."""

    def __init__(self, paths: queue.Queue[tuple[Path, bool]]) -> None:
        self._paths = paths

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in _FILE_EVENTS:
            return
        target = event.dest_path if event.event_type == "moved" else event.src_path
        if target:
            # closed-after-writing and renamed-into-place files are most likely complete
            self._paths.put((Path(os.fsdecode(target)), event.event_type in _FINISHED_EVENTS))


class FolderWatcher:
    """Calls ``on_ready(path)`` for every regular file under ``root`` once it has stopped changing.

    ``polling`` selects watchdog's PollingObserver (every ``poll_interval`` seconds), which works on
    SMB/NFS mounts where inotify gets no events for changes made by other machines.
    """

    def __init__(
        self,
        root: Path,
        on_ready: Callable[[Path], None],
        *,
        polling: bool,
        poll_interval: float,
        stable_seconds: float,
        rescan_seconds: float,
        follow_symlinks: bool = False,
        clock: Callable[[], float] = time.monotonic,
        handed_limit: int = 100_000,
    ) -> None:
        if poll_interval <= 0 or rescan_seconds <= 0:
            raise ValueError(f"poll_interval ({poll_interval}) and rescan_seconds ({rescan_seconds}) must be > 0")
        self.root = Path(os.path.abspath(root))
        self._on_ready = on_ready
        self._polling = polling
        self._poll_interval = poll_interval
        self._rescan_seconds = rescan_seconds
        self._follow_symlinks = follow_symlinks
        self._clock = clock
        self._tracker = StabilityTracker(stable_seconds, clock, root=self.root, follow_symlinks=follow_symlinks)
        self._queue: queue.Queue[tuple[Path, bool]] = queue.Queue()
        self._handler = _QueueingHandler(self._queue)
        self._handed: collections.OrderedDict[Path, tuple[int, int]] = collections.OrderedDict()
        self._handed_limit = handed_limit
        self._refused: set[Path] = set()
        self._special: set[Path] = set()
        self._observer: BaseObserver | None = None
        self._root_id: tuple[int, int] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.scans_completed = 0  # start-up scan and rescans that walked the whole tree

    def start(self) -> None:
        """Create the folder if missing, start the observer, then the dispatcher (it scans first)."""
        if self._thread is not None:
            raise RuntimeError("FolderWatcher.start() called twice")
        self.root.mkdir(parents=True, exist_ok=True)
        self._start_observer()
        self._thread = threading.Thread(target=self._run, name=f"watcher:{self.root.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the observer and the dispatcher and wait for both."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("watcher thread for %s did not stop within %.1fs", self.root, timeout)
        self._stop_observer(timeout)

    def __enter__(self) -> FolderWatcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _start_observer(self) -> None:
        """Schedule a fresh observer on the root; when that fails, log it and go on with rescans."""
        observer = PollingObserver(timeout=self._poll_interval) if self._polling else Observer()
        try:
            self._root_id = _dir_id(self.root)
            observer.schedule(self._handler, str(self.root), recursive=True)
            observer.start()
        except OSError as exc:
            # The root vanished meanwhile, or inotify ran out of watches; rescans still work.
            log.warning("cannot watch %s (%s); relying on rescans every %.1fs", self.root, exc, self._rescan_seconds)
            observer.stop()
            return
        if self._polling:
            log.info(
                "watching %s with polling observer every %.1fs (for network shares)", self.root, self._poll_interval
            )
        else:
            log.info("watching %s with inotify observer", self.root)
        self._observer = observer

    def _stop_observer(self, timeout: float = 5.0) -> None:
        observer, self._observer = self._observer, None
        if observer is None:
            return
        observer.stop()
        if observer.is_alive():
            observer.join(timeout)

    def _observer_healthy(self) -> bool:
        obs = self._observer
        return obs is not None and obs.is_alive() and all(e.is_alive() for e in obs.emitters)

    def _run(self) -> None:
        root_ok = True
        self._guarded(self._scan, "start-up scan")
        next_rescan = self._clock() + self._rescan_seconds
        next_root_check = self._clock() + ROOT_CHECK_SECONDS
        while not self._stopping.is_set():
            paths: list[tuple[Path, bool]] = []
            try:
                paths.append(self._queue.get(timeout=TICK_SECONDS))
                while len(paths) < MAX_DRAIN:
                    paths.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            for path, finished in paths:
                self._guarded(functools.partial(self._consider, path, finished=finished), "event")
            now = self._clock()
            if now >= next_root_check:
                next_root_check = now + ROOT_CHECK_SECONDS
                root_ok = self._check_root(root_ok)
            if root_ok and now >= next_rescan:
                next_rescan = now + self._rescan_seconds
                self._guarded(self._scan, "rescan")
            for ready in self._guarded(self._tracker.pop_due, "stability check") or []:
                if self._stopping.is_set():
                    break
                self._hand(ready)

    def _guarded(self, step: Callable[[], T], what: str) -> T | None:
        """Run one step of the loop; an unexpected error is logged and the loop goes on."""
        try:
            return step()
        except Exception:
            log.exception("watcher %s of %s failed; continuing", what, self.root)
            return None

    def _check_root(self, root_ok: bool) -> bool:
        """Notice the folder going away (unmounted share) and coming back; True while it exists."""
        current = _dir_id(self.root)
        if current is None:
            if root_ok:
                log.warning(
                    "watched folder %s is gone (unmounted share?); retrying every %.1fs", self.root, ROOT_CHECK_SECONDS
                )
                self._stop_observer()
            return False
        healthy = self._observer is None or self._observer_healthy()  # None: failed to start, logged
        if root_ok and current == self._root_id and healthy:
            return True
        if root_ok and current != self._root_id:
            # An unmounted share leaves its empty mount point behind, a remount hides that again.
            log.warning(
                "watched folder %s was replaced by another folder (a share unmounted or mounted "
                "again?); watching the new one and rescanning",
                self.root,
            )
        else:
            log.info("watched folder %s is back; rescheduling the observer and rescanning", self.root)
        self._stop_observer()
        self._start_observer()
        self._guarded(self._scan, "rescan")
        return True

    def _scan(self) -> None:
        """Walk the tree, considering every file; forget handed files that are gone."""
        seen: set[Path] = set()
        errors: list[OSError] = []

        def on_error(exc: OSError) -> None:
            log.debug("cannot list %s: %s", exc.filename, exc)
            errors.append(exc)

        # Symlinked folders are never walked: inside ones are walked under their real name, and
        # outside ones are refused. That also rules out symlink loops.
        for dirpath, dirnames, filenames in os.walk(self.root, onerror=on_error):
            if self._stopping.is_set():
                return
            base = Path(dirpath)
            dirnames[:] = [d for d in dirnames if not is_clutter((base / d).relative_to(self.root))]
            for name in filenames:
                seen.add(base / name)
                self._consider(base / name, walked=True)
        self.scans_completed += 1
        if not errors:  # an unreadable folder (or a share going away) is no proof files are gone
            for path in [p for p in self._handed if p not in seen]:
                del self._handed[path]

    def _consider(self, path: Path, walked: bool = False, finished: bool = False) -> None:
        """Pass ``path`` to the tracker unless it is clutter, a refused symlink or already handed."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            log.debug("%s is not under %s; ignored", path, self.root)
            return
        reason = is_clutter(rel)
        if reason is not None:
            log.debug("skipping %s (%s)", path, reason)
            return
        if not walked and rel.parent != relative_inside(self.root, path.parent):
            # An event from inside a symlinked folder (the polling observer follows them), or a folder
            # that became a link since: what lies behind it is another folder's, never read as this one.
            self._tracker.forget(path)
            if relative_inside(self.root, path.parent) is None:
                self._refuse(path.parent)
            return
        try:
            st = os.lstat(path)
        except OSError:
            self._tracker.forget(path)
            return
        is_link = stat.S_ISLNK(st.st_mode)
        if is_link and relative_inside(self.root, path) is None:
            self._tracker.forget(path)
            self._refuse(path)
            return
        if is_link and not self._follow_symlinks:
            # A file swapped for a link (``mv -f link x.png``) must not stay pending: the tracker
            # would otherwise go on to hand the link's target as the file dropped here.
            self._tracker.forget(path)
            log.debug("skipping symlink %s (follow_symlinks is off)", path)
            return
        try:
            st = os.stat(path) if is_link else st
        except OSError:
            self._tracker.forget(path)
            return  # a dangling symlink
        if not stat.S_ISREG(st.st_mode):
            self._tracker.forget(path)
            self._skip_special(path, st.st_mode)
        elif self._handed.get(path) != (st.st_size, st.st_mtime_ns):
            self._tracker.observe(path, finished=finished)

    def _skip_special(self, path: Path, mode: int) -> None:
        """Say once why a FIFO, socket or device in the folder is not read (a folder is just walked)."""
        if stat.S_ISDIR(mode) or path in self._special:
            return
        if len(self._special) >= _REFUSED_LIMIT:
            self._special.clear()
        self._special.add(path)
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        log.info("skipping %s: not a regular file (%s)", path, kind)

    def _refuse(self, path: Path) -> None:
        if path in self._refused:
            return
        if len(self._refused) >= _REFUSED_LIMIT:
            self._refused.clear()  # warn again rather than grow without bound
        self._refused.add(path)
        log.warning(
            "refusing %s: it points outside the watched folder %s (to %s)", path, self.root, os.path.realpath(path)
        )

    def _hand(self, ready: StableFile) -> None:
        key = (ready.size, ready.mtime_ns)
        if self._handed.get(ready.path) == key:
            return
        self._handed[ready.path] = key
        self._handed.move_to_end(ready.path)
        while len(self._handed) > self._handed_limit:
            self._handed.popitem(last=False)
        try:
            self._on_ready(ready.path)
        except Exception as exc:  # noqa: BLE001 - e.g. Redis away: the next rescan hands it again
            self._handed.pop(ready.path, None)
            log.warning(
                "handling %s failed (%s: %s); it is retried at the next rescan", ready.path, type(exc).__name__, exc
            )


def _dir_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the directory ``path``, or None when it is missing or not a directory."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
