"""The results REST API: list, detail, search, export, source and annotated images, corrections.

Every view needs a token (``require_auth``) and reads only what the caller's team may see: lists
and searches pass ``g.principal.scope`` to the store, and a single result of another team answers
404 exactly like an unknown id. Results are shown with no server path in their errors
(:func:`daemon.results.public.public_item`); a source image is served only while its bytes are
those the result holds (else 410); searches, exports and drawings run off the event loop
(``services().offload``). The OpenAPI document of the whole app is served here too.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import redis
from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request, send_file
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import ServiceUnavailable

from daemon.records import ResultRecord, Status, parse_status
from daemon.results.events import EVENT, LatestCache
from daemon.results.public import public_item
from daemon.results.store import MAX_LIMIT
from daemon.webhooks.queue import Outbox
from engine import pdf_of_result
from engine.errors import ImageError
from web import drawing, exports, images
from web.auth import require_auth
from web.bodies import json_body
from web.render_slots import heavy_render
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
# One line of a training label file: no C0/C1 control (tab, newline, U+0085 included), and none of
# the Unicode line and paragraph separators that str.splitlines() and editors break lines at.
_NOT_IN_A_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_GONE = "source file no longer available"


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    """The app's cache and slots of drawn images (``web.drawing``), made with the app."""
    app = cast(Flask, state.app)  # the sansio App Flask's blueprints are typed with
    drawing.init_app(app, services(app).settings.web.annotated_cache_bytes)


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


def public(rec: ResultRecord) -> dict[str, Any]:
    """What the caller is shown of ``rec``: no server path, even in its error."""
    return public_item(rec, services().settings.shared_dir)


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
        items=[public(rec) for rec in records[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
        counts=store.counts(scope=g.principal.scope),
    )


def laid_out(item: dict[str, Any]) -> dict[str, Any]:
    """:func:`web.exports.laid_out` off the event loop (finding the blocks of a result stored
    without them takes seconds for a long document)."""
    if not exports.needs_layout(item):
        return item
    found: dict[str, Any] = services().offload.run(exports.laid_out, item)
    return found


@blueprint.get("/results/<result_id>")
@require_auth
def result_detail(result_id: str) -> Any:
    rec = visible_record(result_id)
    return jsonify({**laid_out(public(rec)), "corrections": services().store.corrections(rec.id)})


@blueprint.get("/search")
@require_auth
def search() -> Any:
    query = request.args.get("q", "")
    if not query.strip():
        abort(400, description="q (the text to search for) is required")
    if "\x00" in query:  # never in a text, and SQLite's full-text parser stops at it
        abort(400, description="q must not contain NUL characters")
    limit = int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    svc = services()
    # a full-text match over a team's whole history: off the event loop
    records = svc.offload.run(svc.reads.search, query, limit, request.args.get("channel"), g.principal.scope)
    items = [public(rec) for rec in records]
    return jsonify(
        items=items, query=query, hits=[{"id": item["id"], "pages": hit_pages(item, query)} for item in items]
    )


def hit_pages(item: dict[str, Any], query: str) -> list[int]:
    """The pages of a result whose text holds ``query`` (any case, spaces as the store finds them);
    [1] for an image that matched by its text, [] where only the file name matched."""
    needle = query.strip().casefold()
    return [page for page, text in exports.page_texts(item) if needle in text.casefold()]


@blueprint.get("/export")
@require_auth
@heavy_render
def export() -> Any:
    name = request.args.get("format", "csv")
    fmt = exports.FORMATS.get(name)
    if fmt is None:
        abort(400, description=f"format must be one of {', '.join(exports.FORMATS)}, got {name!r}")
    limit = int_arg("limit", MAX_EXPORT, 1, MAX_EXPORT)
    offset = int_arg("offset", 0, 0, MAX_OFFSET)
    filters = list_filters()
    svc = services()
    store, shared_dir = svc.reads, svc.settings.shared_dir

    def page(at: int, want: int) -> list[dict[str, Any]]:  # in the pool: no request, no services()
        return [public_item(rec, shared_dir) for rec in store.list(limit=want, offset=at, **filters)]

    # up to MAX_EXPORT rows read and rendered off the event loop
    try:
        body, count = svc.offload.run(exports.export_bytes, fmt, page, limit, offset, MAX_LIMIT)
    except ValueError as exc:  # a result whose stored layout cannot be written: the message names it
        abort(422, description=f"cannot export as {name}: {exc}")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    response = Response(body, mimetype=fmt.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="teamocr-results-{stamp}.{fmt.extension}"'
    response.headers["X-Result-Count"] = str(count)
    return response


# -- images -----------------------------------------------------------------------------


def source_bytes(rec: ResultRecord) -> bytes:
    """The bytes of ``rec``'s file, read off the event loop, when they are still the bytes its MD5
    names; 404 when the file is gone, 410 when it is not that file any more (web.images)."""
    svc = services()
    read = functools.partial(
        images.verified_source,
        rec.disk_path,
        shared_dir=svc.settings.shared_dir,
        channel=rec.channel,
        size=rec.size,
        md5=rec.md5,
        name=rec.filename,
        follow=svc.settings.daemon.follow_symlinks,
    )
    try:
        data: bytes = svc.offload.run(read)
    except images.SourceGone:
        abort(404, description=_GONE)
    except images.SourceChanged as exc:
        abort(410, description=str(exc))
    return data


@blueprint.get("/results/<result_id>/image")
@require_auth
def result_image(result_id: str) -> Any:
    return _source_file(visible_record(result_id))


def _source_file(rec: ResultRecord) -> Any:
    """The result's file as it was read (its bytes checked against the MD5), with its own type."""
    data = source_bytes(rec)
    response = send_file(io.BytesIO(data), mimetype=images.mimetype_of(data), download_name=rec.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.get("/results/<result_id>/annotated")
@require_auth
def result_annotated(result_id: str) -> Any:
    """The boxes drawn on the image (a document: on its first page)."""
    rec = visible_record(result_id)
    return _annotated(rec, 1 if is_document(rec) else None)


@blueprint.get("/results/<result_id>/pages/<int:page>/image")
@require_auth
def page_image(result_id: str, page: int) -> Any:
    """Page ``page`` (1-based) of a document as PNG, rendered as it was for OCR; page 1 of an image
    is the image itself."""
    rec = visible_record(result_id)
    _check_page(rec, page)
    if not is_document(rec):
        return _source_file(rec)
    data = source_bytes(rec)
    svc = services()
    try:
        png: bytes = svc.offload.run(images.page_png, data, page, svc.settings.engine, rec.filename)
    except ImageError as exc:
        abort(422, description=f"cannot render this page: {exc}")
    stem = Path(rec.filename).stem
    return send_file(io.BytesIO(png), mimetype="image/png", download_name=f"{stem}.page-{page}.png")


@blueprint.get("/results/<result_id>/pages/<int:page>/annotated")
@require_auth
def page_annotated(result_id: str, page: int) -> Any:
    """Page ``page`` of a document with the boxes of its lines drawn, as PNG."""
    rec = visible_record(result_id)
    _check_page(rec, page)
    return _annotated(rec, page if is_document(rec) else None)


@blueprint.get("/results/<result_id>/pdf")
@require_auth
@heavy_render
def result_pdf(result_id: str) -> Any:
    """The searchable PDF of the result's file: its pages (a PDF's own, a TIFF's, or the image) with
    the recognised text invisible on top, so that any PDF viewer selects, copies and searches it.
    A born-digital PDF comes back as it came. 409 while the file has no reading."""
    rec = visible_record(result_id)
    reading = reading_of(rec)
    data = source_bytes(rec)
    pages = pdf_of_result.read_pages(reading.lines, reading.pages, (reading.width or 0, reading.height or 0))
    svc = services()
    try:
        pdf: bytes = svc.offload.run(pdf_of_result.searchable_pdf, data, rec.filename, pages, svc.settings.engine)
    except ImageError as exc:
        abort(422, description=f"cannot make its PDF: {exc}")
    stem = Path(rec.filename).stem
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=f"{stem}.pdf")


def reading_of(rec: ResultRecord, what: str = "PDF") -> ResultRecord:
    """The record whose lines are ``rec``'s reading: itself once done, a duplicate's first result;
    409 while there is none (queued, processing, failed), saying it has no ``what`` yet."""
    reading: ResultRecord | None = rec
    if rec.status == Status.DUPLICATE and rec.duplicate_of:
        reading = services().store.get(rec.duplicate_of)
        if reading is not None and not g.principal.scope.allows(reading.channel):
            reading = None  # never another team's (dedup is per team: a safeguard)
    if reading is None or reading.status != Status.DONE:
        abort(409, description=f"the file has no reading yet (it is {rec.status}), so it has no {what}")
    return reading


def is_document(rec: ResultRecord) -> bool:
    """Whether ``rec`` was read as a document (a PDF or a multi-page TIFF), page by page."""
    return bool(rec.pages)


def _check_page(rec: ResultRecord, page: int) -> None:
    count = len(rec.pages) if rec.pages else 1
    if not 1 <= page <= count:
        abort(404, description=f"no page {page}: the result has {count} page(s)")


def _annotated(rec: ResultRecord, page: int | None) -> Any:
    lines = rec.lines
    if not lines and rec.duplicate_of:  # same bytes as the primary, so its boxes fit
        primary = services().store.get(rec.duplicate_of)
        if primary is not None and g.principal.scope.allows(primary.channel):
            lines = primary.lines
    data = source_bytes(rec)  # checked on every request; only the drawing is kept
    svc = services()

    def draw() -> bytes:  # decode, draw, encode: 0.4 s for a 12 MP photo, off the event loop
        png: bytes = svc.offload.run(images.annotated_png, data, lines, svc.settings.engine, rec.filename, page)
        return png

    key = drawing.drawing_key(rec.id if page is None else f"{rec.id}#page={page}", rec.md5, lines)
    try:
        png = drawing.drawings(current_app).image(key, draw)
    except ImageError as exc:
        abort(422, description=f"cannot draw on this file: {exc}")
    except drawing.DrawingBusy as exc:
        raise ServiceUnavailable(description=f"{exc}; try again shortly", retry_after=exc.retry_after) from None
    suffix = "" if page is None else f".page-{page}"
    return send_file(
        io.BytesIO(png), mimetype="image/png", download_name=f"{Path(rec.filename).stem}{suffix}.annotated.png"
    )


# -- corrections --------------------------------------------------------------------------


@blueprint.post("/results/<result_id>/lines/<int:index>")
@require_auth
def correct_line(result_id: str, index: int) -> Any:
    """Replace one line's text; the store keeps who, when and the text it replaced."""
    return _correct(visible_record(result_id), index)


@blueprint.post("/results/<result_id>/pages/<int:page>/lines/<int:line>")
@require_auth
def correct_page_line(result_id: str, page: int, line: int) -> Any:
    """Replace line ``line`` (0-based) of page ``page`` (1-based) of a document, as ``.../lines/<index>``."""
    rec = visible_record(result_id)
    _check_page(rec, page)
    on_page = [i for i, found in enumerate(rec.lines) if found.get("page", 1) == page]
    if not 0 <= line < len(on_page):
        abort(404, description=f"page {page} has no line {line} (it has {len(on_page)})")
    return _correct(rec, on_page[line])


def _correct(rec: ResultRecord, index: int) -> Any:
    text = json_body(_TEXT_BODY).get("text")
    if not isinstance(text, str):
        abort(400, description=_TEXT_BODY)
    if len(text) > MAX_CORRECTION_CHARS:
        abort(400, description=f"text is {len(text)} characters, over the limit of {MAX_CORRECTION_CHARS}")
    if (found := _NOT_IN_A_LINE.search(text)) is not None:
        abort(
            400,
            description=f"text must be one line: it holds U+{ord(found.group()):04X} at character {found.start()}; "
            "tabs, line breaks, U+0085, the line and paragraph separators U+2028 and U+2029 and other "
            "control characters would split the training label files",
        )
    svc = services()
    try:
        updated = svc.store.correct(rec.id, index, text, g.principal.user.username, time.time())
    except ValueError as exc:  # no such line: the URL names nothing, as for an unknown id
        abort(404, description=str(exc))
    if updated is None:  # deleted (retention) since it was read
        abort(404, description=NOT_FOUND)
    item = laid_out(public(updated))
    announce(item)
    return jsonify(item)


def announce(item: dict[str, Any]) -> None:
    """Tell the result's team (live clients and its webhooks) and refresh the dashboard's cache;
    the edit is stored anyway."""
    svc = services()
    try:
        Outbox().corrected(svc.redis, item)
    except redis.RedisError as exc:
        log.warning("correction of %s stored but not queued for webhooks: %s", item["id"], exc)
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
