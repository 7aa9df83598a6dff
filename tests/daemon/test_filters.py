"""Clutter filter, channel and symlink-escape helpers of the watcher."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

import pytest

from daemon.intake.filters import channel_of, is_clutter, relative_inside


@pytest.mark.parametrize(
    "rel",
    [
        ".hidden.png",
        "team/.cache/a.png",
        "~$report.docx",
        "scan.jpg.part",
        "scan.JPG.PART",
        "big.png.crdownload",
        "x.tmp",
        ".notes.txt.swp",
        "photo.png.download",
        "Thumbs.db",
        "sales/thumbs.DB",
        "desktop.ini",
        ".DS_Store",
        "._photo.png",
        "@eaDir/photo.png/SYNOFILE_THUMB_M.jpg",
        "team/#recycle/old.png",
        "$RECYCLE.BIN/S-1-5/x.png",
        "lost+found/0001.png",
    ],
)
def test_clutter_is_recognised_anywhere_in_the_path(rel: str) -> None:
    assert is_clutter(PurePath(rel)) is not None


@pytest.mark.parametrize(
    "rel",
    ["photo.png", "team/receipt.JPG", "notes.pdf", "readme.txt", "a.b.c/part.png", "tmp/x.png", "recycle/x.png"],
)
def test_ordinary_files_are_not_clutter(rel: str) -> None:
    # Non-image files are not clutter: the pipeline records them as failed with a reason.
    assert is_clutter(PurePath(rel)) is None


def test_clutter_reason_names_the_component() -> None:
    reason = is_clutter(PurePath("team/@eaDir/x.png"))
    assert reason is not None and "@eaDir" in reason
    assert "partial download" in (is_clutter(PurePath("a.png.part")) or "")


def test_channel_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert channel_of(tmp_path, tmp_path / "a.png") == ""
    assert channel_of(tmp_path, tmp_path / "sales" / "a.png") == "sales"
    assert channel_of(tmp_path, tmp_path / "sales" / "2024" / "q1" / "a.png") == "sales"
    monkeypatch.chdir(tmp_path)
    assert channel_of(Path("."), tmp_path / "sales" / "a.png") == "sales"  # a relative root
    assert channel_of(Path("x"), Path("x/y/a.png")) == "y"
    with pytest.raises(ValueError, match="not inside"):
        channel_of(tmp_path / "root", tmp_path / "elsewhere" / "a.png")


def test_relative_inside_refuses_symlinks_escaping_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "team").mkdir(parents=True)
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    (root / "team" / "real.png").write_bytes(b"x")
    os.symlink(outside, root / "evil.png")
    os.symlink(root / "team" / "real.png", root / "alias.png")
    os.symlink(tmp_path, root / "team" / "up")

    assert relative_inside(root, root / "team" / "real.png") == PurePath("team/real.png")
    assert relative_inside(root, root / "alias.png") == PurePath("team/real.png")
    assert relative_inside(root, root / "evil.png") is None
    assert relative_inside(root, root / "team" / "up" / "secret.txt") is None
    assert relative_inside(root, root / "team" / ".." / ".." / "secret.txt") is None
