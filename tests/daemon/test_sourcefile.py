"""The worker's read of a queued file when it is missing: deleted (final) or its folder away (retried)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from daemon.sourcefile import read_queued
from engine.errors import ImageError


def test_a_deleted_file_fails_for_good(tmp_path: Path) -> None:
    (tmp_path / "share").mkdir()
    with pytest.raises(ImageError, match="file not found"):
        read_queued(str(tmp_path / "share" / "gone.png"), "gone.png", 10, "")


def test_a_file_whose_folder_is_gone_too_is_retried(tmp_path: Path) -> None:
    """An unmounted share leaves an empty mount point: the file's channel folder is missing as well."""
    path = tmp_path / "share" / "finance" / "scan.png"
    with pytest.raises(FileNotFoundError, match="is gone") as caught:
        read_queued(str(path), "scan.png", 10, "")
    assert not isinstance(caught.value, ImageError)


def test_the_file_back_reads_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "share" / "finance" / "scan.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"0123456789")
    assert read_queued(str(path), "scan.png", 10, hashlib.md5(b"0123456789").hexdigest()) == b"0123456789"
