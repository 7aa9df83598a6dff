"""``teamocr ocr``: image files and folders to JSON Lines, on this machine, without the service."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from cli.folders import make_dirs
from config.settings import Settings
from daemon.errors import DaemonError
from daemon.ports import EngineFactory

log = logging.getLogger(__name__)


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``ocr`` on the ``teamocr`` subcommand collection."""
    ocr = commands.add_parser(
        "ocr",
        parents=[common],
        help="OCR image files and folders to JSON Lines",
        description="OCR image files and folders (recursively) and write one JSON object per "
        "image. Exit code 1 if any image failed.",
    )
    ocr.add_argument("paths", nargs="+", metavar="PATH", help="image file or folder")
    ocr.add_argument("--jsonl", type=Path, metavar="OUT", help="write here instead of stdout")
    ocr.add_argument(
        "--pdf",
        type=Path,
        metavar="OUT.pdf",
        help="also write a searchable PDF: every input's pages, in order, with the text invisible on top",
    )
    ocr.add_argument(
        "--tables",
        type=Path,
        metavar="DIR",
        help="also write the tables found: a CSV per table and an .xlsx per input with all of its tables",
    )
    ocr.set_defaults(handler=_cmd_ocr)


def _cmd_ocr(args: argparse.Namespace, settings: Settings, factory: EngineFactory) -> int:
    from cli.main import LOG_FORMAT
    from daemon.offline.batch import expand_paths, run_ocr
    from daemon.offline.searchable import RunPdf
    from daemon.offline.tables_out import TableFiles

    paths = expand_paths(args.paths)
    if not paths:
        log.warning("no images found in %s", ", ".join(map(str, args.paths)))
    pdf = RunPdf(paths, settings.engine) if args.pdf is not None and paths else None
    tables = TableFiles(args.tables) if args.tables is not None else None
    takers = [taker.add for taker in (pdf, tables) if taker is not None]

    def also(row: dict[str, Any]) -> None:
        for take in takers:
            take(row)

    with _output(args.jsonl) as out:
        failed = run_ocr(
            paths,
            out,
            settings.engine,
            workers=args.workers or 1,
            engine_factory=factory,
            progress=sys.stderr,
            log_format=LOG_FORMAT,
            also=also if takers else None,
        )
    log.info("%d images, %d failed", len(paths), failed)
    if tables is not None:
        log.info("tables: %d written to %s", tables.finish(), args.tables)
    if pdf is not None:
        written, left_out = pdf.write(args.pdf)
        log.info("searchable PDF %s: %d input(s), %d left out", args.pdf, written, left_out)
        failed += left_out
    return 1 if failed else 0


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """The JSONL destination: a UTF-8 file, or stdout (switched to UTF-8) when ``path`` is None."""
    if path is None:
        reconfigure = getattr(sys.stdout, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(encoding="utf-8")
        yield sys.stdout
        return
    make_dirs(path.parent)
    try:
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            yield out
    except OSError as exc:  # opening it, or a write the caller made (a full disk)
        raise DaemonError(f"cannot write {path}: {exc.strerror or exc}") from exc
