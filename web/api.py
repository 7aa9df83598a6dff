"""The results REST API: list, detail, search, export, source and annotated images, corrections.

Every view needs a token (``require_auth``) and reads only what the caller's team may see: lists
and searches pass ``g.principal.scope`` to the store, and a single result of another team answers
404 exactly like an unknown id. The OpenAPI document of the whole app is served here too.
"""

from __future__ import annotations

import io
import logging
import math
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from flask import Blueprint, Response, abort, g, jsonify, request, send_file

from daemon.records import ResultRecord, parse_status
from daemon.results.events import EVENT, LatestCache
from daemon.results.store import MAX_LIMIT
from engine.errors import ImageError
from web import exports, images
from web.auth import require_auth
from web.bodies import json_body
from web.services import services

log = logging.getLogger(__name__)

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

OPENAPI_DOCUMENT = Path(__file__).with_name("openapi.json")
DEFAULT_LIMIT = 50
MAX_EXPORT = 5000
MAX_OFFSET = 1_000_000_000
MAX_CORRECTION_CHARS = 2000
NOT_FOUND = "result not found"
_TEXT_BODY = 'expected a JSON body {"text": "<the corrected line>"}'
_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(E[-+]?[0-9]+)?")
_LEAP_SECOND = re.compile(r"(T[0-9]{2}:[0-9]{2}):60")  # RFC 3339 allows :60; Python does not
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


# -- query parameters -------------------------------------------------------------------


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter ``name`` in [low, high]; 400 otherwise."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw.strip()) or not low <= int(raw) <= high:
        abort(400, description=f"{name} must be an integer from {low} to {high}, got {raw!r}")
    return int(raw)


def time_arg(name: str) -> float | None:
    """Epoch seconds, or an ISO 8601 date or date-time (UTC unless it names an offset); 400 otherwise."""
    raw = request.args.get(name)
    if raw is None:
        return None
    text = raw.strip().upper()  # RFC 3339 allows "t" and "z"
    try:
        if _NUMBER.fullmatch(text):
            value = float(text)
            if math.isfinite(value):
                return value
        else:
            moment = datetime.fromisoformat(_LEAP_SECOND.sub(r"\1:59", text))
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):
        pass
    abort(400, description=f"{name} must be epoch seconds or an ISO 8601 date/date-time, got {raw!r}")


def list_filters() -> dict[str, Any]:
    """The filters shared by the list and the export, plus the caller's scope."""
    status = request.args.get("status")
    if status is not None:
        try:
            status = parse_status(status).value
        except ValueError as exc:
            abort(400, description=str(exc))
    return {
        "channel": request.args.get("channel"),
        "status": status,
        "since": time_arg("since"),
        "until": time_arg("until"),
        "uploader": request.args.get("uploader"),
        "scope": g.principal.scope,
    }


def visible_record(result_id: str) -> ResultRecord:
    """The result when the caller may see it; 404 (the same answer for unknown ids) otherwise."""
    rec = services().store.get(result_id)
    if rec is None or not g.principal.scope.allows(rec.channel):
        abort(404, description=NOT_FOUND)
    return rec


# -- reading ------------------------------------------------------------------------------


@blueprint.get("/results")
@require_auth
def list_results() -> Any:
    limit = int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0, MAX_OFFSET)
    filters = list_filters()
    store = services().store
    records = store.list(limit=limit + 1, offset=offset, **filters)  # one more: is there a next page?
    more = len(records) > limit
    return jsonify(
        items=[rec.to_public() for rec in records[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
        counts=store.counts(scope=g.principal.scope),
    )


@blueprint.get("/results/<result_id>")
@require_auth
def result_detail(result_id: str) -> Any:
    rec = visible_record(result_id)
    return jsonify({**rec.to_public(), "corrections": services().store.corrections(rec.id)})


@blueprint.get("/search")
@require_auth
def search() -> Any:
    query = request.args.get("q", "")
    if not query.strip():
        abort(400, description="q (the text to search for) is required")
    if "\x00" in query:  # never in a text, and SQLite's full-text parser stops at it
        abort(400, description="q must not contain NUL characters")
    limit = int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    records = services().store.search(query, limit=limit, channel=request.args.get("channel"), scope=g.principal.scope)
    return jsonify(items=[rec.to_public() for rec in records], query=query)


@blueprint.get("/export")
@require_auth
def export() -> Any:
    name = request.args.get("format", "csv")
    fmt = exports.FORMATS.get(name)
    if fmt is None:
        abort(400, description=f"format must be one of {', '.join(exports.FORMATS)}, got {name!r}")
    limit = int_arg("limit", MAX_EXPORT, 1, MAX_EXPORT)
    offset = int_arg("offset", 0, 0, MAX_OFFSET)
    filters = list_filters()
    items: list[dict[str, Any]] = []
    while len(items) < limit:  # the store returns at most MAX_LIMIT rows a call
        want = min(MAX_LIMIT, limit - len(items))
        page = services().store.list(limit=want, offset=offset + len(items), **filters)
        items.extend(rec.to_public() for rec in page)
        if len(page) < want:
            break
        services().offload.pause()  # other requests go on between the pages
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    response = Response(services().offload.run(fmt.render, items), mimetype=fmt.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="teamocr-results-{stamp}.{fmt.extension}"'
    response.headers["X-Result-Count"] = str(len(items))
    return response


# -- images -----------------------------------------------------------------------------


def _source(rec: ResultRecord) -> Path:
    path = images.source_file(rec.path, services().settings.shared_dir)
    if path is None:
        abort(404, description="source file no longer available")
    return path


@blueprint.get("/results/<result_id>/image")
@require_auth
def result_image(result_id: str) -> Any:
    rec = visible_record(result_id)
    try:
        handle = _source(rec).open("rb")
    except OSError:  # removed or made unreadable since it was checked
        abort(404, description="source file no longer available")
    response = send_file(handle, mimetype=images.mimetype_of(handle), download_name=rec.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@blueprint.get("/results/<result_id>/annotated")
@require_auth
def result_annotated(result_id: str) -> Any:
    rec = visible_record(result_id)
    lines = rec.lines
    if not lines and rec.duplicate_of:  # same bytes as the primary, so its boxes fit
        primary = services().store.get(rec.duplicate_of)
        if primary is not None and g.principal.scope.allows(primary.channel):
            lines = primary.lines
    try:
        # decode, draw, encode: 0.4 s for a 12 MP photo, off the event loop
        png = services().offload.run(
            images.annotated_png, _source(rec), lines, services().settings.engine, rec.filename
        )
    except ImageError as exc:
        abort(422, description=f"cannot draw on this file: {exc}")
    response = send_file(
        io.BytesIO(png), mimetype="image/png", download_name=f"{Path(rec.filename).stem}.annotated.png"
    )
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# -- corrections --------------------------------------------------------------------------


@blueprint.post("/results/<result_id>/lines/<int:index>")
@require_auth
def correct_line(result_id: str, index: int) -> Any:
    """Replace one line's text; the store keeps who, when and the text it replaced."""
    rec = visible_record(result_id)
    text = json_body(_TEXT_BODY).get("text")
    if not isinstance(text, str):
        abort(400, description=_TEXT_BODY)
    if len(text) > MAX_CORRECTION_CHARS:
        abort(400, description=f"text is {len(text)} characters, over the limit of {MAX_CORRECTION_CHARS}")
    if _CONTROL.search(text):
        abort(400, description="text must be one line without control characters")
    svc = services()
    try:
        updated = svc.store.correct(rec.id, index, text, g.principal.user.username, time.time())
    except ValueError as exc:  # no such line: the URL names nothing, as for an unknown id
        abort(404, description=str(exc))
    if updated is None:  # deleted (retention) since it was read
        abort(404, description=NOT_FOUND)
    item = updated.to_public()
    announce(item)
    return jsonify(item)


def announce(item: dict[str, Any]) -> None:
    """Tell the result's team (live clients) and refresh the dashboard's cache; the edit is stored anyway."""
    svc = services()
    try:
        LatestCache(svc.redis, svc.settings.daemon.latest_cache).put(item)
        svc.socketio.emit(EVENT, item, to=svc.teams.room_of(item["channel"]), namespace="/")
    except (redis.RedisError, OSError) as exc:
        log.warning("correction of %s stored but not announced: %s", item["id"], exc)


# -- the API's description ---------------------------------------------------------------


@blueprint.get("/openapi.json")
def openapi_document() -> Any:
    """The OpenAPI 3.1 document of every endpoint (no token needed)."""
    return send_file(OPENAPI_DOCUMENT, mimetype="application/json")
