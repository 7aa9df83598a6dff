"""A document job (a PDF, a multi-page TIFF) read page by page, resumable and showing its progress.

Each page read is kept in Redis as it comes (``teamocr:pages:<result id>``, a hash of page number
-> the page's JSON, or its error), so a worker killed mid-document loses nothing: the worker that
takes the job over reads only the pages not kept, and the result is assembled from the kept pages
once, in page order (no page lost, none repeated). The hash goes when the job's outcome is recorded
(:func:`forget`), or after :data:`KEEP_SECONDS` if no one finishes the job.

Progress goes to the records stream as ``processing`` records carrying ``pages_done`` and
``page_count`` (at most one each :data:`PROGRESS_EVERY` seconds, and one when the last page is in),
which the recorder announces to the team's feed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from daemon.ports import DocumentReader
from daemon.queue.streams import Job, add_record
from daemon.records import ProcessingMessage
from engine.errors import EngineError, ImageError
from engine.types import DocumentResult, PageResult

log = logging.getLogger(__name__)

KEEP_SECONDS = 7 * 86400.0  # a kept page outlives a dead worker this long at most
PROGRESS_EVERY = 1.0  # seconds between progress records of one document, at least


def pages_key(result_id: str) -> str:
    return f"teamocr:pages:{result_id}"


def forget(pipe: redis.client.Pipeline, result_id: str) -> None:
    """Drop the pages kept for ``result_id`` (its outcome is being recorded in the same pipeline)."""
    pipe.delete(pages_key(result_id))


class DocumentJob:
    """Reads one document job; :meth:`read` returns its :class:`DocumentResult`."""

    def __init__(
        self,
        client: redis.Redis,
        engine: DocumentReader,
        worker: str,
        batch: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.engine = engine
        self.worker = worker
        self.batch = max(1, batch)
        self.clock = clock

    def read(self, job: Job, document: Any, keep: Callable[[], None] = lambda: None) -> DocumentResult:
        """Every page of ``document`` (an ``engine.documents.Document``), those kept by an earlier
        try taken as they are; ``keep`` is called after each page (the worker claims its jobs again,
        so no one takes over a document still being read). Raises what the engine raised for
        anything but a bad page (the job is tried again, from the first page not kept), and
        ImageError when no page could be read."""
        key = pages_key(job.id)
        kept = {int(number): json.loads(text) for number, text in self.client.hgetall(key).items()}
        if kept:
            log.info("%s: resuming with %d of %d page(s) already read", job.path, len(kept), document.read_count)
        self._progress(job, len(kept), document.page_count)
        last = self.clock()
        for number, outcome in self.engine.read_document(document, self.batch, frozenset(kept)):
            if isinstance(outcome, Exception) and not isinstance(outcome, EngineError):
                raise outcome
            kept[number] = _kept_page(outcome)
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(key, str(number), json.dumps(kept[number], ensure_ascii=False))
            pipe.expire(key, int(KEEP_SECONDS))
            pipe.execute()
            keep()
            if self.clock() - last >= PROGRESS_EVERY or len(kept) >= document.read_count:
                self._progress(job, len(kept), document.page_count)
                last = self.clock()
        return _assemble(job.filename, kept, document.read_count, document.page_count)

    def _progress(self, job: Job, done: int, count: int) -> None:
        add_record(
            self.client,
            ProcessingMessage(
                type="processing",
                id=job.id,
                attempts=job.attempt + 1,
                worker=self.worker,
                pages_done=done,
                page_count=count,
            ),
        )


def _kept_page(outcome: Any) -> dict[str, Any]:
    if isinstance(outcome, EngineError):
        return {"error": getattr(outcome, "reason", None) or str(outcome)}
    page: dict[str, Any] = outcome.to_dict()
    return page


def _assemble(name: str, kept: dict[int, dict[str, Any]], read_count: int, page_count: int) -> DocumentResult:
    """The document from its kept pages 1..``read_count``; ImageError when none could be read."""
    pages: list[PageResult | None] = []
    errors: dict[int, str] = {}
    for number in range(1, read_count + 1):
        page = kept.get(number, {"error": "not read"})
        if "error" in page:
            errors[number] = str(page["error"])
            pages.append(None)
        else:
            pages.append(PageResult.from_dict(page))
    if errors and len(errors) == read_count:
        raise ImageError(name, errors[min(errors)])
    return DocumentResult(tuple(pages), errors, page_count)
