"""A result as Markdown: its blocks in reading order, headings as headings, lists as lists, tables as
Markdown tables, paragraphs as paragraphs; a document's pages apart by a rule (one between two pages
that have text: an empty page is left out).

It takes the JSON shape of the engine's results (``lines``, ``blocks`` with their ``lines`` and
``rows``, ``tables`` with their ``cells``, a document's ``pages``), stored or fresh, so a corrected
line reads as corrected. A table is written where the first of its lines falls in the reading order
(a merged cell's text in its top-left position; a cell's rows joined by ``<br>``); the lines of a
table are not written again as text. Text that Markdown would take for markup at the start of a line
(``#``, ``>``, ``-``, ``1.``) is escaped, inline markup (``*``, ``_``, a backquote, brackets, ``<``)
anywhere, table cells included, and ``|`` inside a table cell.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from engine.layout import join_texts
from engine.table_files import grid, table_names

_INLINE = re.compile(r"([\\`*_\[\]<~])")
_MARKUP_START = re.compile(r"^(\s*)([#>+\-=~])")
_NUMBER_START = re.compile(r"^(\s*\d+)([.)])")
_BULLET = re.compile(r"^\s*[•·●○▪■◦\-*+]\s*")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s")


def to_markdown(item: dict[str, Any]) -> str:
    """The Markdown of one result (its ``filename``, when it has one, as the title)."""
    lines: list[dict[str, Any]] = list(item.get("lines") or [])
    blocks: list[dict[str, Any]] = list(item.get("blocks") or [])
    tables: list[dict[str, Any]] = list(item.get("tables") or [])
    page_count = len(item.get("pages") or []) or 1
    parts: list[str] = []
    if item.get("filename"):
        parts.append(f"# {escape(str(item['filename']))}")
    names = table_names(tables)
    pages = []
    for number in range(1, page_count + 1):
        on_page = [b for b in blocks if b.get("page", 1) == number] if page_count > 1 else blocks
        picked = [n for n, t in enumerate(tables) if page_count == 1 or t.get("page", 1) == number]
        page_lines = [i for i, ln in enumerate(lines) if ln.get("page", 1) == number] if page_count > 1 else None
        pages.append(page_markdown(lines, on_page, [tables[n] for n in picked], page_lines, [names[n] for n in picked]))
    # a page with nothing to write (blank, or only a picture) is left out, so that a rule stands
    # between two pages' texts, never next to another rule or at the start or end
    body = "\n\n---\n\n".join(page for page in pages if page.strip())
    if body:
        parts.append(body)
    return "\n\n".join(parts).rstrip() + "\n"


def page_markdown(
    lines: Sequence[dict[str, Any]],
    blocks: Sequence[dict[str, Any]],
    tables: Sequence[dict[str, Any]],
    page_lines: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
) -> str:
    """One page: ``blocks`` in order (lines as their own block each when there are none: a result
    stored before blocks were; ``page_lines`` are the page's line indices then, all when None).
    ``names`` name the ``tables`` in errors (:func:`engine.table_files.table_names` when None)."""
    names = list(names) if names is not None else table_names(tables)
    if not blocks:
        order = list(page_lines) if page_lines is not None else list(range(len(lines)))
        blocks = [{"kind": "paragraph", "lines": [i]} for i in order]
    table_of = {
        i: n for n, table in enumerate(tables) for cell in table.get("cells", []) for i in cell.get("lines", [])
    }
    written: set[int] = set()
    out: list[str] = []
    for block in blocks:
        rows = _rows(block)
        for n in (table_of[i] for row in rows for i in row if i in table_of):
            if n not in written:
                written.add(n)
                out.append(table_markdown(tables[n], lines, names[n]))
        rows = [[i for i in row if i not in table_of and 0 <= i < len(lines)] for row in rows]
        texts = [join_texts([lines[i]["text"] for i in row]) for row in rows if row]
        texts = [text for text in texts if text.strip()]
        if texts:
            out.append(block_markdown(str(block.get("kind", "paragraph")), texts))
    out.extend(table_markdown(table, lines, names[n]) for n, table in enumerate(tables) if n not in written)
    return "\n\n".join(part for part in out if part)


def _rows(block: dict[str, Any]) -> list[list[int]]:
    """A block's rows (each its line indices left to right); each line its own row when the block
    has no ``rows``."""
    rows = block.get("rows")
    if rows:
        return [[int(i) for i in row] for row in rows]
    return [[int(i)] for i in block.get("lines", [])]


def block_markdown(kind: str, texts: Sequence[str]) -> str:
    """One block's rows as Markdown: a heading, list items, table rows kept as lines, or a paragraph
    (its rows on lines of their own: Markdown joins them, and an address keeps its lines)."""
    if kind == "heading":
        return "## " + join_texts([escape(text) for text in texts])
    if kind == "list":
        return "\n".join(_item(text) for text in texts)
    return "  \n".join(escape(text) for text in texts) if kind == "table" else "\n".join(map(escape, texts))


def _item(text: str) -> str:
    if _NUMBERED.match(text):
        number, rest = text.strip().split(maxsplit=1)
        return f"{number} {escape(rest)}"
    return "- " + escape(_BULLET.sub("", text, count=1))


def table_markdown(table: dict[str, Any], lines: Sequence[dict[str, Any]], name: str = "table") -> str:
    """A table as a Markdown (GFM) table; its first row is the header row. Its grid is bounded
    (:func:`engine.table_files.grid`): TableError naming the table (``name``) for one that cannot be
    laid out."""
    rows = grid(table, lines, name)
    if not rows or not rows[0]:
        return ""
    cells = [[_cell(text) for text in row] for row in rows]
    head, *rest = cells
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    out.extend("| " + " | ".join(row) + " |" for row in rest)
    return "\n".join(out)


def _cell(text: str) -> str:
    """A cell's text in a table row: the inline escape (a cell holds inline content only, so markup
    at its start means nothing there), ``|`` escaped, its rows apart by ``<br>``."""
    return "<br>".join(escape_inline(row).replace("|", "\\|") for row in text.split("\n")).strip()


def escape_inline(text: str) -> str:
    """``text`` with what Markdown takes for inline markup anywhere escaped: backslashes, backquotes,
    asterisks, underscores, brackets, ``<`` (HTML) and ``~`` (GFM strikethrough)."""
    return _INLINE.sub(r"\\\1", text)


def escape(text: str) -> str:
    """``text`` that Markdown shows as it is: markup at its start escaped, and backslashes, backquotes,
    asterisks, underscores and brackets anywhere (:func:`escape_inline`)."""
    text = escape_inline(text)
    text = _NUMBER_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text, count=1)
    return _MARKUP_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text, count=1)
