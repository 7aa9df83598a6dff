"""``teamocr ocr --pdf OUT.pdf``: the searchable PDF of a whole run, every input's pages in order.

The run's rows are collected as they are written (:meth:`RunPdf.add`); :meth:`RunPdf.write` then
turns each input into its searchable PDF (:func:`engine.pdf_of_result.searchable_pdf`: a PDF keeps
its own pages, the recognised text laid over its OCR'd ones; a TIFF or an image becomes image
pages under their text) and joins them with PDFium. An input that failed has no pages in it; a
page that failed keeps its picture, without text.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from config.settings import EngineSettings
from daemon.errors import DaemonError
from daemon.names import shown_name
from daemon.offline.files import write_whole

log = logging.getLogger(__name__)


class RunPdf:
    """The rows of one run over ``paths`` (in their order), made into one searchable PDF."""

    def __init__(self, paths: Sequence[str], settings: EngineSettings) -> None:
        self.paths = list(paths)
        self.settings = settings
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def write(self, out: Path) -> tuple[int, int]:
        """Write the PDF to ``out``; returns (inputs in it, inputs left out). Raises DaemonError
        when no input gave a page or ``out`` cannot be written."""
        import pypdfium2 as pdfium

        parts = [part for part in (self._part(path, rows) for path, rows in self._by_input()) if part is not None]
        left_out = len(self.paths) - len(parts)
        if not parts:
            raise DaemonError(f"no searchable PDF written to {out}: no input could be read")
        if len(parts) == 1:
            data = parts[0]
        else:
            joined = pdfium.PdfDocument.new()
            try:
                for part in parts:
                    source = pdfium.PdfDocument(part)
                    try:
                        joined.import_pages(source)
                    finally:
                        source.close()
                buffer = io.BytesIO()
                joined.save(buffer)
                data = buffer.getvalue()
            finally:
                joined.close()
        write_whole(out, data)
        return len(parts), left_out

    def _by_input(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """Each input path with its rows (an image's one, a document's one per page)."""
        groups: list[tuple[str, list[dict[str, Any]]]] = []
        rows = iter(self.rows)
        pending = next(rows, None)
        for path in self.paths:
            shown = shown_name(path)
            mine = []
            while pending is not None and (pending["image"] == shown or pending["image"].startswith(f"{shown}#page=")):
                mine.append(pending)
                pending = next(rows, None)
            groups.append((path, mine))
        return groups

    def _part(self, path: str, rows: list[dict[str, Any]]) -> bytes | None:
        """The searchable PDF of one input, or None (logged) when it has none."""
        from engine.errors import ImageError
        from engine.pdf_of_result import read_pages, searchable_pdf

        shown = shown_name(path)
        pages = [row for row in rows if "page" in row]
        if not pages and (not rows or "error" in rows[0]):
            log.warning("%s: not in the PDF (%s)", shown, rows[0]["error"] if rows else "no result")
            return None
        if pages:
            lines = [{**line, "page": row["page"]} for row in pages for line in row.get("lines", [])]
            sizes = [{"error": row["error"]} if "error" in row else row for row in pages]
            read = read_pages(lines, sizes, (0, 0))
        else:
            row = rows[0]
            read = read_pages(row["lines"], [], (row["width"], row["height"]), row.get("rotation", 0))
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            return searchable_pdf(data, shown, read, self.settings)
        except (ImageError, OSError) as exc:
            log.warning("%s: not in the PDF: %s", shown, getattr(exc, "reason", None) or exc)
            return None
