"""Hostile input through the shared folder of one running daemon: every kind its own test case.

Each kind ends in a stored record (done with the text, or failed with an error naming the cause) or,
for things that are not files (a FIFO, a socket, a folder, a link leading outside), in no record and
a log line saying why; the daemon stays up throughout and still reads a good file at the end.
The byte-level kinds come from the shared table in ``makers.py``; the folder-only ones are below.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from daemon.records import Status
from tests.hostile import makers
from tests.hostile.conftest import Daemon
from tests.hostile.makers import KINDS, Kind
from tests.polling import wait_until

FOLDER_SALT = 0  # the upload run uses other salts, so no content is shared between the two runs
_sentinels = itertools.count(1)


def folder_of(daemon: Daemon, name: str) -> Path:
    folder = daemon.settings.shared_dir / "hostile" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def good_file(folder: Path) -> Path:
    """A small real image (read fast, no text), new content each time, to prove the watcher got past a spot."""
    n = next(_sentinels)
    path = folder / f"sentinel-{n}.png"
    path.write_bytes(makers.encode(".png", np.full((2, 2 + n, 3), 200, np.uint8)))
    return path


@pytest.mark.parametrize("kind", [k for k in KINDS if k.folder is not None], ids=lambda k: k.name)
def test_file_kind(daemon: Daemon, kind: Kind) -> None:
    assert kind.folder is not None
    path = folder_of(daemon, kind.name) / kind.filename
    path.write_bytes(kind.make(FOLDER_SALT + KINDS.index(kind)))
    rec = daemon.final(path)
    assert rec.filename == kind.filename
    if kind.folder.status == "done":
        assert rec.status == Status.DONE, rec.error
        assert kind.folder.fragment in rec.text.lower(), rec.text
    else:
        assert rec.status == Status.FAILED, rec
        assert rec.error and kind.folder.fragment in rec.error, rec.error
        assert str(daemon.settings.shared_dir) not in rec.error  # names the file, not the server's layout
    daemon.assert_alive()


# -- kinds only a folder can hold ------------------------------------------------------------------


def expect_skipped(daemon: Daemon, folder: Path, path: Path, *log_parts: str) -> None:
    """No record for ``path``, a log line with ``log_parts``, and the watcher went on past it."""
    wait_until(lambda: daemon.log.has(*log_parts), 60, f"a log line with {log_parts}")
    sentinel = daemon.final(good_file(folder))
    assert sentinel.status == Status.DONE
    assert daemon.records_of(path) == []
    daemon.assert_alive()


def test_symlink_outside(daemon: Daemon, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(makers.png("Secret outside", 1))
    folder = folder_of(daemon, "symlink_outside")
    link = folder / "link.png"
    link.symlink_to(secret)
    expect_skipped(daemon, folder, link, "refusing", str(link), "points outside")


def test_symlink_inside_not_followed(daemon: Daemon) -> None:
    folder = folder_of(daemon, "symlink_inside")
    target = folder / "target.png"
    target.write_bytes(makers.one_pixel(7001))
    assert daemon.final(target).status == Status.DONE
    link = folder / "alias.png"
    link.symlink_to(target)
    expect_skipped(daemon, folder, link, "skipping symlink", str(link))


def test_fifo(daemon: Daemon) -> None:
    folder = folder_of(daemon, "fifo")
    fifo = folder / "pipe.png"
    os.mkfifo(fifo)
    expect_skipped(daemon, folder, fifo, str(fifo), "not a regular file")


def test_unix_socket(daemon: Daemon) -> None:
    folder = folder_of(daemon, "sock")
    path = folder / "s.png"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        expect_skipped(daemon, folder, path, str(path), "not a regular file")
    finally:
        server.close()


def test_folder_named_like_an_image(daemon: Daemon) -> None:
    folder = folder_of(daemon, "folder_named_png")
    album = folder / "album.png"
    inner = album / "inner.png"
    inner.parent.mkdir()
    inner.write_bytes(makers.png("Receipt paid", 7002))
    rec = daemon.final(inner)
    assert rec.status == Status.DONE and rec.channel == "hostile"
    assert daemon.records_of(album) == []
    daemon.assert_alive()


def test_hidden_lock_and_partial_files(daemon: Daemon) -> None:
    folder = folder_of(daemon, "clutter")
    names = [".hidden.png", "~$lock.png", "scan.png.part"]
    for i, name in enumerate(names):
        (folder / name).write_bytes(makers.one_pixel(7010 + i))
    for name in names:
        wait_until(lambda name=name: daemon.log.has("skipping", name), 60, f"the skip of {name}")
    sentinel = daemon.final(good_file(folder))
    assert sentinel.status == Status.DONE
    assert all(daemon.records_of(folder / name) == [] for name in names)


def test_unreadable_permissions(daemon: Daemon) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads a mode-000 file anyway")
    folder = folder_of(daemon, "unreadable")
    path = folder / "locked.png"
    path.write_bytes(makers.png("Receipt paid", 7020))
    path.chmod(0)
    rec = daemon.final(path)
    assert rec.status == Status.FAILED and rec.error and "ermission denied" in rec.error
    daemon.assert_alive()


# -- files changed between the intake and the worker's read (the worker paused meanwhile) -----------


def _queued_then(daemon: Daemon, name: str, change: Callable[[Path], None]) -> list:
    """Drop a good image, wait until it is queued, apply ``change`` with the worker paused, resume."""
    folder = folder_of(daemon, name)
    path = folder / "scan.png"
    daemon.pause_worker()
    try:
        path.write_bytes(makers.png("Receipt original", 7030 + next(_sentinels)))
        wait_until(lambda: daemon.records_of(path), 60, "the queued record")
        change(path)
    finally:
        daemon.resume_worker()
    return [path]


def test_deleted_before_it_is_read(daemon: Daemon) -> None:
    (path,) = _queued_then(daemon, "deleted", lambda p: p.unlink())
    rec = daemon.final(path)
    assert rec.status == Status.FAILED and rec.error and "file not found" in rec.error, rec.error
    daemon.assert_alive()


def test_replaced_after_it_was_queued(daemon: Daemon, tmp_path: Path) -> None:
    """The queued content is gone: its record fails saying so, the new content gets its own result."""

    def replace(path: Path) -> None:
        temp = path.with_name(".new.tmp")
        temp.write_bytes(makers.png("Invoice replaced", 7040))
        os.replace(temp, path)
        wait_until(lambda: len(daemon.records_of(path)) == 2, 60, "the new content's record")

    (path,) = _queued_then(daemon, "replaced", replace)
    wait_until(
        lambda: (
            all(r.status in (Status.DONE, Status.FAILED) for r in daemon.records_of(path))
            and len(daemon.records_of(path)) == 2
        ),
        120,
        "both records final",
    )
    first, second = sorted(daemon.records_of(path), key=lambda r: r.created_at)
    assert first.status == Status.FAILED and first.error and "changed after it was queued" in first.error
    assert second.status == Status.DONE and "invoice" in second.text.lower()
    daemon.assert_alive()


def test_replaced_by_a_symlink_outside(daemon: Daemon, tmp_path: Path) -> None:
    """Swapping a queued file for a link to a file elsewhere must not OCR (leak) that file."""
    secret = tmp_path / "secret.png"
    secret.write_bytes(makers.png("Secret outside", 7050))

    def swap(path: Path) -> None:
        link = path.with_name(".link.tmp")
        link.symlink_to(secret)
        os.replace(link, path)

    (path,) = _queued_then(daemon, "swapped_for_link", swap)
    rec = daemon.final(path)
    assert rec.status == Status.FAILED and rec.error, rec
    assert "secret" not in rec.text.lower()
    daemon.assert_alive()


def test_replaced_by_a_fifo(daemon: Daemon) -> None:
    def swap(path: Path) -> None:
        path.unlink()
        os.mkfifo(path)

    (path,) = _queued_then(daemon, "swapped_for_fifo", swap)
    rec = daemon.final(path)
    assert rec.status == Status.FAILED and rec.error and "FIFO" in rec.error, rec.error
    daemon.assert_alive()


def test_still_reads_a_good_file_after_everything(daemon: Daemon) -> None:
    path = folder_of(daemon, "after") / "final.png"
    path.write_bytes(makers.png("Receipt paid", 7099))
    rec = daemon.final(path)
    assert rec.status == Status.DONE and "receipt" in rec.text.lower()
    daemon.assert_alive()


def test_names_that_are_not_utf8_are_read_and_shown_decoded(daemon: Daemon) -> None:
    """A GBK name (old Windows tools, ZIPs made on Chinese Windows) is read, and shown and stored
    decoded; bytes that are neither UTF-8 nor GB18030 are shown escaped (daemon.names). The files
    on disk keep their names, each is recorded once (not again at every rescan)."""
    folder = folder_of(daemon, "not_utf8")
    gbk = os.path.join(os.fsencode(folder), "发票 七月.png".encode("gbk"))
    odd = os.path.join(os.fsencode(folder), b"re\xe7u \xff.png")
    for raw, words, seed in ((gbk, "Invoice 2026 July", 7061), (odd, "Receipt paid", 7060)):
        with open(raw, "wb") as out:
            out.write(makers.png(words, seed))
    decoded = daemon.final(folder / "发票 七月.png")
    assert decoded.status == Status.DONE and "invoice" in decoded.text.lower(), decoded.error
    assert decoded.filename == "发票 七月.png"
    shown = folder / "re\\xe7u \\xff.png"  # neither UTF-8 nor GB18030: each byte shown escaped
    escaped = daemon.final(shown)
    assert escaped.status == Status.DONE and "receipt" in escaped.text.lower(), escaped.error
    assert escaped.filename == shown.name
    assert daemon.final(good_file(folder)).status == Status.DONE  # a rescan or two later
    assert len(daemon.records_of(shown)) == 1 and len(daemon.records_of(folder / "发票 七月.png")) == 1
    assert os.path.exists(gbk) and os.path.exists(odd)  # never renamed
    daemon.assert_alive()
