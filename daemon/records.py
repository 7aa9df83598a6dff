"""The result record, and the typed messages that move it through the records stream.

A :class:`ResultRecord` is one row per dropped file, as it moves queued -> processing ->
done/failed: what the store keeps and the web shows (as JSON via :meth:`ResultRecord.to_item`).
It is immutable: a change of state is a new record. :class:`DroppedFile` holds the fields a record
shares with the job that reads it (``daemon.queue.streams.Job``).

Intake and the workers tell the recorder of each change with one message on ``teamocr:records``,
one TypedDict per kind (its ``type`` field names it): :class:`QueuedMessage`,
:class:`DuplicateMessage`, :class:`FailedMessage`, :class:`ProcessingMessage`,
:class:`RetryMessage` (a ``queued`` message for a result that exists: a retry waits for its
backoff) and :class:`DoneMessage`. :func:`decode_message` checks a message read back from JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict, cast

from daemon.names import disk_path


class Status(StrEnum):
    """Where a result stands. ``done``, ``failed`` and ``duplicate`` are final."""

    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    DUPLICATE = "duplicate"
    FAILED = "failed"


FINAL_STATUSES = frozenset({Status.DONE, Status.FAILED, Status.DUPLICATE})


@dataclass(frozen=True, kw_only=True)
class DroppedFile:
    """A file dropped into the shared folder (or uploaded), as intake found it: what a result
    record and the job that reads it both carry. ``id`` is the result's, ``channel`` the sub-folder
    of the shared folder ("" for its root), ``created_at`` epoch seconds."""

    id: str
    md5: str
    path: str
    filename: str
    channel: str
    size: int
    created_at: float
    # The path's bytes in hex when they are not UTF-8 (``path`` is then the name decoded by
    # ``daemon.names``, what is shown and stored): the file itself is at :attr:`disk_path`.
    raw_path: str = ""

    @property
    def disk_path(self) -> str:
        """The path of the file on disk (``path`` itself, unless the name is not UTF-8)."""
        return disk_path(self.path, self.raw_path)


@dataclass(frozen=True, kw_only=True)
class ResultRecord(DroppedFile):
    """One dropped file and its OCR result.

    Keyword-only: there are twenty fields, and a positional call would be unreadable.

    ``lines`` holds ``{"text", "points", "confidence"}`` dicts, ``timings`` seconds per stage,
    ``created_at``/``finished_at`` epoch seconds. ``duplicate_of`` is the id of the primary
    result with the same md5 when ``status`` is ``duplicate``. ``channel`` is the sub-folder
    of the shared folder the file was dropped in ("" for its root). ``scope`` is the team whose
    files it was deduplicated against (fixed when stored; "" for results stored before dedup was
    scoped by team); server-side only, like ``path``.
    """

    status: Status = Status.QUEUED
    width: int | None = None
    height: int | None = None
    error: str | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    engine_version: str | None = None
    model_version: str | None = None
    duplicate_of: str | None = None
    attempts: int = 0
    finished_at: float | None = None
    uploader: str | None = None
    scope: str = ""
    page_count: int = 1  # pages of a document (a PDF, a multi-page TIFF); 1 for an image
    pages: list[dict[str, Any]] = field(default_factory=list)  # a document's pages: number, size, turn or error
    settings: dict[str, Any] = field(default_factory=dict)  # the engine settings it was read with
    blocks: list[dict[str, Any]] = field(default_factory=list)  # engine.types.block_dict: the reading order
    tables: list[dict[str, Any]] = field(default_factory=list)  # engine.types: each table's grid and cells

    def __post_init__(self) -> None:
        # Accept "done" as well as Status.DONE, and reject anything else early.
        if not isinstance(self.status, Status):
            object.__setattr__(self, "status", parse_status(self.status))

    def to_item(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``status`` as its string value).

        ``lines`` and ``timings`` are fresh containers (a line's ``points`` are shared with the
        record, which no one changes); not ``dataclasses.asdict``, whose deep copy of every point
        was the API's largest cost per listed result."""
        item = {name: getattr(self, name) for name in FIELD_ORDER}
        item["status"] = self.status.value
        item["lines"] = [dict(line) for line in self.lines]
        item["timings"] = dict(self.timings)
        item["pages"] = [dict(page) for page in self.pages]
        item["settings"] = dict(self.settings)
        item["blocks"] = [dict(block) for block in self.blocks]
        item["tables"] = [dict(table) for table in self.tables]
        return item

    def to_public(self) -> dict[str, Any]:
        """What clients may see: :meth:`to_item` without the server-side ``path`` and ``scope``."""
        item = self.to_item()
        del item["path"], item["scope"], item["raw_path"]
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ResultRecord:
        """The inverse of :meth:`to_item`; unknown keys are ignored, missing required ones raise."""
        names = FIELD_NAMES
        try:
            return cls(**{key: value for key, value in item.items() if key in names})
        except TypeError as exc:
            raise ValueError(f"not a result item ({exc}): {sorted(item)}") from exc

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ResultRecord:
        """Build a record from a stored row, where the fields of :data:`JSON_FIELDS` are JSON text."""
        item = {name: row[name] for name in FIELD_NAMES}
        for name, empty in JSON_FIELDS.items():
            item[name] = _json_or(row[name], empty())
        return cls.from_item(item)


FIELD_ORDER = tuple(f.name for f in dataclasses.fields(ResultRecord))
# The fields stored as JSON text, and the empty value of each.
JSON_FIELDS: dict[str, Callable[[], Any]] = {
    "lines": list,
    "timings": dict,
    "pages": list,
    "settings": dict,
    "blocks": list,
    "tables": list,
}
FIELD_NAMES = frozenset(FIELD_ORDER)


def parse_status(value: str) -> Status:
    """``Status(value)`` with an error message that lists the valid ones."""
    try:
        return Status(value)
    except ValueError:
        valid = ", ".join(s.value for s in Status)
        raise ValueError(f"unknown status {value!r} (expected one of: {valid})") from None


def _json_or(text: str | None, empty: Any) -> Any:
    return empty if text is None or text == "" else json.loads(text)


# -- the messages of the records stream ---------------------------------------------------------


class FileMessage(TypedDict):
    """The dropped file's fields, as intake sends them with a new result."""

    id: str
    path: str
    filename: str
    channel: str
    created_at: float
    uploader: str | None
    scope: str
    md5: str
    size: int
    raw_path: NotRequired[str]  # the path's bytes in hex when they are not UTF-8


class QueuedMessage(FileMessage):
    """Intake: a new result, its job queued."""

    type: Literal["queued"]


class DuplicateMessage(FileMessage):
    """Intake: content the team has seen, stored as a duplicate of its first result."""

    type: Literal["duplicate"]
    duplicate_of: str


class FailedMessage(TypedDict):
    """A result that failed: from intake (a new result, with the file's fields) or from a worker
    (an existing one, with ``attempts``)."""

    type: Literal["failed"]
    id: str
    error: str
    finished_at: float
    attempts: NotRequired[int]
    path: NotRequired[str]
    filename: NotRequired[str]
    channel: NotRequired[str]
    created_at: NotRequired[float]
    uploader: NotRequired[str | None]
    scope: NotRequired[str]
    md5: NotRequired[str]
    size: NotRequired[int]
    raw_path: NotRequired[str]


class ProcessingMessage(TypedDict):
    """A worker took the job (its ``attempts``-th try), or, for a document, has read ``pages_done``
    of its ``page_count`` pages."""

    type: Literal["processing"]
    id: str
    attempts: int
    worker: str
    pages_done: NotRequired[int]
    page_count: NotRequired[int]


class RetryMessage(TypedDict):
    """A worker's try failed in a way worth another: the job waits until ``retry_at``."""

    type: Literal["queued"]
    id: str
    attempts: int
    retry_at: float


class DoneMessage(TypedDict):
    """A worker read the file: the page (``engine.types.PageResult.to_dict``) and when."""

    type: Literal["done"]
    id: str
    attempts: int
    finished_at: float
    width: int
    height: int
    lines: list[dict[str, Any]]
    text: str
    timings: dict[str, float]
    engine_version: str | None
    model_version: str | None
    page_count: NotRequired[int]  # a document's (engine.types.DocumentResult.to_dict)
    pages: NotRequired[list[dict[str, Any]]]
    settings: NotRequired[dict[str, Any]]  # the engine settings it was read with (its channel's)
    reread: NotRequired[bool]  # a done result read again (POST /reprocess): its reading is replaced
    blocks: NotRequired[list[dict[str, Any]]]  # engine.types.block_dict: the page's (a document's) blocks
    tables: NotRequired[list[dict[str, Any]]]  # engine.types: the tables found, their cells' lines


class RequeuedMessage(TypedDict):
    """A failed result queued again (``POST /results/<id>/retry``): failed -> queued."""

    type: Literal["requeued"]
    id: str
    by: str


RecordMessage = (
    QueuedMessage | DuplicateMessage | FailedMessage | ProcessingMessage | RetryMessage | DoneMessage | RequeuedMessage
)

MESSAGE_TYPES = frozenset({"queued", "duplicate", "failed", "processing", "done", "requeued"})


def decode_message(text: str) -> RecordMessage:
    """A records-stream message from its JSON text; ValueError when it is not one (no object, no
    ``id``, or a ``type`` that is none of :data:`MESSAGE_TYPES`)."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ValueError(f"not a record message: {text[:80]!r}")
    if data.get("type") not in MESSAGE_TYPES:
        raise ValueError(f"unknown record type {data.get('type')!r}")
    return cast(RecordMessage, data)  # its kind checked above; the fields are the sender's
