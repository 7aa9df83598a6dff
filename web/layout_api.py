"""A result's layout as files: its tables (JSON, one as CSV, all as an Excel workbook) and the whole
result as Markdown (or any export format, for this one result).

``GET /api/v1/results/<id>/tables``           the tables, each cell's text from its lines now
``GET /api/v1/results/<id>/tables/<n>.csv``   table ``n`` (1-based, in reading order) as CSV
``GET /api/v1/results/<id>/tables.xlsx``      every table, a sheet each
``GET /api/v1/results/<id>/export?format=md`` the result as Markdown (``txt``, ``json``, ``csv`` too)

A duplicate answers with its first result's reading; 409 while a file has no reading, 404 for an
unknown id, another team's id, or a table that is not there, 422 (naming the file and the table)
for a stored table that cannot be laid out (:class:`engine.errors.TableError`). A result read
before blocks were kept is laid out from its lines when asked (:func:`web.api.laid_out`). Every
file is made off the event loop (``services().offload``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request, send_file

from daemon.records import ResultRecord
from engine import table_files
from web import exports
from web.api import laid_out, public, reading_of, visible_record
from web.auth import require_auth
from web.render_slots import heavy_render
from web.services import services

blueprint = Blueprint("layout", __name__, url_prefix="/api/v1")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def reading_item(rec: ResultRecord, what: str) -> dict[str, Any]:
    """The public item of ``rec`` with its reading's lines, blocks and tables (a duplicate's from
    its first result); 409 while there is no reading."""
    reading = reading_of(rec, what)
    item = public(rec)
    if reading.id != rec.id:
        for name in ("lines", "text", "blocks", "tables", "pages", "page_count", "width", "height"):
            item[name] = getattr(reading, name)
    return laid_out(item)


def tables_now(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The item's tables, each cell's ``text`` made from its lines' current text (corrections)."""
    lines = item["lines"]

    def now(cell: dict[str, Any]) -> dict[str, Any]:
        return {**cell, "text": table_files.cell_text(cell, lines)}

    return [{**table, "cells": [now(cell) for cell in table.get("cells", [])]} for table in item.get("tables") or []]


@blueprint.get("/results/<result_id>/tables")
@require_auth
def result_tables(result_id: str) -> Any:
    item = reading_item(visible_record(result_id), "tables")
    try:
        tables = services().offload.run(tables_now, item)
    except ValueError as exc:  # a stored table that cannot be read: the message names it
        abort(422, description=f"{item['filename']}: cannot read its tables: {exc}")
    return jsonify(id=item["id"], tables=tables)


@blueprint.get("/results/<result_id>/tables/<int:table>.csv")
@require_auth
@heavy_render
def table_csv(result_id: str, table: int) -> Any:
    item = reading_item(visible_record(result_id), "tables")
    tables = item.get("tables") or []
    if not 1 <= table <= len(tables):
        abort(404, description=f"no table {table}: the result has {len(tables)} table(s)")
    name = table_files.table_names(tables)[table - 1]
    try:
        body: bytes = services().offload.run(table_files.table_csv, tables[table - 1], item["lines"], name)
    except ValueError as exc:  # a stored table that cannot be laid out: the message names it
        abort(422, description=f"{item['filename']}: cannot make its CSV: {exc}")
    return _attachment(body, "text/csv; charset=utf-8", f"{Path(item['filename']).stem}-table-{table}.csv")


@blueprint.get("/results/<result_id>/tables.xlsx")
@require_auth
@heavy_render
def tables_xlsx(result_id: str) -> Any:
    item = reading_item(visible_record(result_id), "tables")
    svc = services()
    try:
        body: bytes = svc.offload.run(table_files.tables_xlsx, item.get("tables") or [], item["lines"])
    except ValueError as exc:  # a stored table that cannot be laid out: the message names it
        abort(422, description=f"{item['filename']}: cannot make its workbook: {exc}")
    return _attachment(body, XLSX, f"{Path(item['filename']).stem}-tables.xlsx")


@blueprint.get("/results/<result_id>/export")
@require_auth
@heavy_render
def result_export(result_id: str) -> Any:
    name = request.args.get("format", "md")
    fmt = exports.FORMATS.get(name)
    if fmt is None:
        abort(400, description=f"format must be one of {', '.join(exports.FORMATS)}, got {name!r}")
    rec = visible_record(result_id)
    item = reading_item(rec, "text") if name == "md" else public(rec)
    try:
        body: bytes = services().offload.run(fmt.render, [item])
    except ValueError as exc:  # a stored table that cannot be laid out: the message names the file
        abort(422, description=f"cannot export it as {name}: {exc}")
    return _attachment(body, fmt.mimetype, f"{Path(item['filename']).stem}.{fmt.extension}")


def _attachment(body: bytes, mimetype: str, name: str) -> Response:
    return send_file(io.BytesIO(body), mimetype=mimetype, as_attachment=True, download_name=name)
