"""The worker's read of a queued file when it is missing: deleted (final) or its share away (waited for)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from daemon.worker.sourcefile import ShareAway, read_queued
from engine.errors import ImageError


def test_a_deleted_file_fails_for_good(tmp_path: Path) -> None:
    (tmp_path / "share").mkdir()
    with pytest.raises(ImageError, match="file not found"):
        read_queued(str(tmp_path / "share" / "gone.png"), "gone.png", 10, "")


def test_a_file_whose_folder_is_gone_too_waits_for_its_share(tmp_path: Path) -> None:
    """An unmounted share leaves an empty mount point: the file's channel folder is missing as well."""
    path = tmp_path / "share" / "finance" / "scan.png"
    with pytest.raises(ShareAway, match="is gone") as caught:
        read_queued(str(path), "scan.png", 10, "")
    assert not isinstance(caught.value, ImageError)


def test_a_file_whose_folder_is_another_one_now_waits_for_its_share(tmp_path: Path) -> None:
    """A file at the share's root: after an unmount its folder (the empty mount point) still exists,
    but it is not the folder the file was queued in; in the same folder, a missing file was deleted."""
    share = tmp_path / "share"
    share.mkdir()
    queued_in = os.stat(share)
    folder = [queued_in.st_dev, queued_in.st_ino]
    with pytest.raises(ImageError, match="file not found"):
        read_queued(str(share / "gone.png"), "gone.png", 10, "", folder)
    share.rename(tmp_path / "mounted")  # the share's own root goes; an empty folder is left in its place
    share.mkdir()
    with pytest.raises(ShareAway, match="not the folder it was queued in"):
        read_queued(str(share / "scan.png"), "scan.png", 10, "", folder)


def test_the_file_back_reads_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "share" / "finance" / "scan.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"0123456789")
    assert read_queued(str(path), "scan.png", 10, hashlib.md5(b"0123456789").hexdigest()) == b"0123456789"
