"""The Redis Streams between the daemon's processes, with JSON messages.

``teamocr:jobs``    intake -> workers (consumer group ``workers``): files to OCR.
``teamocr:records`` intake and workers -> recorder (consumer group ``recorder``): every change of a
                    result (queued, duplicate, processing, done, failed), applied to the store in order.
``teamocr:webhooks:events`` recorder and web -> webhook deliverer (group ``webhooks``): results done,
                    failed or corrected (``daemon.webhooks.queue``).
A record is always added before the job it announces, so the recorder sees "queued" before "done".
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from daemon.records import DroppedFile, RecordMessage

log = logging.getLogger(__name__)

PREFIX = "teamocr"
JOBS = f"{PREFIX}:jobs"
PRIORITY_JOBS = f"{PREFIX}:jobs:priority"  # one-call OCR: workers empty this lane before JOBS
LANES = (PRIORITY_JOBS, JOBS)  # the job streams, first first
RECORDS = f"{PREFIX}:records"
DELAYED = f"{PREFIX}:delayed"  # retries waiting for their backoff, scored by due time
WORKERS_GROUP = "workers"
RECORDER_GROUP = "recorder"
HEARTBEATS = f"{PREFIX}:workers"  # hash: worker name -> last beat (epoch seconds)
SEEN = f"{PREFIX}:seen"  # hash: source path -> md5 of the content last recorded for it
WEBHOOK_EVENTS = f"{PREFIX}:webhooks:events"
WEBHOOKS_GROUP = "webhooks"


def rereading_key(result_id: str) -> str:
    """Set while a done result is being read again (POST /reprocess): it is not queued twice."""
    return f"{PREFIX}:rereading:{result_id}"


def md5_key(md5: str, scope: str = "") -> str:
    """The key holding the id of the primary result of ``md5`` within the dedup ``scope`` (a team,
    see ``daemon.results.teams.TeamMap.dedup_scope``). Scope "" is the one global key of results stored
    before dedup was scoped; intake never claims it any more."""
    return f"{PREFIX}:md5:{scope}:{md5}" if scope else f"{PREFIX}:md5:{md5}"


@dataclass(frozen=True)
class Job(DroppedFile):
    """One file to OCR (the dropped file's fields, then these); ``attempt`` counts earlier tries."""

    attempt: int = 0
    uploader: str | None = None
    # [st_dev, st_ino] of the file's folder when it was queued: a missing file whose folder is now
    # another one (an empty mount point) was not deleted; its share is away. None: not known.
    folder: list[int] | None = None
    away_since: float = 0.0  # when its share was first found away (0: it was not)
    # [st_dev, st_ino, st_size, st_mtime_ns] of the file intake opened and hashed: the worker reads
    # that very file or fails it (a swap, even for the same bytes, is another file). None: not
    # known (a job queued before this field).
    identity: list[int] | None = None
    # The engine settings of the job's channel (config [channels.<name>]), given by intake: the
    # worker reads the file with them. None or {}: the engine's own.
    engine: dict[str, Any] | None = None
    reread: bool = False  # a done result read again (POST /reprocess): its reading is replaced

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def ensure_groups(client: redis.Redis) -> None:
    """Create the streams and their consumer groups if missing."""
    for stream, group in (
        (JOBS, WORKERS_GROUP),
        (PRIORITY_JOBS, WORKERS_GROUP),
        (RECORDS, RECORDER_GROUP),
        (WEBHOOK_EVENTS, WEBHOOKS_GROUP),
    ):
        try:
            client.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


def record_fields(record: RecordMessage) -> dict[FieldT, EncodableT]:
    """A records-stream message as stream fields: one JSON field, so nested lines survive intact."""
    return {"record": json.dumps(record, ensure_ascii=False)}


def add_record(client: redis.Redis | redis.client.Pipeline, record: RecordMessage) -> None:
    client.xadd(RECORDS, record_fields(record))


def parse_entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """Flatten XREADGROUP / XAUTOCLAIM replies to (entry id, fields); deleted entries dropped."""
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3-style mapping
        reply = list(reply.items())
    entries: list[tuple[str, dict[str, str]]] = []
    for item in reply:
        if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], list):
            entries.extend((eid, fields) for eid, fields in item[1] if fields)
        elif isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], dict):
            entries.append((item[0], item[1]))
    return entries


def take_lanes(
    client: redis.Redis,
    group: str,
    consumer: str,
    count: int,
    claim_idle_ms: int,
    block_ms: int,
    folder_first: bool = False,
    linger_ms: int = 0,
) -> list[tuple[str, str, dict[str, str]]]:
    """(stream, entry id, fields) of up to ``count`` jobs for ``consumer``, from the lanes in
    :data:`LANES` order: jobs a silent consumer left (a dead process), else new priority jobs,
    else whatever comes first to any lane within ``block_ms``. ``folder_first``: new folder jobs
    before priority ones (a worker does so now and then, so that a stream of one-call jobs never
    starves the shared folder). ``linger_ms``: first wait that long for a priority job alone (a
    program calling again right after its answer finds the worker free, not reading a folder file)."""
    if linger_ms > 0 and not folder_first:
        lingered = parse_entries(client.xreadgroup(group, consumer, {PRIORITY_JOBS: ">"}, count=count, block=linger_ms))
        if lingered:
            return [(PRIORITY_JOBS, eid, fields) for eid, fields in lingered]
    if folder_first:
        waiting = parse_entries(client.xreadgroup(group, consumer, {JOBS: ">"}, count=count))
        if waiting:
            return [(JOBS, eid, fields) for eid, fields in waiting]
    for stream in LANES:
        claimed = client.xautoclaim(stream, group, consumer, min_idle_time=claim_idle_ms, start_id="0-0", count=count)
        entries = parse_entries([(stream, claimed[1])]) if claimed and len(claimed) > 1 else []
        if entries:
            log.info("%s took over %d entries of %s from a silent consumer", consumer, len(entries), stream)
            return [(stream, eid, fields) for eid, fields in entries]
    urgent = parse_entries(client.xreadgroup(group, consumer, {PRIORITY_JOBS: ">"}, count=count))
    if urgent:
        return [(PRIORITY_JOBS, eid, fields) for eid, fields in urgent]
    reply: Any = client.xreadgroup(group, consumer, {stream: ">" for stream in LANES}, count=count, block=block_ms)
    if isinstance(reply, dict):  # RESP3-style mapping
        reply = list(reply.items())
    found: list[tuple[str, str, dict[str, str]]] = []
    for stream, items in reply or []:
        name = stream.decode() if isinstance(stream, bytes) else str(stream)
        found.extend((name, eid, fields) for eid, fields in parse_entries([(name, items)]))
    return found


def take(
    client: redis.Redis, stream: str, group: str, consumer: str, count: int, claim_idle_ms: int, block_ms: int
) -> list[tuple[str, dict[str, str]]]:
    """Entries for ``consumer``: first ones whose consumer went quiet (a dead process), else new ones."""
    claimed = client.xautoclaim(stream, group, consumer, min_idle_time=claim_idle_ms, start_id="0-0", count=count)
    entries = parse_entries([(stream, claimed[1])]) if claimed and len(claimed) > 1 else []
    if entries:
        log.info("%s took over %d entries of %s from a silent consumer", consumer, len(entries), stream)
        return entries
    reply = client.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms)
    return parse_entries(reply)
