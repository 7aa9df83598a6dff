"""Read ahead: an iterator's items made in a thread, at most ``depth`` of them waiting.

A document's pages are rendered (PDFium, OpenCV's TIFF decoder: native code that releases the GIL)
while the pages before them are detected and recognised (ONNX Runtime's or torch's intra-op
threads), so rendering page k+1 overlaps reading page k instead of following it.

The bound is the point: the maker thread puts each item in a queue of ``depth`` slots and waits
for a free one, so at most ``depth`` finished items wait, plus the one it is making; a 500-page
PDF is never in memory. Closing the iterator early (a consumer that stops, or fails) stops the
maker and waits for it: no thread outlives the iteration, and the source iterator is closed in
the thread that ran it (a PDF's ``finally`` closes the document there).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.05  # how often a waiting maker looks whether the consumer has gone


class _End:
    """The maker's last item: the source ran out (``error`` None) or raised ``error``."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _Maker(Generic[T]):
    """The thread that drains ``source`` into ``slots``."""

    def __init__(self, source: Iterator[T], slots: queue.Queue[T | _End], name: str) -> None:
        self.source = source
        self.slots = slots
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _put(self, item: T | _End) -> bool:
        """Wait for a free slot; False when the consumer has gone meanwhile."""
        while not self.stopping.is_set():
            try:
                self.slots.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self.source:
                put = self._put(item)
                del item  # not held while the next one is made: the bound counts it in its slot
                if not put:
                    return
            self._put(_End())
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(_End(exc))
        finally:
            close = getattr(self.source, "close", None)
            if close is not None:
                close()


def prefetch(source: Iterator[T], depth: int, name: str = "prefetch") -> Iterator[T]:
    """The items of ``source`` in order, made ahead in a thread named ``name``, at most ``depth``
    finished ones waiting (``depth`` 0: no thread, ``source`` itself). An exception ``source``
    raises is raised here, at the item where it happened."""
    if depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    if depth == 0:
        yield from source
        return
    slots: queue.Queue[T | _End] = queue.Queue(maxsize=depth)
    maker = _Maker(source, slots, name)
    maker.thread.start()
    try:
        while True:
            item = slots.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
            del item  # the consumer holds the item, this frame does not
    finally:
        maker.stopping.set()
        maker.thread.join()
