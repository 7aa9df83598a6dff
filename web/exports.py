"""Results as files a person downloads: CSV (for Excel), JSON (the public items), plain text or
Markdown.

:func:`export_bytes` reads the pages and renders them in one call, which the web runs off its
event loop (it touches the store, never the request).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from daemon.results.fulltext import layout_blocks
from engine.markdown import to_markdown
from engine.table_files import safe_cell
from engine.types import PAGE_BREAK

CSV_COLUMNS = ("id", "filename", "channel", "status", "page", "created_at", "finished_at", "text")


@dataclass(frozen=True)
class ExportFormat:
    """How one format is written and served."""

    mimetype: str
    extension: str
    render: Callable[[list[dict[str, Any]]], bytes]


def iso_time(epoch: float | None) -> str:
    """Epoch seconds as ISO 8601 UTC (``2024-05-01T12:00:00Z``); "" for None."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def to_csv(items: list[dict[str, Any]]) -> bytes:
    """One row per result, and per page of a document (its ``page`` 1, 2...; an image is page 1),
    times in ISO 8601 UTC, UTF-8 with a BOM so Excel reads it as UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in items:
        for page, text in page_texts(item):
            writer.writerow(
                [
                    item["id"],
                    safe_cell(item["filename"]),
                    safe_cell(item["channel"]),
                    item["status"],
                    page,
                    iso_time(item["created_at"]),
                    iso_time(item["finished_at"]),
                    safe_cell(text),
                ]
            )
    return out.getvalue().encode("utf-8-sig")


def page_texts(item: dict[str, Any]) -> list[tuple[int, str]]:
    """(page, its text) of a result: a document's pages (its text split at the page breaks), or
    page 1 with the whole text."""
    text = item.get("text") or ""
    if not item.get("pages"):
        return [(1, text)]
    parts = text.split(PAGE_BREAK)
    return [(number, parts[number - 1] if number <= len(parts) else "") for number in range(1, len(item["pages"]) + 1)]


def to_json(items: list[dict[str, Any]]) -> bytes:
    """The public items as a JSON list."""
    return json.dumps(items, ensure_ascii=False, indent=1).encode("utf-8")


def to_txt(items: list[dict[str, Any]]) -> bytes:
    """``== filename (id) ==`` then the text, for each result, blocks separated by a blank line."""
    blocks = [f"== {item['filename']} ({item['id']}) ==\n{item['text'] or ''}\n" for item in items]
    return "\n".join(blocks).encode("utf-8")


def needs_layout(item: dict[str, Any]) -> bool:
    """True for an item stored without blocks (read before they were kept) that has lines."""
    return not item.get("blocks") and bool(item.get("lines"))


def laid_out(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with its ``blocks`` (found from its lines when it was stored without them)."""
    if needs_layout(item):
        item = {**item, "blocks": layout_blocks(item["lines"], item.get("pages") or [])}
    return item


def to_md(items: list[dict[str, Any]]) -> bytes:
    """Each result as Markdown under its file name (:mod:`engine.markdown`): headings, paragraphs,
    lists and tables in reading order. ValueError naming the file for a result whose stored layout
    cannot be written (a table that cannot be laid out: :class:`engine.errors.TableError`)."""
    parts: list[str] = []
    for item in items:
        try:
            parts.append(to_markdown(laid_out(item)))
        except ValueError as exc:
            raise ValueError(f"{item['filename']} ({item['id']}): {exc}") from exc
    return "\n".join(parts).encode("utf-8")


def export_bytes(
    fmt: ExportFormat, page: Callable[[int, int], list[dict[str, Any]]], limit: int, offset: int, page_size: int
) -> tuple[bytes, int]:
    """Up to ``limit`` items from ``offset`` on, read ``page_size`` at a time with ``page(offset,
    count)`` (fewer than asked: the last page), rendered in ``fmt``; and how many there were."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    items: list[dict[str, Any]] = []
    while len(items) < limit:
        want = min(page_size, limit - len(items))
        rows = page(offset + len(items), want)
        items.extend(rows)
        if len(rows) < want:
            break
    return fmt.render(items), len(items)


FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat("text/csv; charset=utf-8", "csv", to_csv),
    "json": ExportFormat("application/json", "json", to_json),
    "txt": ExportFormat("text/plain; charset=utf-8", "txt", to_txt),
    "md": ExportFormat("text/markdown; charset=utf-8", "md", to_md),
}
