"""StabilityTracker: size and mtime must stay unchanged for stable_seconds (driven by a fake clock)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from daemon.intake.stability import StabilityTracker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _write(path: Path, data: bytes, mtime_ns: int | None = None) -> None:
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def test_a_file_is_due_once_after_stable_seconds(tmp_path: Path, clock: FakeClock) -> None:
    f = tmp_path / "a.png"
    _write(f, b"abc")
    tracker = StabilityTracker(1.0, clock=clock)
    tracker.observe(f)
    assert tracker.due() == []
    clock.now += 0.5
    assert tracker.due() == []
    clock.now += 0.5
    assert tracker.due() == [f]
    assert tracker.due() == []  # returned once, then forgotten
    assert f not in tracker and len(tracker) == 0


def test_pop_due_reports_the_size_and_mtime_it_checked(tmp_path: Path, clock: FakeClock) -> None:
    f = tmp_path / "a.png"
    _write(f, b"abcd", mtime_ns=1_700_000_000_000_000_000)
    tracker = StabilityTracker(0.0, clock=clock)
    tracker.observe(f)
    [ready] = tracker.pop_due()
    assert (ready.path, ready.size, ready.mtime_ns) == (f, 4, 1_700_000_000_000_000_000)


def test_a_change_resets_the_timer(tmp_path: Path, clock: FakeClock) -> None:
    f = tmp_path / "a.png"
    _write(f, b"a", mtime_ns=1_000_000_000)
    tracker = StabilityTracker(1.0, clock=clock)
    tracker.observe(f)
    clock.now += 0.9
    _write(f, b"ab", mtime_ns=2_000_000_000)  # still being written
    assert tracker.due() == []  # the re-stat sees the change: timer restarts now
    clock.now += 0.9
    assert tracker.due() == []
    clock.now += 0.1
    assert tracker.due() == [f]


def test_an_mtime_change_alone_resets_the_timer(tmp_path: Path, clock: FakeClock) -> None:
    f = tmp_path / "a.png"
    _write(f, b"same", mtime_ns=1_000_000_000)
    tracker = StabilityTracker(1.0, clock=clock)
    tracker.observe(f)
    clock.now += 0.9
    _write(f, b"SAME", mtime_ns=3_000_000_000)
    tracker.observe(f)  # an event for the rewrite
    clock.now += 0.9
    assert tracker.due() == []
    clock.now += 0.1
    assert tracker.due() == [f]


def test_observing_an_unchanged_file_keeps_its_timer(tmp_path: Path, clock: FakeClock) -> None:
    f = tmp_path / "a.png"
    _write(f, b"abc")
    tracker = StabilityTracker(1.0, clock=clock)
    tracker.observe(f)
    clock.now += 0.6
    tracker.observe(f)  # a repeated event must not postpone a finished file
    clock.now += 0.4
    assert tracker.due() == [f]


def test_a_vanished_file_is_dropped(tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="daemon.intake.stability")
    f = tmp_path / "a.png"
    _write(f, b"abc")
    tracker = StabilityTracker(1.0, clock=clock)
    tracker.observe(f)
    f.unlink()
    clock.now += 5
    assert tracker.due() == []
    assert len(tracker) == 0
    assert any("a.png" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
    tracker.observe(tmp_path / "never-there.png")
    assert len(tracker) == 0


def test_empty_files_wait_three_times_longer(tmp_path: Path, clock: FakeClock) -> None:
    f = tmp_path / "empty.png"
    _write(f, b"")
    tracker = StabilityTracker(1.0, clock=clock)
    tracker.observe(f)
    clock.now += 2.9
    assert tracker.due() == []
    clock.now += 0.1
    assert tracker.due() == [f]  # the pipeline records it as an empty file


def test_an_empty_file_that_gets_written_is_due_with_its_content(tmp_path: Path, clock: FakeClock) -> None:
    f = tmp_path / "a.png"
    _write(f, b"", mtime_ns=1_000_000_000)
    tracker = StabilityTracker(1.0, clock=clock)
    tracker.observe(f)
    clock.now += 1.5
    _write(f, b"data", mtime_ns=2_000_000_000)
    assert tracker.due() == []
    clock.now += 1.0
    [ready] = tracker.pop_due()
    assert ready.size == 4


def test_directories_are_not_tracked(tmp_path: Path, clock: FakeClock) -> None:
    tracker = StabilityTracker(0.0, clock=clock)
    tracker.observe(tmp_path)
    assert tracker.due() == []


def test_explicit_now_and_forget(tmp_path: Path, clock: FakeClock) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    _write(a, b"a")
    _write(b, b"b")
    tracker = StabilityTracker(1.0, clock=clock)
    tracker.observe(a)
    tracker.observe(b)
    tracker.forget(b)
    assert tracker.due(now=clock.now + 1.0) == [a]


def test_negative_stable_seconds_is_refused() -> None:
    with pytest.raises(ValueError, match="stable_seconds"):
        StabilityTracker(-1.0)


def test_concurrent_observers_and_askers(tmp_path: Path, clock: FakeClock) -> None:
    files = []
    for i in range(200):
        f = tmp_path / f"{i}.png"
        _write(f, b"x")
        files.append(f)
    tracker = StabilityTracker(0.0, clock=clock)
    got: list[Path] = []
    lock = threading.Lock()

    def observe(chunk: list[Path]) -> None:
        for f in chunk:
            tracker.observe(f)

    def ask() -> None:
        for _ in range(50):
            due = tracker.due()
            with lock:
                got.extend(due)

    threads = [threading.Thread(target=observe, args=(files[i::4],)) for i in range(4)]
    threads += [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got.extend(tracker.due())
    assert sorted(got) == sorted(files)  # each exactly once
