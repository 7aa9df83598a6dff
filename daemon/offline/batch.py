"""Batch OCR: expand files and folders, OCR each image and each page of a document, write one JSON object per line.

The engine is built by a factory (``engine.pipeline.build_engine`` unless one is passed in),
once per process: in this process, or once in each worker of a spawn pool.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TextIO

from config.settings import EngineSettings
from daemon.errors import EngineStartError
from daemon.intake.filters import is_document_name, is_image_name
from daemon.names import shown_name
from daemon.offline.progress import ProgressBar
from daemon.ports import DocumentReader, Engine, EngineFactory

log = logging.getLogger(__name__)

BATCH = 4  # images per engine batch in one process (as a daemon worker's default batch_size)


def build_default_engine(settings: EngineSettings) -> Engine:
    """Build the real engine; imported here so the command line starts without loading models."""
    from engine.pipeline import build_engine

    return build_engine(settings)


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files as given; folders walked recursively for images and PDFs, sorted, hidden entries skipped.

    Paths that do not exist are kept, so that the run reports them as failed rows.
    """
    found: list[str] = []
    for path in (os.fspath(p) for p in paths):
        if os.path.isdir(path):
            found.extend(sorted(_walk_images(path)))
        else:
            found.append(path)
    return found


def _walk_images(folder: str) -> Iterator[str]:
    def report(exc: OSError) -> None:
        log.warning("cannot read folder %s: %s", exc.filename, exc.strerror or exc)

    for dirpath, dirnames, filenames in os.walk(folder, onerror=report):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        yield from (os.path.join(dirpath, f) for f in filenames if is_image_name(f) or is_document_name(f))


def ocr_files(engine: Engine, paths: Sequence[str]) -> list[dict[str, Any]]:
    """OCR ``paths`` into result rows, in order: images as engine batches (``ocr_many``), and each
    document (a PDF or a multi-page TIFF, by content) as one row per page (:func:`document_rows`).
    A bad file gives ``{"image", "error", "lines": []}``."""
    rows: list[dict[str, Any]] = []
    images: list[str] = []
    for path in paths:
        if is_document(path):
            rows.extend(_image_rows(engine, images))
            images = []
            rows.extend(document_rows(engine, path))
        else:
            images.append(path)
    rows.extend(_image_rows(engine, images))
    return rows


def is_document(path: str) -> bool:
    """Whether the file's first bytes say PDF or TIFF (a TIFF may still be a one-page image)."""
    from engine.documents import document_kind

    try:
        with open(path, "rb") as handle:
            return document_kind(handle.read(1024)) is not None
    except OSError:
        return False  # read as an image, whose row says what is wrong


def document_rows(engine: Engine, path: str) -> list[dict[str, Any]]:
    """One row per page of the document at ``path``: ``"image": "<path>#page=K"``, ``"page"``,
    ``"page_count"`` and the fields of an image row (a bad page: its ``"error"``). A document over
    ``engine.max_pages`` ends with a row of its own saying how much was read."""
    from engine.errors import EngineError

    if not isinstance(engine, DocumentReader):
        return [{"image": shown_name(path), "error": "this engine reads images only, not documents", "lines": []}]
    shown = shown_name(path)
    try:
        document = engine.open_document(path, shown)
    except (EngineError, OSError) as exc:
        log.warning("%s: %s", shown, _cause(exc))
        return [{"image": shown, "error": _cause(exc), "lines": []}]
    if document is None:  # a TIFF of one page: an image
        return _image_rows(engine, [path])
    rows = []
    start = time.perf_counter()
    for number, outcome in engine.read_document(document, BATCH):
        row: dict[str, Any] = {"image": f"{shown}#page={number}", "page": number, "page_count": document.page_count}
        if isinstance(outcome, (EngineError, OSError)):
            log.warning("%s page %d: %s", shown, number, _cause(outcome))
            row.update(error=_cause(outcome), lines=[])
        elif isinstance(outcome, Exception):
            raise outcome
        else:
            row.update(outcome.to_dict())
        row["seconds"] = round(time.perf_counter() - start, 4)
        start = time.perf_counter()
        rows.append(row)
    if document.truncated:
        why = f"has {document.page_count} pages; only the first {document.read_count} were read (engine.max_pages)"
        log.warning("%s: %s", shown, why)
        rows.append({"image": shown, "error": why, "lines": [], "page_count": document.page_count})
    return rows


def _image_rows(engine: Engine, paths: Sequence[str]) -> list[dict[str, Any]]:
    """Images as one engine batch (``ocr_many``); ``seconds`` is the batch's time shared out evenly."""
    from engine.errors import EngineError

    if not paths:
        return []
    start = time.perf_counter()
    shown = [shown_name(path) for path in paths]  # what rows and errors name: never undecodable bytes
    outcomes = engine.ocr_many(list(paths), shown)
    share = round((time.perf_counter() - start) / max(1, len(paths)), 4)
    rows = []
    for path, outcome in zip(shown, outcomes):
        if isinstance(outcome, (EngineError, OSError)):
            log.warning("%s: %s", path, _cause(outcome))
            row: dict[str, Any] = {"image": path, "error": _cause(outcome), "lines": []}
        elif isinstance(outcome, Exception):
            raise outcome
        else:
            row = {"image": path, **outcome.to_dict()}
        row["seconds"] = share
        rows.append(row)
    return rows


def _cause(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)  # engine.errors.ImageError keeps the bare cause here
    if isinstance(reason, str) and reason:
        return reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def split_threads(settings: EngineSettings, workers: int) -> EngineSettings:
    """Share the thread budget (``threads``, 0 = all cores) between ``workers`` processes."""
    if workers <= 1:
        return settings
    total = settings.threads or os.cpu_count() or 1
    return dataclasses.replace(settings, threads=max(1, total // workers))


def run_ocr(
    paths: Sequence[str],
    out: TextIO,
    settings: EngineSettings | None = None,
    *,
    workers: int = 1,
    engine_factory: EngineFactory = build_default_engine,
    progress: TextIO | None = None,
    log_format: str = logging.BASIC_FORMAT,
    also: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """OCR ``paths`` in order, writing one JSON line per image to ``out``; return the failures.

    ``workers`` > 1 uses a spawn pool whose processes each build one engine (the factory must
    then be picklable, i.e. a module-level function) and log with ``log_format``. ``progress``
    gets a bar when it is a TTY; ``also`` is given each row as well (``teamocr ocr --pdf``).
    Raises EngineStartError when the engine cannot be built.
    """
    if workers < 1:
        raise ValueError(f"workers must be 1 or more, got {workers}")
    if not paths:
        return 0
    settings = settings or EngineSettings()
    workers = min(workers, len(paths))
    bar = ProgressBar(len(paths), progress) if progress is not None else None
    failed = 0
    try:
        with _rows(paths, settings, workers, engine_factory, log_format) as rows:
            for done, row in enumerate(rows, 1):
                failed += "error" in row
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
                if also is not None:
                    also(row)
                if bar:
                    bar.update(min(done, len(paths)), failed)  # a document's pages are rows too
    finally:
        if bar:
            bar.close()
    return failed


@contextlib.contextmanager
def _rows(
    paths: Sequence[str],
    settings: EngineSettings,
    workers: int,
    factory: EngineFactory,
    log_format: str,
) -> Iterator[Iterator[dict[str, Any]]]:
    if workers == 1:
        engine = _start_engine(factory, settings)
        batches = (paths[i : i + BATCH] for i in range(0, len(paths), BATCH))
        yield (row for batch in batches for row in ocr_files(engine, batch))
        return
    context = multiprocessing.get_context("spawn")  # fork would copy threads and model state
    initargs = (factory, split_threads(settings, workers), logging.getLogger().getEffectiveLevel(), log_format)
    pool = context.Pool(workers, initializer=_init_worker, initargs=initargs)
    try:
        yield (row for rows in pool.imap(_ocr_in_worker, paths) for row in rows)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _start_engine(factory: EngineFactory, settings: EngineSettings) -> Engine:
    from engine.errors import EngineError

    try:
        return factory(settings)
    except (EngineError, OSError, ImportError) as exc:  # ImportError: a missing backend package
        raise EngineStartError(f"{type(exc).__name__}: {exc}") from exc


# Per worker process state, set once by the pool initializer.
_worker_engine: Engine | None = None
_worker_error: str | None = None


def _init_worker(factory: EngineFactory, settings: EngineSettings, log_level: int, log_format: str) -> None:
    global _worker_engine, _worker_error
    logging.basicConfig(level=log_level, format=log_format)
    try:
        _worker_engine = factory(settings)
    except Exception as exc:  # noqa: BLE001 - a raising initializer makes Pool respawn it forever
        _worker_error = f"{type(exc).__name__}: {exc}"


def _ocr_in_worker(path: str) -> list[dict[str, Any]]:
    if _worker_engine is None:
        raise EngineStartError(_worker_error or "the worker process has no engine")
    return ocr_files(_worker_engine, [path])
