"""Drawn ``/annotated`` images: kept per result in a bounded memory cache, drawn two at a time.

Drawing the boxes on a 12 MP photo (decode, draw, encode) takes a core for half a second, so a
member reloading the viewer, or many asking at once, could keep every core of the web busy. A
drawing is kept under its result's id, MD5 and boxes (least recently used dropped past
``web.annotated_cache_bytes``); at most :data:`AT_ONCE` are drawn at a time, and a request that
waits longer than ``wait_seconds`` for its turn is :class:`DrawingBusy` (503 with Retry-After).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask

AT_ONCE = 2
WAIT_SECONDS = 10.0
RETRY_AFTER = 5  # seconds a refused request is told to wait
EXTENSION = "teamocr.drawings"

Key = tuple[str, str, str]


class DrawingBusy(Exception):
    """Every drawing slot stayed taken for ``waited`` seconds."""

    def __init__(self, waited: float, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(f"{AT_ONCE} annotated images are being drawn; none finished within {waited:g} s")
        self.retry_after = retry_after


class Drawings:
    """The cache of drawn images (``budget_bytes`` in all) and the slots that bound drawing.

    The locks are the threading module's: under gevent (patched before the web is imported) they
    are the event loop's, and a request waiting for a slot lets the others run."""

    def __init__(self, budget_bytes: int, at_once: int = AT_ONCE, wait_seconds: float = WAIT_SECONDS) -> None:
        if budget_bytes < 0 or at_once < 1:
            raise ValueError(f"a drawing cache needs budget_bytes >= 0 and at_once >= 1, got {budget_bytes}, {at_once}")
        self.budget_bytes = budget_bytes
        self.wait_seconds = wait_seconds
        self.drawn = 0  # drawings made (not served from the cache)
        self._slots = threading.BoundedSemaphore(at_once)
        self._lock = threading.Lock()
        self._cache: OrderedDict[Key, bytes] = OrderedDict()
        self._size = 0

    def image(self, key: Key, draw: Callable[[], bytes]) -> bytes:
        """The cached image of ``key``, else ``draw()`` in a slot (and kept); DrawingBusy when no slot
        freed up in time."""
        cached = self.cached(key)
        if cached is not None:
            return cached
        with self.slot():
            cached = self.cached(key)  # drawn by a request that held the slot before us
            if cached is not None:
                return cached
            png = draw()
            self.drawn += 1
            self._keep(key, png)
            return png

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """One of the drawing slots, waited for at most ``wait_seconds``."""
        if not self._slots.acquire(timeout=self.wait_seconds):
            raise DrawingBusy(self.wait_seconds)
        try:
            yield
        finally:
            self._slots.release()

    def cached(self, key: Key) -> bytes | None:
        with self._lock:
            png = self._cache.get(key)
            if png is not None:
                self._cache.move_to_end(key)
            return png

    def _keep(self, key: Key, png: bytes) -> None:
        if len(png) > self.budget_bytes:
            return
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = png
            self._size += len(png)
            while self._size > self.budget_bytes:
                _, dropped = self._cache.popitem(last=False)
                self._size -= len(dropped)

    @property
    def size(self) -> int:
        """Bytes kept now."""
        return self._size


def drawing_key(result_id: str, md5: str, lines: list[dict[str, Any]]) -> Key:
    """What a drawing depends on: the result, the bytes drawn on (MD5), and its boxes (a correction
    changes only text, so it keeps the drawing)."""
    boxes = json.dumps([line.get("points") for line in lines], separators=(",", ":"), default=str)
    return result_id, md5, hashlib.sha256(boxes.encode()).hexdigest()


def init_app(app: Flask, budget_bytes: int) -> Drawings:
    """Give ``app`` its drawings (once; a second call returns the first)."""
    return app.extensions.setdefault(EXTENSION, Drawings(budget_bytes))


def drawings(app: Flask) -> Drawings:
    """The drawings of ``app``."""
    found: Drawings = app.extensions[EXTENSION]
    return found
