"""A result's tables as files: one table as CSV, all of them as an Excel workbook.

Both take the JSON shape of the engine's results (``engine.types``: a table's ``rows``, ``cols``
and ``cells``, each cell's ``row``, ``col``, ``rowspan``, ``colspan``, ``text`` and ``lines``) and
the result's ``lines``, so that a stored result whose lines were corrected since gives the
corrected text: a cell's text is made again from its lines (their rows on lines of their own).

CSV is UTF-8 with a BOM (Excel reads it as UTF-8); a merged cell's text is in its first (top-left)
position, the others it covers are empty. The workbook has one sheet per table ("Table 1",
"Table 2", or "p3 t1" for a document's page 3), merged cells merged, text kept as text (a cell
that starts with ``=`` is not made a formula) except plain numbers, which become numbers shown as
written: "1.50" is the number 1.5 with the number format "0.00". A value that a number would change
stays text: over 15 significant digits (Excel rounds them), leading zeros ("007"), "-0".

A stored table's grid is checked and bounded first (``engine.table_shape``): one that cannot be
laid out raises :class:`engine.errors.TableError` (a ``ValueError``) naming the table.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.errors import TableError
from engine.layout import join_texts
from engine.levelling import level
from engine.table_shape import Shape, merges, shape_of

# A cell starting with one of these is a formula to a spreadsheet (OCR text comes from users).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A plain number: an optional minus, no leading zeros (an id, a postcode), no thousands separators,
# no exponent; its decimals (group 1) decide the number format that shows it as written.
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.(\d+))?")
# The significant digits Excel keeps: a number with more is stored rounded, so it stays text.
EXCEL_DIGITS = 15
# The columns an Excel sheet holds (XFD).
SHEET_COLUMNS = 16_384
# Characters an .xlsx cannot hold (XML 1.0 forbids them).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def safe_cell(value: str) -> str:
    """A text cell that a spreadsheet shows as text: a leading formula character gets a ``'``."""
    return "'" + value if value.startswith(FORMULA_START) else value


def cell_text(cell: dict[str, Any], lines: Sequence[dict[str, Any]]) -> str:
    """The text of ``cell``: its lines' current texts (a row's pieces joined as one line, rows on
    lines of their own), or the cell's own ``text`` when it names no line of ``lines``.

    Rows are found in the frame where the lines run left to right (:func:`engine.levelling.level`):
    a page read turned keeps its quads in the pixels of the image as it came."""
    picked = [lines[i] for i in cell.get("lines", []) if isinstance(i, int) and 0 <= i < len(lines)]
    if not picked:
        return str(cell.get("text", ""))
    quads = level([_quad(line) for line in picked])
    rows: list[list[tuple[float, str]]] = []
    last_y: float | None = None
    for k in sorted(range(len(picked)), key=lambda k: float(quads[k][:, 1].mean())):
        x, y = (float(v) for v in quads[k].mean(axis=0))
        height = max(1.0, float(quads[k][:, 1].max() - quads[k][:, 1].min()))
        if last_y is None or abs(y - last_y) > height / 2:
            rows.append([])
            last_y = y
        rows[-1].append((x, str(picked[k].get("text", ""))))
    return "\n".join(join_texts([text for _, text in sorted(row)]) for row in rows)


def _quad(line: dict[str, Any]) -> np.ndarray:
    """A line's points as an ``(n, 2)`` array (two points at the origin when it has none)."""
    points = np.asarray(line.get("points") or [[0, 0], [0, 0]], dtype=np.float64).reshape(-1, 2)
    return points if len(points) >= 2 else np.vstack([points, points])


def grid(table: dict[str, Any], lines: Sequence[dict[str, Any]], name: str = "table") -> list[list[str]]:
    """The table as rows of texts, its grid bounded (:func:`engine.table_shape.shape_of`): each
    cell's text at its top-left position, the positions a merged cell covers empty, cells outside
    the grid left out. TableError naming the table (``name``) for one that cannot be laid out."""
    return _texts(shape_of(table, name), lines)


def _texts(shape: Shape, lines: Sequence[dict[str, Any]]) -> list[list[str]]:
    out = [[""] * shape.cols for _ in range(shape.rows)]
    for placed in shape.cells:
        out[placed.row][placed.col] = cell_text(placed.cell, lines)
    return out


def table_names(tables: Sequence[dict[str, Any]]) -> list[str]:
    """A name per table for messages: "table N" (its 1-based number in the result, the CSV's),
    with its page when it has one ("table 4 (page 2)")."""
    return [
        f"table {number} (page {table['page']})" if isinstance(table.get("page"), int) else f"table {number}"
        for number, table in enumerate(tables, 1)
    ]


def table_csv(table: dict[str, Any], lines: Sequence[dict[str, Any]], name: str = "table") -> bytes:
    """One table as CSV (UTF-8 with a BOM), formula-like cells made text; TableError naming the
    table (``name``) for one that cannot be laid out."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in grid(table, lines, name):
        writer.writerow([safe_cell(text) for text in row])
    return out.getvalue().encode("utf-8-sig")


def sheet_names(tables: Sequence[dict[str, Any]]) -> list[str]:
    """A sheet name per table: "Table N", or "pP tK" (page P's K-th) when tables carry pages."""
    names: list[str] = []
    per_page: dict[int, int] = {}
    for number, table in enumerate(tables, 1):
        page = table.get("page")
        if isinstance(page, int):
            per_page[page] = per_page.get(page, 0) + 1
            names.append(f"p{page} t{per_page[page]}")
        else:
            names.append(f"Table {number}")
    return names


def tables_xlsx(tables: Sequence[dict[str, Any]], lines: Sequence[dict[str, Any]]) -> bytes:
    """All ``tables`` as one .xlsx workbook, a sheet each (one empty sheet when there are none).

    A merge that would overlap an earlier one is left out (Excel refuses to open a workbook with
    overlapping merges); TableError naming the table for one that cannot be laid out, or that has
    more columns than a sheet holds."""
    from openpyxl import Workbook  # imported when a workbook is asked for: ~0.2 s, not at start-up
    from openpyxl.utils import get_column_letter

    book = Workbook()
    first = book.active
    if not tables:
        first.title = "No tables"
    sheets = sheet_names(tables)
    for number, (table, name) in enumerate(zip(tables, table_names(tables), strict=True)):
        shape = shape_of(table, name)
        if shape.cols > SHEET_COLUMNS:
            raise TableError(name, f"its {shape.cols:,} columns are more than a sheet holds ({SHEET_COLUMNS:,})")
        sheet = first if number == 0 else book.create_sheet()
        sheet.title = sheets[number]
        texts = _texts(shape, lines)
        for r, row in enumerate(texts, 1):
            for c, text in enumerate(row, 1):
                if text:
                    _put(sheet.cell(row=r, column=c), text)
        for placed in merges(shape):
            top, left = placed.row + 1, placed.col + 1
            sheet.merge_cells(
                start_row=top, start_column=left, end_row=top + placed.rowspan - 1, end_column=left + placed.colspan - 1
            )
        for c in range(1, shape.cols + 1):
            width = max((len(part) for row in texts for part in row[c - 1].split("\n")), default=0)
            sheet.column_dimensions[get_column_letter(c)].width = min(60, max(8, width + 2))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _put(cell: Any, text: str) -> None:
    """Write ``text`` into an openpyxl cell: a plain number as a number shown as written
    (:func:`as_number`), anything else as text."""
    text = _NOT_XML.sub("", text)
    number = as_number(text)
    if number is not None:
        cell.value, cell.number_format = number
        return
    cell.value = text
    cell.data_type = "s"  # openpyxl would take "=..." for a formula


def as_number(text: str) -> tuple[int | float, str] | None:
    """The number ``text`` is and the number format that shows it as written ("1.50": 1.5 shown
    with two decimals, "0.00"; "42": "0", never the scientific notation Excel's General format
    gives 12 digits and more); None where a number would read differently: over
    :data:`EXCEL_DIGITS` significant digits, leading zeros ("007"), a negative zero ("-0"), or
    anything but plain digits with an optional minus and decimal point."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    if len(text.lstrip("-").replace(".", "").lstrip("0")) > EXCEL_DIGITS:
        return None
    decimals = len(match.group(1) or "")
    value: int | float = float(text) if decimals else int(text)
    if value == 0 and text.startswith("-"):
        return None
    return value, ("0." + "0" * decimals) if decimals else "0"
