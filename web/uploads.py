"""``POST /api/v1/upload``: images and ZIPs of images, written into the shared folder.

An upload takes the same road as a dropped file: it lands in
``<shared_dir>/<channel>/uploads/<YYYY-MM-DD>/<safe name>`` (written to a hidden temp file first,
which the watcher skips, then linked into place in one step) and goes to the daemon's intake at
once, so the caller gets the result id in the reply. When the watcher later sees the same path
with the same content, the intake's "seen" rule skips it.

A request is vetted whole before anything is written (every ZIP's directory included), so its
budgets (web.budgets: per request, per user and team a day, free space) are checked against what
it will write, and a refused request writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import secrets
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

import redis
from flask import Blueprint, abort, g, jsonify, request
from werkzeug.datastructures import FileStorage

from config.settings import WebSettings
from daemon.intake.filters import DOCUMENT_EXTENSIONS, IMAGE_EXTENSIONS, is_clutter
from web import zipsafe
from web.auth import Principal, require_auth
from web.budgets import (
    BudgetExceeded,
    DailyBudgets,
    Need,
    Reservation,
    check_free_space,
    check_request,
    check_waiting,
)
from web.services import services
from web.upload_names import MIME_EXTENSIONS, by_content, is_image, kind_of, numbered, safe_name

log = logging.getLogger(__name__)

blueprint = Blueprint("uploads", __name__, url_prefix="/api/v1")

UPLOADS_FOLDER = "uploads"
MAX_COPIES = 10_000  # " (2)" ... before giving up on a name


class EmptyUpload(ValueError):
    """A file with no bytes."""


class LeadsOutside(PermissionError):
    """The upload folder, or a name in it, resolves outside the shared folder (a planted symlink)."""


def inside(root: Path, path: Path) -> bool:
    """Whether ``path``, symlinks resolved, stays inside ``root``."""
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


def valid_channel(channel: str) -> bool:
    """A channel is one plain, visible folder name."""
    return (
        0 < len(channel.encode("utf-8")) <= 255
        and channel not in (".", "..")
        and not any(c in channel for c in "/\\")
        and channel.isprintable()
        and is_clutter(Path(channel)) is None
    )


def resolve_channel(principal: Principal, requested: str | None) -> str:
    """The form's channel when the principal may use it, else the team's upload channel; aborts 400."""
    svc = services()
    if not requested:
        channel = svc.teams.upload_channel(principal.user.team, principal.is_default_team)
        if channel is None:
            abort(400, description="your team owns no channel to upload to (map one in teams.channels)")
        return channel
    # The same answer whether or not another team's channel exists: nothing leaks.
    if not principal.scope.allows(requested):
        abort(403, description="channel not yours")
    if not valid_channel(requested):
        abort(400, description="invalid channel name")
    if requested not in svc.teams.channels and not (svc.settings.shared_dir / requested).is_dir():
        # The default team sees every unmapped channel; a typo must not quietly make a new one.
        abort(404, description=f"no such channel: {requested}")
    return requested


@dataclass
class Batch:
    """The files of one request: where they go, who sent them, and what came of each."""

    root: Path
    folder: Path
    channel: str
    uploader: str
    priority: bool = False  # the jobs go ahead of the folder's (one-call OCR)
    items: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    files_written: int = 0
    bytes_written: int = 0

    def error(self, filename: str, message: str) -> None:
        self.errors.append({"filename": filename[:255], "error": message})

    def write(self, name: str, fill: Callable[[BinaryIO], int]) -> Path:
        """Write a new file named like ``name`` through a hidden temp file; EmptyUpload for no bytes.
        File work only (copy, unzip, fsync), so it runs off the web's event loop."""
        path, size = services().offload.run(self._write, name, fill)
        self.files_written += 1
        self.bytes_written += size
        return path

    def _write(self, name: str, fill: Callable[[BinaryIO], int]) -> tuple[Path, int]:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not inside(self.root, self.folder):
            raise LeadsOutside(f"upload folder {self.folder} leads outside the shared folder")
        temp = self.folder / f".{name}.{secrets.token_hex(4)}.uploading"
        try:
            with open(temp, "xb") as out:
                size = fill(out)
                out.flush()
                os.fsync(out.fileno())
            if size == 0:
                raise EmptyUpload("empty file")
            return self._claim(temp, name), size
        finally:
            temp.unlink(missing_ok=True)

    def _claim(self, temp: Path, name: str) -> Path:
        """Give ``temp`` the first free name of ``name``, ``name (2)`` ...; never overwrites."""
        for n in range(1, MAX_COPIES + 1):
            final = self.folder / numbered(name, n)
            if not inside(self.root, final) or final.parent != self.folder:
                raise LeadsOutside(f"{final} leads outside the upload folder")
            try:
                os.link(temp, final)  # atomic, and fails (rather than replaces) when taken
                return final
            except FileExistsError:
                continue
            except OSError:  # a share without hard links: check, then rename
                if not os.path.lexists(final):
                    os.replace(temp, final)
                    return final
        raise FileExistsError(f"{MAX_COPIES} files named like {name} already")

    def submit(self, path: Path) -> None:
        """Hand ``path`` to the intake and note the outcome."""
        try:
            record = services().intake.submit(path, self.channel, uploader=self.uploader, priority=self.priority)
        except redis.RedisError as exc:
            log.warning("%s: saved, but the queue is unavailable: %s", path, exc)
            self.error(path.name, "saved, but the queue is unavailable; the folder watcher will pick it up")
            return
        if record is None:
            self.error(path.name, "already recorded with this name and content")
            return
        self.items.append(
            {
                "id": record["id"],
                "filename": path.name,
                "channel": self.channel,
                "status": record["type"],
                "duplicate_of": record.get("duplicate_of"),
                "error": record.get("error"),
            }
        )

    def take(self, sent: str, name: str, fill: Callable[[BinaryIO], int]) -> bool:
        """Write and submit one file; False (with an error entry) when it was empty."""
        try:
            path = self.write(name, fill)
        except EmptyUpload:
            self.error(sent, "empty file")
            return False
        self.submit(path)
        return True


def _copy_stream(source: IO[bytes]) -> Callable[[BinaryIO], int]:
    def fill(out: BinaryIO) -> int:
        shutil.copyfileobj(source, out, zipsafe.CHUNK)
        return out.tell()

    return fill


@dataclass
class Part:
    """One sent file, vetted before anything is written: what it will write, and what was wrong."""

    sent: str  # the name the client gave
    name: str  # safe_name of it
    kind: str | None  # kind_of(name)
    stream: IO[bytes]
    notes: list[str] = field(default_factory=list)  # errors found while vetting, for the answer
    size: int = 0  # an image's bytes (0: nothing to write)
    archive: zipfile.ZipFile | None = None  # a ZIP that passed its vetting, open
    members: list[zipfile.ZipInfo] = field(default_factory=list)  # its images, to write

    @property
    def need(self) -> Need:
        if self.archive is not None:
            return Need(files=len(self.members), bytes=sum(info.file_size for info in self.members), zips=1)
        return Need(files=1 if self.size else 0, bytes=self.size, zips=0)


def zip_limits(settings: WebSettings) -> zipsafe.ZipLimits:
    return zipsafe.ZipLimits(settings.max_zip_files, settings.max_zip_bytes)


def vet_part(storage: FileStorage, settings: WebSettings, opened: contextlib.ExitStack) -> Part:
    """What ``storage`` would write; a ZIP is opened (closed with ``opened``) and its directory vetted."""
    sent = storage.filename or "upload"
    name = safe_name(sent, storage.mimetype)
    if kind_of(name) is None:
        name = by_content(name, storage.stream)
    part = Part(sent, name, kind_of(name), storage.stream)
    if part.kind not in ("zip", "image"):
        allowed = " ".join(sorted(IMAGE_EXTENSIONS | DOCUMENT_EXTENSIONS))
        part.notes.append(f"not an image or ZIP (allowed: {allowed} .zip)")
        return part
    size = part.stream.seek(0, os.SEEK_END)
    part.stream.seek(0)
    if size == 0:
        part.notes.append("empty file")
    elif part.kind == "image":
        part.size = size
    else:
        limits = zip_limits(settings)
        try:
            archive = opened.enter_context(zipsafe.open_zip(part.stream, limits))
            plan = zipsafe.vet(archive, limits, is_image, archive_bytes=size)
        except zipsafe.ZipRefused as exc:
            log.warning("upload %r refused: %s", sent, exc)
            part.notes.append(str(exc))
            return part
        part.archive, part.members = archive, plan.images
        part.notes.extend(plan.skipped)
    return part


def vet_request(
    sent: list[FileStorage], settings: WebSettings, opened: contextlib.ExitStack
) -> tuple[list[Part], Need]:
    """Every part vetted, and what they will write together; BudgetExceeded (413) over the request's budget."""
    zips = sum(kind_of(safe_name(s.filename or "upload", s.mimetype)) == "zip" for s in sent)
    check_request(Need(files=0, bytes=0, zips=zips), settings)  # before a ZIP is opened
    parts = [vet_part(storage, settings, opened) for storage in sent]
    need = Need(files=sum(p.need.files for p in parts), bytes=sum(p.need.bytes for p in parts), zips=zips)
    check_request(need, settings)
    return parts, need


def take_zip(
    batch: Batch, sent: str, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], limits: zipsafe.ZipLimits
) -> None:
    """Write and submit the vetted image ``members`` of one uploaded ZIP, flattened into the upload folder."""
    budget = limits.max_bytes
    try:
        for info in members:
            budget -= _take_member(batch, sent, archive, info, budget)
    except zipsafe.ZipRefused as exc:
        log.warning("upload %r refused: %s", sent, exc)
        batch.error(sent, str(exc))


def _take_member(batch: Batch, sent: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> int:
    """Write and submit one image member; returns the bytes written. ZipBomb stops the whole ZIP."""
    member = zipsafe.member_name(info)
    written = batch.bytes_written
    try:
        path = batch.write(safe_name(member), lambda out: zipsafe.copy_member(archive, info, out, budget))
    except zipsafe.MemberUnreadable as exc:
        batch.error(sent, str(exc))
        return 0
    except EmptyUpload:
        batch.error(sent, f"empty file in ZIP: {member}")
        return 0
    batch.submit(path)
    return batch.bytes_written - written


def reserve(principal: Principal, need: Need, settings: WebSettings, root: Path) -> Reservation | None:
    """Check the free space and take ``need`` from the user's and the team's day; BudgetExceeded."""
    if not need.files:
        return None
    try:
        check_free_space(root, need.bytes, settings.min_free_bytes)
    except OSError as exc:
        log.warning("free space of %s cannot be read: %s", root, exc)
        abort(503, description=f"the shared folder cannot be read: {exc.strerror or 'read error'}")
    user = principal.user
    if settings.user_queued_jobs > 0 or settings.team_queued_jobs > 0:
        svc = services()
        user_waiting = svc.offload.run(svc.reads.waiting, None, user.username)
        team_waiting = svc.offload.run(svc.reads.waiting, principal.scope)
        check_waiting(need.files, user_waiting, team_waiting, user.username, user.team, settings)
    try:
        return DailyBudgets(services().redis, settings).reserve(user.username, user.team, need.files, need.bytes)
    except redis.RedisError as exc:
        log.warning("upload budgets of %s cannot be checked: %s", user.username, exc)
        abort(503, description="upload budgets cannot be checked: the queue is unavailable")


def budget_refusal(exc: BudgetExceeded) -> Any:
    """The JSON answer to a refused budget (413, 429 with Retry-After, or 507)."""
    log.warning("upload refused (%s): %s", exc.budget, exc.message)
    response = jsonify(exc.body())
    response.status_code = exc.status
    if exc.retry_after:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


@blueprint.post("/upload")
@require_auth
def upload() -> Any:
    """Store and queue the sent images and ZIPs; 202 with one item per queued file."""
    principal: Principal = g.principal
    sent = [f for f in request.files.getlist("files") if f.filename or f.mimetype in MIME_EXTENSIONS]
    if not sent and "files" in request.form:  # a part whose header broke, e.g. a raw newline in its filename
        abort(
            400,
            description='the "files" part came without a usable filename header (a raw line break '
            "in a file name breaks it; browsers send it as %0A)",
        )
    if not sent:
        abort(400, description='no files sent (multipart/form-data, field "files")')
    try:
        batch = save_and_queue(principal, sent, request.form.get("channel", "").strip())
    except BudgetExceeded as exc:
        return budget_refusal(exc)
    return jsonify(items=batch.items, errors=batch.errors), 202


def save_and_queue(principal: Principal, sent: list[FileStorage], requested: str, priority: bool = False) -> Batch:
    """Vet ``sent``, check the budgets, write each file into the channel's upload folder of today
    and hand it to the intake (``priority``: the jobs go ahead of the folder's, for one-call OCR).
    Raises BudgetExceeded; aborts for a bad channel or a folder that cannot be made."""
    channel = resolve_channel(principal, requested)
    root = services().settings.shared_dir
    folder = root / channel / UPLOADS_FOLDER / datetime.date.today().isoformat()
    if not inside(root, folder):
        abort(400, description="invalid channel name")
    settings = services().settings.web
    batch = Batch(root, folder, channel, principal.user.username, priority=priority)
    with contextlib.ExitStack() as opened:
        parts, need = vet_request(sent, settings, opened)
        _make_folder(root, folder)
        reservation = reserve(principal, need, settings, root)
        try:
            for part in parts:
                _take_one(batch, part, settings)
        finally:
            if reservation is not None:
                DailyBudgets(services().redis, settings).give_back(
                    reservation, batch.files_written, batch.bytes_written
                )
    return batch


def _make_folder(root: Path, folder: Path) -> None:
    """Create the upload folder; 409 when a file is in its way, 503 when the share cannot be written.

    The answer names the folder relative to the shared folder, never the server's own paths.
    """
    shown = folder.relative_to(root).as_posix()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        log.warning("upload folder %s cannot be created: a file is in the way", folder)
        abort(409, description=f"cannot create the upload folder {shown}: a file of that name is in the way")
    except OSError as exc:
        log.warning("upload folder %s cannot be created: %s", folder, exc)
        abort(503, description=f"cannot create the upload folder {shown}: {exc.strerror or 'write error'}")


def _take_one(batch: Batch, part: Part, settings: WebSettings) -> None:
    """Report what vetting found in ``part``, then write and submit what it holds."""
    for note in part.notes:
        batch.error(part.sent, note)
    try:
        if part.archive is not None:
            take_zip(batch, part.sent, part.archive, part.members, zip_limits(settings))
        elif part.size:
            batch.take(part.sent, part.name, _copy_stream(part.stream))
    except OSError as exc:  # the share is full, read-only, or its folder was swapped meanwhile
        log.warning("upload %r could not be saved in %s: %s", part.sent, batch.folder, exc)
        reason = (
            "refused: the upload folder leads outside the shared folder"
            if isinstance(exc, LeadsOutside)
            else f"could not be saved: {exc.strerror or 'write error'}"
        )
        batch.error(part.sent, reason)
