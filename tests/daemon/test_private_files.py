"""What teamocr creates in the data folder is its user's alone: folders 0700, files 0600, whatever
the umask (the usual 022 here); and what an older version left readable by others is tightened."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from cli.folders import make_dirs
from daemon.queue.redisconn import open_redis
from daemon.queue.streams import Job
from daemon.results.store import SqliteStore
from daemon.worker.outputs import OutputWriter, remove_outputs


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_make_dirs_makes_the_data_folder_private(tmp_path: Path) -> None:
    make_dirs(tmp_path / "share", tmp_path / "a" / "data", mode=0o700)
    assert mode(tmp_path / "a" / "data") == 0o700 and mode(tmp_path / "share") == 0o700
    old = tmp_path / "old-data"
    old.mkdir(mode=0o755)
    os.chmod(old, 0o755)
    make_dirs(old, mode=0o700)
    assert mode(old) == 0o700  # an older install's data folder loses group and other bits
    make_dirs(tmp_path / "team-share")  # without a mode: the umask's (the shared folder is the team's)
    assert mode(tmp_path / "team-share") == 0o755


def test_the_store_files_are_private(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data" / "teamocr.sqlite3")
    try:
        store.counts()
        files = [p for p in (tmp_path / "data").iterdir() if p.name.startswith("teamocr.sqlite3")]
        assert {p.name for p in files} >= {"teamocr.sqlite3", "teamocr.sqlite3-wal", "teamocr.sqlite3-shm"}
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert mode(tmp_path / "data") == 0o700
    finally:
        store.close()
    os.chmod(tmp_path / "data" / "teamocr.sqlite3", 0o644)  # as an older version left it
    with SqliteStore(tmp_path / "data" / "teamocr.sqlite3") as again:
        again.counts()
        assert mode(tmp_path / "data" / "teamocr.sqlite3") == 0o600


def test_the_embedded_redis_folder_and_its_files_are_private(tmp_path: Path) -> None:
    (tmp_path / "data" / "redis").mkdir(parents=True, mode=0o755)
    os.chmod(tmp_path / "data" / "redis", 0o755)  # as an older version left it
    handle = open_redis(None, tmp_path / "data")
    try:
        handle.client.set("k", "v")
        folder = tmp_path / "data" / "redis"
        assert mode(folder) == 0o700
        entries = list(folder.rglob("*"))
        assert any("aof" in p.name for p in entries), [p.name for p in entries]  # the append-only file
        for entry in entries:
            if entry.is_file() and not entry.is_symlink():
                assert mode(entry) == 0o600, entry.name
    finally:
        handle.close()


def test_outputs_are_private_and_drawn_only_from_the_bytes_read(tmp_path: Path) -> None:
    ok, png = cv2.imencode(".png", np.full((60, 80, 3), 255, np.uint8))
    assert ok
    source = tmp_path / "share" / "page.png"
    source.parent.mkdir()
    source.write_bytes(png.tobytes())
    job = Job(
        id="r1",
        filename="page.png",
        path=str(source),
        channel="",
        size=len(png),
        md5=hashlib.md5(png).hexdigest(),
        created_at=0.0,
    )
    result = {"text": "x", "lines": [{"text": "x", "points": [[5, 5], [40, 5], [40, 20], [5, 20]]}]}
    writer = OutputWriter(tmp_path / "data" / "outputs", 1_000_000, 1_000_000, run="run1")
    writer.write(job, result)
    run = tmp_path / "data" / "outputs" / "run1"
    for folder in (run.parent, run, run / "json", run / "visualization"):
        assert mode(folder) == 0o700, folder
    written = [run / "json" / "r1_page.json", run / "visualization" / "r1_page.png"]
    assert [mode(p) for p in written] == [0o600, 0o600]
    secret = tmp_path / "secret.png"
    ok, other = cv2.imencode(".png", np.zeros((60, 80, 3), np.uint8))
    secret.write_bytes(other.tobytes())
    swapped = tmp_path / "share" / "swapped.png"
    swapped.symlink_to(secret)  # swapped for a link after the worker read it
    writer.write(dataclasses.replace(job, id="r2", filename="swapped.png", path=str(swapped)), result)
    assert (run / "json" / "r2_swapped.json").exists() and not (run / "visualization" / "r2_swapped.png").exists()
    source.write_bytes(other.tobytes())  # other content at the same path
    writer.write(dataclasses.replace(job, id="r3"), result)
    assert not (run / "visualization" / "r3_page.png").exists()
    assert remove_outputs(tmp_path / "data" / "outputs", "r1") == 2 and not any(p.exists() for p in written)
