"""Reading an uploaded ZIP without trusting it.

Nothing is extracted with ``extractall``. The central directory is vetted first (entry count,
declared total size, compression ratio of each member and of all the images together, overlapping
members, unsafe paths, symlinks, nested ZIPs), then each image member is streamed out on its own
with its declared size and the ZIP's byte budget enforced while it inflates, so a member whose
header lies cannot get past either.
"""

from __future__ import annotations

import contextlib
import copy
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, BinaryIO

from daemon.intake.filters import is_clutter
from daemon.names import LEGACY

CHUNK = 1 << 16
MAX_RATIO = 200.0
RATIO_MIN_BYTES = 1 << 20  # smaller members cannot hurt, whatever their ratio
MAX_SKIPPED = 50  # error entries reported per ZIP; the rest are counted
ENTRY_FACTOR = 10  # entries (images or not) allowed per allowed image, bounds the directory's memory
LOCAL_HEADER_SIZE = 30
UTF8_FLAG = 0x800
ENCRYPTED_FLAG = 0x1
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_MAGIC = b"PK\x05\x06"
_DRIVE = re.compile(r"^[A-Za-z]:")


class ZipError(ValueError):
    """Something in an uploaded ZIP could not be taken; the message says what, for the user."""


class ZipRefused(ZipError):
    """The whole ZIP is refused."""


class ZipBomb(ZipRefused):
    """A member inflated past its declared size or past the ZIP's byte budget."""


class MemberUnreadable(ZipError):
    """One member is corrupt, encrypted or uses an unknown compression; the others may be fine."""


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on one uploaded ZIP."""

    max_files: int  # image members
    max_bytes: int  # declared uncompressed total, and what may actually be inflated
    max_ratio: float = MAX_RATIO


@dataclass
class ZipPlan:
    """The image members to read, in archive order, and why the other members were skipped."""

    images: list[zipfile.ZipInfo] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """The most the images can write: their declared sizes (:func:`copy_member` holds them to it)."""
        return sum(info.file_size for info in self.images)


def open_zip(stream: IO[bytes], limits: ZipLimits) -> zipfile.ZipFile:
    """Open ``stream`` (seekable) as a ZIP; ZipRefused when it is not one or has far too many entries.

    The entry count is read from the end record before zipfile builds an object per entry.
    """
    entries = _declared_entries(stream)
    if entries is None:
        raise ZipRefused("not a readable ZIP")
    if entries > limits.max_files * ENTRY_FACTOR:
        raise ZipRefused(f"ZIP has {entries} files, over the limit of {limits.max_files}")
    try:
        return zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error) as exc:
        raise ZipRefused("not a readable ZIP") from exc


def _declared_entries(stream: IO[bytes]) -> int | None:
    """Entry count of the end-of-central-directory record; None without one (ZIP64 counts as 0)."""
    try:
        size = stream.seek(0, 2)
        tail_size = min(size, _EOCD.size + 0xFFFF)
        stream.seek(size - tail_size)
        tail = stream.read(tail_size)
        stream.seek(0)
    except (OSError, ValueError):
        return None
    at = tail.rfind(_EOCD_MAGIC)
    if at < 0 or len(tail) - at < _EOCD.size:
        return None
    total = _EOCD.unpack_from(tail, at)[4]
    return 0 if total == 0xFFFF else int(total)


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its author meant it. A name without the UTF-8 flag is read as UTF-8
    (many tools write it without setting the flag), else as GB18030 (Chinese Windows writes its
    code page, GBK: ``daemon.names``' rule), else as the ZIP standard's code page 437."""
    name = info.filename
    if not info.flag_bits & UTF8_FLAG:
        raw = name.encode("cp437")
        for encoding in ("utf-8", LEGACY):
            with contextlib.suppress(UnicodeError):
                return raw.decode(encoding)
    return name


def unsafe_path(name: str) -> bool:
    """Absolute, drive-lettered or ``..``-climbing paths (either slash), and NULs."""
    flat = name.replace("\\", "/")
    return (
        "\x00" in flat
        or flat.startswith("/")
        or bool(_DRIVE.match(flat))
        or any(part == ".." for part in flat.split("/"))
    )


def is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def vet(
    archive: zipfile.ZipFile, limits: ZipLimits, is_image: Callable[[str], bool], archive_bytes: int | None = None
) -> ZipPlan:
    """Sort the members into images to read and reasons to skip; ZipRefused for the whole ZIP.

    ``archive_bytes``, the ZIP's size, bounds what a member may claim as its compressed size: a
    member claiming more than the bytes after it would pass the ratio checks with a lie."""
    infos = archive.infolist()
    _check_overlap(infos)
    declared = sum(info.file_size for info in infos if not info.is_dir())
    if declared > limits.max_bytes:
        raise ZipRefused(f"ZIP expands to {declared} bytes, over the limit of {limits.max_bytes}")
    plan = ZipPlan()
    reasons: list[str] = []
    for info in infos:
        reason = _skip_reason(info, limits, is_image, archive_bytes)
        if reason is None:
            plan.images.append(info)
        elif reason:
            reasons.append(reason)
    if len(plan.images) > limits.max_files:
        raise ZipRefused(f"ZIP has {len(plan.images)} files, over the limit of {limits.max_files}")
    _check_total_ratio(plan.images, limits, archive_bytes)
    plan.skipped = reasons[:MAX_SKIPPED]
    if len(reasons) > MAX_SKIPPED:
        plan.skipped.append(f"{len(reasons) - MAX_SKIPPED} more members skipped")
    return plan


def _skip_reason(
    info: zipfile.ZipInfo, limits: ZipLimits, is_image: Callable[[str], bool], archive_bytes: int | None
) -> str | None:
    """Why a member is not read: "" to skip silently (folders, OS clutter), None to read it."""
    name = member_name(info)
    flat = name.replace("\\", "/")
    if info.is_dir() or flat.endswith("/"):
        return ""
    if unsafe_path(name):
        return f"unsafe path in ZIP: {name}"
    if is_symlink(info):
        return f"symlink in ZIP not followed: {name}"
    path = PurePosixPath(flat)
    if path.parts[0] == "__MACOSX" or is_clutter(path):
        return ""
    if path.suffix.lower() == ".zip":
        return f"nested ZIP not opened: {name}"
    if not is_image(path.name):
        return f"not an image: {name}"
    if info.flag_bits & ENCRYPTED_FLAG:
        return f"encrypted member not opened: {name}"
    packed = _packed_size(info, archive_bytes)
    if info.file_size > RATIO_MIN_BYTES and info.file_size > limits.max_ratio * packed:
        ratio = info.file_size / packed
        return f"ZIP bomb: {name} expands {ratio:.0f}:1, over the limit of {limits.max_ratio:.0f}:1"
    return None


def _packed_size(info: zipfile.ZipInfo, archive_bytes: int | None) -> int:
    """The member's compressed size, at most the bytes from its header to the end of the ZIP; at least 1."""
    packed = info.compress_size
    if archive_bytes is not None:
        packed = min(packed, archive_bytes - info.header_offset)
    return max(packed, 1)


def _check_total_ratio(images: list[zipfile.ZipInfo], limits: ZipLimits, archive_bytes: int | None) -> None:
    """ZipBomb when the images together expand past the ratio: many members, each under
    RATIO_MIN_BYTES (and so never checked alone), can still make a bomb."""
    inflated = sum(info.file_size for info in images)
    packed = max(sum(_packed_size(info, archive_bytes) for info in images), 1)
    if archive_bytes is not None:
        packed = max(min(packed, archive_bytes), 1)
    if inflated > RATIO_MIN_BYTES and inflated > limits.max_ratio * packed:
        raise ZipBomb(
            f"ZIP bomb: its images expand {inflated / packed:.0f}:1 in all "
            f"({inflated} bytes from {packed}), over the limit of {limits.max_ratio:.0f}:1"
        )


def _check_overlap(infos: list[zipfile.ZipInfo]) -> None:
    """Members sharing compressed bytes are the trick of non-recursive ZIP bombs."""
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for first, second in zip(ordered, ordered[1:]):
        if first.header_offset + LOCAL_HEADER_SIZE + first.compress_size > second.header_offset:
            raise ZipBomb("ZIP bomb: overlapping members")


def copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, out: BinaryIO, budget: int) -> int:
    """Inflate ``info`` into ``out``; returns the bytes written.

    ZipBomb when it yields more than its declared size or more than ``budget``;
    MemberUnreadable when it is corrupt (bad CRC, truncated, unknown method).
    """
    name = member_name(info)
    # zipfile stops at the declared size and reports a lying member as a CRC error; a copy that
    # declares one byte past the budget lets us see (and name) the overrun instead.
    probe = copy.copy(info)
    probe.file_size = max(budget, 0) + 1
    written = 0
    with _unreadable_as(name):
        source = archive.open(probe)
    with source:
        while True:
            with _unreadable_as(name):
                chunk = source.read(CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > info.file_size:
                raise ZipBomb(f"ZIP bomb: {name} inflates past its declared size of {info.file_size} bytes")
            if written > budget:
                raise ZipBomb(f"ZIP bomb: {name} inflates past the ZIP's remaining budget")
            out.write(chunk)
    if written < info.file_size:
        raise MemberUnreadable(f"unreadable member in ZIP: {name} (truncated)")
    return written


@contextlib.contextmanager
def _unreadable_as(name: str) -> Iterator[None]:
    """Reading errors of one member (not writing errors) become MemberUnreadable."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise MemberUnreadable(f"unreadable member in ZIP: {name} ({exc})") from exc
