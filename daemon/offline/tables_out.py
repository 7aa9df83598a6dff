"""``teamocr ocr --tables DIR``: the tables a run finds, as files in ``DIR``.

Each table becomes ``<stem>-table-<n>.csv`` (a document's: ``<stem>-p<page>-table-<n>.csv``, ``n``
counted per page), written as its row arrives (:meth:`TableFiles.add`); at the end
(:meth:`TableFiles.finish`) each input that had tables gets ``<stem>.xlsx`` with all of them, a
sheet each. Two inputs with the same stem (``a/scan.png``, ``b/scan.png``) get ``scan`` and
``scan-2``, and a name one input would write that another already wrote (``scan-p1.png``'s table
and page 1 of ``scan.pdf``) gets ``-2``, ``-3``... before its extension: no file of a run
overwrites another. Files are written whole or not at all (a temporary name, then a rename).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from daemon.offline.files import write_whole

log = logging.getLogger(__name__)


class TableFiles:
    """The tables of one run's rows, written into ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names: dict[str, str] = {}  # input (the row's image without #page=) -> its file stem
        self.tables: dict[str, list[dict[str, Any]]] = {}  # input -> its tables, page-stamped, in order
        self.lines: dict[str, list[dict[str, Any]]] = {}  # input -> its lines, pages one after another
        self.written: set[str] = set()  # the file names this run wrote

    def add(self, row: dict[str, Any]) -> None:
        """Write the CSV of each table of ``row`` (an image's, or one page of a document's)."""
        tables = row.get("tables") or []
        if not tables:
            return
        from engine.table_files import table_csv

        page = row.get("page")
        source = str(row["image"]).rsplit("#page=", 1)[0] if page is not None else str(row["image"])
        stem = self._stem(source)
        offset = len(self.lines.setdefault(source, []))
        self.lines[source].extend(row.get("lines", []))
        for n, table in enumerate(tables, 1):
            name = f"{stem}-p{page}-table-{n}.csv" if page is not None else f"{stem}-table-{n}.csv"
            self._write(name, table_csv(table, row.get("lines", [])))
            moved = {
                **table,
                "cells": [{**c, "lines": [offset + i for i in c.get("lines", [])]} for c in table.get("cells", [])],
            }
            if page is not None:
                moved["page"] = page
            self.tables.setdefault(source, []).append(moved)

    def finish(self) -> int:
        """Write each input's workbook; how many tables the run wrote."""
        from engine.table_files import tables_xlsx

        for source, tables in self.tables.items():
            self._write(f"{self.names[source]}.xlsx", tables_xlsx(tables, self.lines[source]))
        return sum(len(tables) for tables in self.tables.values())

    def _stem(self, source: str) -> str:
        if source not in self.names:
            base = Path(source).stem or "image"
            taken = set(self.names.values())
            stem, k = base, 1
            while stem in taken:
                k += 1
                stem = f"{base}-{k}"
            self.names[source] = stem
        return self.names[source]

    def _write(self, name: str, data: bytes) -> None:
        base, dot, extension = name.rpartition(".")
        free, k = name, 1
        while free in self.written:
            k += 1
            free = f"{base}-{k}{dot}{extension}"
        self.written.add(free)
        write_whole(self.folder / free, data)
