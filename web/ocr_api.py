"""One-call OCR for programs: send a file, get its text in the same answer.

``POST /api/v1/ocr`` takes one image or PDF (multipart field ``file``, or the raw body with its
content type; ``?filename=`` names a raw body) and puts it through the same road as an upload:
the team's channel (``?channel=``, default the upload channel), the budgets, MD5 dedupe, the feed,
the store. Its job goes to the priority lane (daemon.queue.streams.PRIORITY_JOBS), ahead of any
folder burst. The call waits for the outcome up to ``?wait=`` seconds (default 30, at most 120):
200 with the reading, 422 when the file failed, 202 with the id to poll past the wait. Content
seen before answers at once with the first result's reading.

``POST /api/ocr`` (multipart ``image``, optional ``lang``) answers in the shape the CRNN OCR web
services this project grew from document, so their clients work unchanged:
``{"success": true, "text": [{"text", "confidence"}], "total_time"}`` or ``{"success": false, "error"}``.
"""

from __future__ import annotations

import collections
import contextlib
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException

from daemon.records import ResultRecord, Status
from engine.documents import document_kind
from engine.imageheader import sniff_format
from web.auth import Principal, require_auth
from web.budgets import BudgetExceeded
from web.services import services
from web.upload_names import kind_of, safe_name
from web.uploads import budget_refusal, save_and_queue

blueprint = Blueprint("ocr", __name__)

WAIT_DEFAULT = 30.0
WAIT_MAX = 120.0
POLL_SECONDS = 0.05  # how soon a waiting call first looks at its result again
MAX_POLL_SECONDS = 0.1  # ... and at most how far apart its looks grow (a look is one primary-key read)
MAX_WAITS = 4  # calls of one user that wait at once; more answer 202 at once
WAITS = "teamocr.ocr_waits"
ZIP_MAGIC = b"PK\x03\x04"
READABLE = frozenset({"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"})  # engine.imageheader's names the engine decodes


class Outcome:
    """What became of one call: the result id, and the record holding its reading (None: not yet)."""

    def __init__(
        self, result_id: str, reading: ResultRecord | None, error: str | None, seconds: float, state: str = "done"
    ) -> None:
        self.id = result_id
        self.reading = reading
        self.error = error
        self.seconds = seconds
        self.status = "failed" if error is not None else state  # queued or processing while it waits


@blueprint.post("/api/v1/ocr")
@require_auth
def ocr() -> Any:
    started = time.monotonic()
    storage = sent_file("file")
    outcome = read_now(storage, request.args.get("channel", "").strip(), wait_arg(), started)
    if isinstance(outcome, Response):
        return outcome
    if outcome.reading is None and outcome.error is None:
        return jsonify(id=outcome.id, status=outcome.status, poll=f"/api/v1/results/{outcome.id}"), 202
    if outcome.error is not None:
        return jsonify(id=outcome.id, status="failed", error=outcome.error, total_time=outcome.seconds), 422
    reading = outcome.reading
    assert reading is not None
    lines = [
        {"text": line.get("text", ""), "confidence": line.get("confidence"), "points": line.get("points"),
         "page": line.get("page", 1)}
        for line in reading.lines
    ]  # fmt: skip
    return jsonify(
        id=outcome.id,
        status="done",
        text=reading.text or "",
        lines=lines,
        timings=reading.timings,
        total_time=outcome.seconds,
        page_count=reading.page_count,
        duplicate_of=reading.id if reading.id != outcome.id else None,
    )


@blueprint.post("/api/ocr")
@require_auth
def ocr_alias() -> Any:
    """The CRNN OCR services' ``/api/ocr``: multipart ``image`` (``lang`` is accepted: the models read
    Chinese and English together)."""
    started = time.monotonic()
    if "image" not in request.files:
        return jsonify(success=False, error='no image sent (multipart/form-data, field "image")'), 400
    lang = request.form.get("lang", "")
    if len(lang) > 16:
        return jsonify(success=False, error="lang is too long"), 400
    try:
        storage = sent_file("image")  # one image or PDF, as the one-call endpoint takes
    except HTTPException as exc:
        return jsonify(success=False, error=exc.description), exc.code
    outcome = read_now(storage, "", WAIT_DEFAULT, started)
    if isinstance(outcome, Response):
        body = outcome.get_json(silent=True) or {}
        return jsonify(success=False, error=body.get("error", "refused")), outcome.status_code
    if outcome.error is not None:
        return jsonify(success=False, error=outcome.error, id=outcome.id), 422
    if outcome.reading is None:
        return jsonify(success=False, error=f"still reading: poll /api/v1/results/{outcome.id}", id=outcome.id), 202
    text = [{"text": line.get("text", ""), "confidence": line.get("confidence")} for line in outcome.reading.lines]
    return jsonify(success=True, text=text, total_time=outcome.seconds, id=outcome.id)


def wait_arg() -> float:
    raw = request.args.get("wait")
    if raw is None:
        return WAIT_DEFAULT
    try:
        wait = float(raw)
    except ValueError:
        abort(400, description=f"wait must be a number of seconds (0 to {WAIT_MAX:.0f})")
    if not 0 <= wait <= WAIT_MAX:
        abort(400, description=f"wait must be a number of seconds (0 to {WAIT_MAX:.0f})")
    return wait


def sent_file(field: str) -> FileStorage:
    """The one file of the call: multipart ``field``, or the raw body; 400 for none or a ZIP."""
    if request.mimetype.startswith("multipart/"):
        storage = request.files.get(field)
        if storage is None:
            abort(400, description=f'no file sent (multipart/form-data, field "{field}")')
    else:
        body = request.get_data(cache=False)
        if not body:
            abort(400, description="no file sent: an empty body")
        name = request.args.get("filename", "upload")
        storage = FileStorage(io.BytesIO(body), filename=name, content_type=request.mimetype or None)
    head = storage.stream.read(1024)
    storage.stream.seek(0)
    if head[:4] == ZIP_MAGIC or kind_of(safe_name(storage.filename or "upload", storage.mimetype)) == "zip":
        abort(400, description="one image or PDF per call: send ZIPs to /api/v1/upload")
    found = sniff_format(head[:64])
    if found not in READABLE and document_kind(head) is None:
        looks = f" (it looks like {found})" if found else ""
        abort(400, description=f"not an image or PDF{looks}: the engine reads {', '.join(sorted(READABLE))} and PDF")
    return storage


def read_now(storage: FileStorage, channel: str, wait: float, started: float) -> Outcome | Response:
    """Queue ``storage`` in the priority lane and wait up to ``wait`` seconds for its reading; a
    refusal (budget, bad file) comes back as the JSON response to send."""
    principal: Principal = g.principal
    try:
        batch = save_and_queue(principal, [storage], channel, priority=True)
    except BudgetExceeded as exc:
        return budget_refusal(exc)
    if not batch.items:
        error = batch.errors[0]["error"] if batch.errors else "the file was not taken"
        response = jsonify(error=error)
        response.status_code = 400
        return response
    item = batch.items[0]
    if item["status"] == "failed":
        return Outcome(item["id"], None, item.get("error") or "failed", _since(started))
    with _waiting(principal.user.username) as allowed:
        return _wait_for(item, started + (wait if allowed else 0.0), started, principal)


def _wait_for(item: dict[str, Any], deadline: float, started: float, principal: Principal) -> Outcome:
    """Look at the result (or, for a duplicate, its first result) until it is done or failed, or
    ``deadline`` passes; the looks grow apart from 50 ms to 100 ms."""
    store = services().store
    target = item.get("duplicate_of") or item["id"]
    pause = POLL_SECONDS
    while True:
        record = store.get(target)
        if record is not None and not principal.scope.allows(record.channel):
            record = None  # never another team's (dedup is per team: a safeguard)
        if record is not None and record.status == Status.DUPLICATE and record.duplicate_of:
            target = record.duplicate_of  # its first result holds the reading
            record = store.get(target)
        if record is not None and record.status == Status.DONE:
            return Outcome(item["id"], record, None, _since(started))
        if record is not None and record.status == Status.FAILED:
            return Outcome(item["id"], None, record.error or "failed", _since(started))
        if time.monotonic() >= deadline:
            state = str(record.status) if record is not None else "queued"
            return Outcome(item["id"], None, None, _since(started), state)
        time.sleep(pause)
        pause = min(MAX_POLL_SECONDS, pause * 2)


@contextlib.contextmanager
def _waiting(user: str) -> Iterator[bool]:
    """Count one waiting call of ``user``; yields False past :data:`MAX_WAITS` (the call then
    answers 202 at once: the file is queued all the same)."""
    waits = current_app.extensions.setdefault(WAITS, _Waits())
    with waits.lock:
        waits.open[user] += 1
        allowed = waits.open[user] <= MAX_WAITS
    try:
        yield allowed
    finally:
        with waits.lock:
            waits.open[user] -= 1


class _Waits:
    """Calls waiting for their reading, per user (one per web process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: collections.Counter[str] = collections.Counter()


def _since(started: float) -> float:
    return round(time.monotonic() - started, 4)
