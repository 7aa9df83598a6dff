"""open_in_share: a file of the shared folder reached with no link on its way, or a RefusedFile saying why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.intake.safeopen import RefusedFile, open_folder_in_share, open_in_share


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    for path, data in (("sales/x.png", b"sales"), ("sales/sub/y.png", b"sub"), ("finance/payroll.png", b"payroll")):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    (root / "top.png").write_bytes(b"top")
    return root


def read(root: Path, path: Path | str, follow: bool = False) -> bytes:
    fd = open_in_share(root, path, follow=follow)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def refusal(root: Path, path: Path | str, follow: bool = False) -> RefusedFile:
    with pytest.raises(RefusedFile) as caught:
        open_in_share(root, path, follow=follow)
    return caught.value


def test_files_inside_are_opened(share: Path) -> None:
    assert read(share, share / "sales" / "x.png") == b"sales"
    assert read(share, share / "sales" / "sub" / "y.png") == b"sub"
    assert read(share, share / "top.png") == b"top"
    assert read(share, share / "finance" / ".." / "sales" / "x.png") == b"sales"  # lexical .. is fine


def test_a_file_swapped_for_a_link_to_another_channel_is_refused(share: Path) -> None:
    """The issue's swap: ``ln -s finance/payroll.png sales/.l; mv -f sales/.l sales/x.png``."""
    link = share / "sales" / ".l"
    link.symlink_to(share / "finance" / "payroll.png")
    os.replace(link, share / "sales" / "x.png")
    err = refusal(share, share / "sales" / "x.png")
    assert "symbolic link" in err.reason and err.shown == "sales/x.png"
    assert str(share) not in str(err)  # names the file within the share, not the server's layout


def test_a_file_under_a_linked_folder_is_refused(share: Path) -> None:
    """A channel's sub-folder replaced by a link to another channel's folder."""
    os.rename(share / "sales" / "sub", share / "old-sub")
    (share / "finance" / "sub").mkdir()
    (share / "finance" / "sub" / "y.png").write_bytes(b"finance secret")
    (share / "sales" / "sub").symlink_to(share / "finance" / "sub", target_is_directory=True)
    err = refusal(share, share / "sales" / "sub" / "y.png")
    assert "its folder sales/sub is a symbolic link" in err.reason, err.reason
    assert "linked folder" in err.reason


def test_a_channel_folder_that_is_a_link_is_refused(share: Path) -> None:
    (share / "ops").symlink_to(share / "finance", target_is_directory=True)
    assert "its folder ops is a symbolic link" in refusal(share, share / "ops" / "payroll.png").reason


def test_a_path_outside_the_share_is_refused(share: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.png").write_bytes(b"x")
    assert "not inside the shared folder" in refusal(share, tmp_path / "elsewhere.png").reason
    assert "not inside the shared folder" in refusal(share, share / ".." / "elsewhere.png").reason
    assert "shared folder itself" in refusal(share, share).reason


def test_the_share_root_itself_may_be_a_link(share: Path, tmp_path: Path) -> None:
    """An operator's mount point or link to the share is trusted; only what lies below is walked."""
    alias = tmp_path / "alias"
    alias.symlink_to(share, target_is_directory=True)
    assert read(alias, alias / "sales" / "x.png") == b"sales"


def test_following_a_link_stays_within_its_channel(share: Path, tmp_path: Path) -> None:
    (share / "sales" / "alias.png").symlink_to(share / "sales" / "sub" / "y.png")
    assert read(share, share / "sales" / "alias.png", follow=True) == b"sub"
    (share / "sales" / "steal.png").symlink_to(share / "finance" / "payroll.png")
    assert "out of channel 'sales'" in refusal(share, share / "sales" / "steal.png", follow=True).reason
    (tmp_path / "secret.png").write_bytes(b"secret")
    (share / "sales" / "out.png").symlink_to(tmp_path / "secret.png")
    assert "outside the shared folder" in refusal(share, share / "sales" / "out.png", follow=True).reason
    (share / "root-link.png").symlink_to(share / "sales" / "x.png")  # the root's files are a channel too
    assert "out of the shared folder's root" in refusal(share, share / "root-link.png", follow=True).reason
    assert "symbolic link" in refusal(share, share / "sales" / "alias.png").reason  # not without follow


def test_special_files_are_refused_without_blocking(share: Path) -> None:
    os.mkfifo(share / "sales" / "pipe.png")
    assert "FIFO" in refusal(share, share / "sales" / "pipe.png").reason
    assert "directory" in refusal(share, share / "sales" / "sub").reason


def test_missing_files_and_folders_are_plain_os_errors(share: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_in_share(share, share / "sales" / "gone.png")
    with pytest.raises(FileNotFoundError):
        open_in_share(share, share / "hr" / "gone.png")
    with pytest.raises(FileNotFoundError):
        open_in_share(share / "unmounted", share / "unmounted" / "a.png")


def test_folders_are_opened_the_same_way(share: Path) -> None:
    fd = open_folder_in_share(share, share / "sales" / "sub")
    try:
        assert os.listdir(fd) == ["y.png"]
    finally:
        os.close(fd)
    os.close(open_folder_in_share(share, share))
    (share / "sales" / "up").symlink_to(share / "finance", target_is_directory=True)
    with pytest.raises(RefusedFile, match="symbolic link"):
        open_folder_in_share(share, share / "sales" / "up")
    with pytest.raises(RefusedFile, match="its folder sales/up is a symbolic link"):
        open_folder_in_share(share, share / "sales" / "up" / "deeper")
