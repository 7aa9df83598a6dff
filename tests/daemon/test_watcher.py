"""FolderWatcher against real folders and real watchdog observers (inotify and polling).

Nothing here sleeps for a fixed time: tests wait for a condition with a deadline, and prove that
something did *not* happen by waiting for a later marker (a later file, or more completed scans).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.intake.watcher import FolderWatcher
from tests.polling import wait_until

STABLE = 0.3
WAIT = 60.0  # seconds; a generous deadline for what the watcher does, never a sleep


pytestmark = pytest.mark.usefixtures("no_leaked_threads")


class Handed:
    """The on_ready callback: records each path with the size it had when handed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[Path, int, float]] = []

    def __call__(self, path: Path) -> None:
        with self.lock:
            self.calls.append((path, path.stat().st_size, time.monotonic()))

    def paths(self) -> list[Path]:
        with self.lock:
            return [p for p, _, _ in self.calls]

    def count(self, path: Path) -> int:
        return self.paths().count(path)

    def has(self, path: Path) -> bool:
        return path in self.paths()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "shared"
    r.mkdir()
    return r


@pytest.fixture
def handed() -> Handed:
    return Handed()


MODES = [pytest.param(False, id="inotify"), pytest.param(True, id="polling")]


def make(root: Path, handed: Callable[[Path], None], polling: bool, **kw: object) -> FolderWatcher:
    options: dict[str, object] = {"poll_interval": 0.1, "stable_seconds": STABLE, "rescan_seconds": 3600.0}
    options.update(kw)
    return FolderWatcher(root, handed, polling=polling, **options)  # type: ignore[arg-type]


def drop(path: Path, data: bytes = b"data") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("polling", MODES)
def test_a_slowly_written_file_is_handed_once_after_it_stopped_changing(
    root: Path, handed: Handed, polling: bool
) -> None:
    target = root / "team" / "scan.png"
    target.parent.mkdir()
    finished: list[float] = []

    def writer() -> None:
        with open(target, "wb") as fh:
            for _ in range(10):
                fh.write(b"x" * 1000)
                fh.flush()
                time.sleep(0.05)  # a slow copy: pauses far shorter than stable_seconds
        finished.append(time.monotonic())

    # stable_seconds 60 times the writer's pauses: a stalled writer thread on a busy machine still
    # looks like a copy in progress
    with make(root, handed, polling, stable_seconds=3.0):
        t = threading.Thread(target=writer)
        t.start()
        wait_until(lambda: handed.has(target), WAIT, "the slow copy handed")
        t.join()
        marker = drop(root / "marker.png")
        wait_until(lambda: handed.has(marker), WAIT, "the marker handed")
    [(_, size, at)] = [c for c in handed.calls if c[0] == target]
    assert size == 10_000
    assert at >= finished[0]


@pytest.mark.parametrize("polling", MODES)
def test_clutter_is_skipped_but_other_files_are_handed(root: Path, handed: Handed, polling: bool) -> None:
    with make(root, handed, polling):
        for rel in [".hidden.png", "~$doc.docx", "a.jpg.part", "@eaDir/x.jpg", "team/Thumbs.db", "._x.png"]:
            drop(root / rel)
        good = drop(root / "team" / "good.png")
        pdf = drop(root / "notes.pdf")  # not an image, but not clutter: the pipeline says why
        wait_until(lambda: handed.has(good) and handed.has(pdf), WAIT, "good.png and notes.pdf handed")
        marker = drop(root / "marker.png")
        wait_until(lambda: handed.has(marker), WAIT, "the marker handed")
    assert sorted(handed.paths()) == sorted([good, pdf, marker])


def test_files_present_before_start_are_handed(root: Path, handed: Handed) -> None:
    before = [drop(root / "a.png"), drop(root / "sales" / "2024" / "b.jpg"), drop(root / "empty.png", b"")]
    # A huge poll interval and rescan period: only the start-up scan can find these.
    with make(root, handed, True, poll_interval=3600.0, rescan_seconds=3600.0):
        wait_until(lambda: all(handed.has(p) for p in before), WAIT, "the files present before the start handed")
    assert sorted(handed.paths()) == sorted(before)


def test_start_creates_a_missing_root(tmp_path: Path, handed: Handed) -> None:
    root = tmp_path / "not" / "yet"
    with make(root, handed, False):
        assert root.is_dir()
        f = drop(root / "a.png")
        wait_until(lambda: handed.has(f), WAIT, "a.png handed")


def test_a_rescan_finds_a_file_whose_event_was_lost(root: Path, handed: Handed) -> None:
    first = drop(root / "first.png")
    # The observer polls once an hour, so its events never come: only the rescan can see new files.
    with make(root, handed, True, poll_interval=3600.0, rescan_seconds=0.5) as watcher:
        wait_until(lambda: handed.has(first), WAIT, "first.png handed")
        scans = watcher.scans_completed
        late = drop(root / "team" / "late.png")
        wait_until(lambda: handed.has(late), WAIT, "late.png handed by a rescan")
        assert watcher.scans_completed > scans


@pytest.mark.parametrize("polling", MODES)
def test_event_and_rescans_do_not_hand_the_same_file_twice(root: Path, handed: Handed, polling: bool) -> None:
    with make(root, handed, polling, rescan_seconds=0.2) as watcher:
        f = drop(root / "a.png")
        wait_until(lambda: handed.has(f), WAIT, "a.png handed")
        scans = watcher.scans_completed
        wait_until(lambda: watcher.scans_completed >= scans + 3, WAIT, "3 more rescans")
        assert handed.count(f) == 1
        # A changed file is new work (the intake decides by content whether it is a duplicate).
        with open(f, "ab") as fh:
            fh.write(b"more")
        wait_until(lambda: handed.count(f) == 2, WAIT, "the changed a.png handed again")
        scans = watcher.scans_completed
        wait_until(lambda: watcher.scans_completed >= scans + 3, WAIT, "3 more rescans")
    assert handed.count(f) == 2
    assert [size for p, size, _ in handed.calls if p == f] == [4, 8]


@pytest.mark.parametrize("polling", MODES)
@pytest.mark.parametrize("follow", [False, True], ids=["nofollow", "follow"])
def test_symlinks_to_outside_are_refused(
    tmp_path: Path, root: Path, handed: Handed, caplog: pytest.LogCaptureFixture, follow: bool, polling: bool
) -> None:
    caplog.set_level(logging.INFO, logger="daemon.intake.watcher")
    outside = tmp_path / "outside"
    secret = drop(outside / "secret.png")
    inside = drop(root / "real" / "inside.png")
    os.symlink(secret, root / "evil.png")
    os.symlink(inside, root / "alias.png")
    os.symlink(outside, root / "evil-dir")  # the polling observer descends into symlinked folders
    os.symlink(root / "real", root / "alias-dir")
    with make(root, handed, polling, rescan_seconds=0.2, follow_symlinks=follow) as watcher:
        wait_until(lambda: handed.has(inside), WAIT, "inside.png handed")
        os.symlink(secret, root / "evil2.png")  # also through an event
        more = drop(outside / "more.png")
        fresh = drop(root / "real" / "fresh.png")
        wait_until(lambda: handed.has(fresh), WAIT, "fresh.png handed")
        scans = watcher.scans_completed
        wait_until(lambda: watcher.scans_completed >= scans + 2, WAIT, "2 more rescans")
    expected = [inside, fresh] + ([root / "alias.png"] if follow else [])
    assert sorted(handed.paths()) == sorted(expected)  # nothing twice through alias-dir, nothing outside
    assert more.exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in ("evil.png", "evil2.png"):
        assert len([m for m in warnings if f"{name}:" in m]) == 1  # warned once, not on every rescan
    if polling:
        assert any("evil-dir:" in m for m in warnings)


def test_an_exception_in_on_ready_does_not_stop_the_watcher(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    good: list[Path] = []

    def on_ready(path: Path) -> None:
        if path.name == "bad.png":
            raise RuntimeError("boom")
        good.append(path)

    with make(root, on_ready, False):
        drop(root / "bad.png")
        wait_until(
            lambda: any("bad.png" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING),
            WAIT,
            "the warning about bad.png",
        )
        ok = drop(root / "ok.png")
        wait_until(lambda: ok in good, WAIT, "ok.png handed")
    record = next(r for r in caplog.records if "bad.png" in r.getMessage())
    assert "boom" in record.getMessage() and "retried at the next rescan" in record.getMessage()


@pytest.mark.parametrize("polling", MODES)
def test_the_observer_in_use_is_logged(
    root: Path, handed: Handed, caplog: pytest.LogCaptureFixture, polling: bool
) -> None:
    caplog.set_level(logging.INFO, logger="daemon.intake.watcher")
    with make(root, handed, polling, poll_interval=2.5):
        pass
    expected = "polling observer every 2.5s" if polling else "inotify observer"
    assert any(expected in r.getMessage() and str(root) in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("polling", MODES)
def test_a_folder_that_goes_away_and_comes_back_is_recovered(
    tmp_path: Path, root: Path, handed: Handed, caplog: pytest.LogCaptureFixture, polling: bool
) -> None:
    caplog.set_level(logging.INFO, logger="daemon.intake.watcher")

    def logged(level: int, text: str) -> int:
        return len([r for r in caplog.records if r.levelno == level and text in r.getMessage()])

    first = drop(root / "first.png")
    away = tmp_path / "unmounted"
    with make(root, handed, polling):
        wait_until(lambda: handed.has(first), WAIT, "first.png handed")
        root.rename(away)
        wait_until(lambda: logged(logging.WARNING, "is gone"), WAIT, "the warning that the folder is gone")
        while_down = drop(away / "team" / "while-down.png")  # dropped while the share was away
        away.rename(root)
        wait_until(lambda: logged(logging.INFO, "is back"), WAIT, "the notice that the folder is back")
        wait_until(lambda: handed.has(root / "team" / "while-down.png"), WAIT, "while-down.png handed")
        # The observer was rescheduled: a new file is seen by event (rescans are an hour apart).
        after = drop(root / "after.png")
        wait_until(lambda: handed.has(after), WAIT, "after.png handed")
    assert logged(logging.WARNING, "is gone") == 1
    assert handed.count(first) == 1 and not while_down.exists()
    assert sorted(handed.paths()) == sorted([first, root / "team" / "while-down.png", after])


def test_stop_without_start_and_twice_is_harmless(root: Path, handed: Handed) -> None:
    watcher = make(root, handed, False)
    watcher.stop()
    watcher.start()
    with pytest.raises(RuntimeError):
        watcher.start()
    watcher.stop()
    watcher.stop()


def test_a_file_closed_or_renamed_into_place_is_handed_without_the_full_wait(root: Path, handed: Handed) -> None:
    """inotify's close-write and move events say the writer is done: no need to wait
    stable_seconds (here 120 s) before handing the file on."""
    full_wait = 120.0
    with make(root, handed, False, stable_seconds=full_wait):
        start = time.monotonic()
        drop(root / "closed.png", b"x" * 1000)  # write_bytes closes the file: IN_CLOSE_WRITE
        staged = drop(root / ".renamed.png.tmp", b"y" * 1000)
        os.rename(staged, root / "renamed.png")  # IN_MOVED_TO
        wait_until(lambda: len(handed.calls) == 2, full_wait / 2, "both files handed")
    assert time.monotonic() - start < full_wait / 2  # well before stable_seconds, however busy the machine
    assert sorted(p.name for p, _, _ in handed.calls) == ["closed.png", "renamed.png"]


def test_a_file_appended_to_after_a_close_is_handed_again_in_its_final_form(root: Path, handed: Handed) -> None:
    """A writer that closes and reopens to append may have a partial version handed early (its
    close looked final); every later change hands the file again, so the final content is never
    missed (the partial one fails as truncated and the complete one is read)."""
    with make(root, handed, False, stable_seconds=1.0):
        path = drop(root / "growing.png", b"a" * 100)
        for _ in range(3):
            time.sleep(0.4)  # longer than the settle time of a closed file
            with open(path, "ab") as handle:
                handle.write(b"b" * 100)
        wait_until(lambda: handed.calls and handed.calls[-1][1] == 400, WAIT, "growing.png handed at 400 bytes")
    assert [size for _, size, _ in handed.calls] == sorted(size for _, size, _ in handed.calls)
