"""Intake: a stable file -> its MD5 -> atomically either a new job or a duplicate record.

The check-and-claim of an MD5 and the writing of the record and job happen in one Lua script,
so several watchers (on several hosts) racing on the same content produce exactly one job.

Dedup is scoped by team: the MD5 is claimed under the team of the file's channel
(``TeamMap.dedup_scope``), so the same content dropped by two teams is read once for each, and a
duplicate only ever names a result of its own team.

The file is opened once, without following links (:func:`~daemon.intake.safeopen.open_in_share`),
and hashed through that descriptor; the job carries the (device, inode, size, mtime) of what was
hashed, so that the worker reads that very file or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from daemon.intake.filters import channel_of
from daemon.intake.safeopen import RefusedFile, open_in_share
from daemon.names import is_utf8, path_bytes, shown_name
from daemon.queue.streams import JOBS, PRIORITY_JOBS, RECORDS, SEEN, Job, add_record, md5_key
from daemon.records import DuplicateMessage, FailedMessage, FileMessage, QueuedMessage
from daemon.results.teams import TeamMap

log = logging.getLogger(__name__)

CHUNK = 1 << 20

# KEYS: md5 key (of the file's dedup scope), records stream, jobs stream, seen hash.
# ARGV: new id, queued record, duplicate record, job, path, md5.
# A path already seen with this very content (a rescan after a restart) is no news: "seen".
_CLAIM = """
if redis.call('HGET', KEYS[4], ARGV[5]) == ARGV[6] then
  return 'seen'
end
redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
local existing = redis.call('GET', KEYS[1])
if existing then
  local dup = cjson.decode(ARGV[3])
  dup['duplicate_of'] = existing
  redis.call('XADD', KEYS[2], '*', 'record', cjson.encode(dup))
  return existing
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'record', ARGV[2])
redis.call('XADD', KEYS[3], '*', 'job', ARGV[4])
return false
"""


def file_md5(source: int | Path) -> str:
    """MD5 of a file's content, read in 1 MiB chunks: an open descriptor (read from its current
    position, left open) or a path."""
    digest = hashlib.md5()
    with open(source, "rb", closefd=not isinstance(source, int)) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Intake:
    """Turns files into jobs; duplicates of earlier content into duplicate records."""

    def __init__(
        self,
        client: redis.Redis,
        max_bytes: int,
        clock: Callable[[], float] = time.time,
        *,
        teams: TeamMap | None = None,
        hasher: Callable[[int], str] = file_md5,
        shared_dir: Path | None = None,
        follow_symlinks: bool = False,
        channel_engine: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        """``teams`` decides each channel's dedup scope; None is a single team (every channel the
        default team's), right only where no ``teams.channels`` are configured. ``hasher`` is
        :func:`file_md5` of an open descriptor, or a call of it elsewhere (the web's event loop
        hands it to a thread).

        ``shared_dir``: the shared folder; a submitted file must lie in its channel's folder of it,
        reached without a link on the way (else it is recorded as failed, saying why). None checks
        only that the file itself is no link. ``follow_symlinks``: a file that is a link is read
        when it leads to a file of the same channel (``daemon.follow_symlinks``).
        ``channel_engine``: a channel's own engine settings (``Settings.channel_engine``), which
        its jobs carry to the worker."""
        self.client = client
        self.hasher = hasher
        self.shared_dir = shared_dir
        self.follow_symlinks = follow_symlinks
        self.max_bytes = max_bytes
        self.clock = clock
        self.teams = teams or TeamMap({})
        self.channel_engine = channel_engine or (lambda _channel: {})
        self._claim = client.register_script(_CLAIM)

    def submit(
        self, path: Path, channel: str, uploader: str | None = None, priority: bool = False
    ) -> IntakeMessage | None:
        """Queue ``path``; returns the message written (type queued, duplicate or failed), or None
        when there is nothing to record: the file vanished before it could be read, or this path
        was already recorded with this content (a rescan after a restart). ``priority``: the job
        goes to the priority lane (:data:`~daemon.queue.streams.PRIORITY_JOBS`), which workers
        empty before the folder's jobs."""
        rid = uuid.uuid4().hex
        created_at = self.clock()
        scope = self.teams.dedup_scope(channel)
        # Redis, the JSON records and SQLite all need UTF-8: a name in a legacy encoding (GBK) is
        # shown and stored decoded (daemon.names); the job carries its bytes to open the file.
        shown = Path(shown_name(str(path)))
        if not is_utf8(channel):  # channels are named in the settings: their folders' names are UTF-8
            return self._fail(
                FileFields(rid, str(shown), shown.name, shown_name(channel), created_at, uploader, scope),
                0,
                "the channel folder's name is not valid UTF-8; rename the folder to have its files read",
            )
        file = FileFields(rid, str(shown), shown.name, channel, created_at, uploader, scope, path_bytes(str(path)))
        try:
            fd = self._open(path, channel)
            try:
                st = os.fstat(fd)
                if st.st_size > self.max_bytes:
                    return self._fail(
                        file, st.st_size, f"file is {st.st_size} bytes, over the limit of {self.max_bytes}"
                    )
                md5 = self.hasher(fd)
                where = os.stat(path.parent)
            finally:
                os.close(fd)
        except RefusedFile as exc:
            log.warning("%s: refused: %s", shown, exc.reason)
            return self._fail(file, 0, exc.reason)
        except FileNotFoundError:
            log.warning("%s: vanished before it could be read; skipped", shown)
            return None
        except OSError as exc:
            return self._fail(file, 0, f"cannot read the file: {exc.strerror or exc}")
        size = st.st_size
        queued = QueuedMessage(type="queued", **file.fields(md5, size))
        job = Job(
            id=rid,
            md5=md5,
            path=str(shown),
            raw_path=file.raw_path,
            filename=shown.name,
            channel=channel,
            size=size,
            created_at=created_at,
            uploader=uploader,
            folder=[where.st_dev, where.st_ino],
            identity=[st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns],
            engine=self.channel_engine(channel) or None,
        )
        # The duplicate's message without its duplicate_of: the script adds the id it finds.
        duplicate_template = {"type": "duplicate", **file.fields(md5, size)}
        existing = self._claim(
            keys=[md5_key(md5, scope), RECORDS, PRIORITY_JOBS if priority else JOBS, SEEN],
            args=[rid, _dumps(queued), _dumps(duplicate_template), job.to_json(), str(shown), md5],
        )
        if existing == "seen":
            log.debug("%s: already recorded with this content", shown)
            return None
        if existing:
            log.info("%s: duplicate of result %s (md5 %s, scope %r)", shown, existing, md5, scope)
            return DuplicateMessage(type="duplicate", duplicate_of=existing, **file.fields(md5, size))
        log.info("%s: queued as %s (md5 %s, channel %r)", shown, rid, md5, channel)
        return queued

    def _open(self, path: Path, channel: str) -> int:
        """A descriptor of the file at ``path``, which must lie in ``channel``'s folder, no link on its way."""
        if self.shared_dir is None:
            return open_in_share(path.parent, path, follow=self.follow_symlinks)
        try:
            actual: str | None = channel_of(self.shared_dir, path)
        except ValueError:
            actual = None
        if actual != channel:
            where = f"channel {channel!r}" if channel else "the shared folder's root"
            raise RefusedFile(str(path), path.name, f"is not in the folder of {where}")
        return open_in_share(self.shared_dir, path, follow=self.follow_symlinks)

    def _fail(self, file: FileFields, size: int, error: str) -> FailedMessage:
        message = FailedMessage(type="failed", error=error, finished_at=self.clock(), **file.fields("", size))
        log.warning("%s: %s", file.path, error)
        add_record(self.client, message)
        return message


@dataclass(frozen=True)
class FileFields:
    """What intake knows of a file before it reads it: the fields of every message it sends."""

    id: str
    path: str
    filename: str
    channel: str
    created_at: float
    uploader: str | None
    scope: str
    raw_path: str = ""  # the path's bytes in hex when they are not UTF-8 (daemon.names)

    def fields(self, md5: str, size: int) -> FileMessage:
        message = FileMessage(
            id=self.id,
            path=self.path,
            filename=self.filename,
            channel=self.channel,
            created_at=self.created_at,
            uploader=self.uploader,
            scope=self.scope,
            md5=md5,
            size=size,
        )
        if self.raw_path:
            message["raw_path"] = self.raw_path
        return message


IntakeMessage = QueuedMessage | DuplicateMessage | FailedMessage


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)
