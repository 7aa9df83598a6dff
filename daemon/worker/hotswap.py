"""Hot model swap: a worker's engine that follows the current model version without a restart.

:class:`SwappingEngine` implements ``daemon.ports.Engine`` by delegation. Before a call it looks
at the Redis key ``daemon.versions.registry.CURRENT_KEY`` (at most every ``check_seconds``); when the key
names another version it builds that version's engine here, in the worker process, and swaps it
in for the following calls. A call already running keeps the engine it started with, so no job
is lost or read twice. When the new version fails to load, the error is logged and the old
engine stays (the version is tried again after ``retry_seconds``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import redis

from config.settings import EngineSettings
from daemon.errors import DaemonError
from daemon.versions.registry import ModelRegistry, current_version, default_version
from engine.errors import EngineError
from engine.weights import ModelFiles

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
RETRY_SECONDS = 30.0

Builder = Callable[[EngineSettings, ModelFiles], Any]


def _build(settings: EngineSettings, files: ModelFiles) -> Any:
    from engine.pipeline import build_engine

    return build_engine(settings, files)


class SwappingEngine:
    """The engine of the current model version; see the module docstring."""

    def __init__(
        self,
        client: redis.Redis,
        registry: ModelRegistry,
        settings: EngineSettings,
        name: str,
        *,
        build: Builder = _build,
        check_seconds: float = CHECK_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.registry = registry
        self.settings = settings
        self.name = name
        self.build = build
        self.check_seconds = check_seconds
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._checked = clock()
        self._failed: dict[str, float] = {}  # version -> when it may be tried again
        self.version, self._engine = self._first()

    def _first(self) -> tuple[str, Any]:
        """The current version's engine; the configured packaged set if that one cannot load."""
        try:
            wanted = current_version(self.client, self.settings.model_set)
        except redis.RedisError as exc:
            log.warning("worker %s: cannot read the current model version (%s)", self.name, exc)
            wanted = default_version(self.settings.model_set)
        try:
            return wanted, self.build(self.settings, self.registry.files(wanted))
        except (EngineError, DaemonError, OSError) as exc:
            fallback = default_version(self.settings.model_set)
            if wanted == fallback:
                raise
            log.error("worker %s: model %s does not load (%s); using %s", self.name, wanted, exc, fallback)
            self._failed[wanted] = self.clock() + self.retry_seconds
            return fallback, self.build(self.settings, self.registry.files(fallback))

    @property
    def model_version(self) -> str:
        return self.version

    def engine(self) -> Any:
        """The engine for the next call (after a swap, if one is due)."""
        self._maybe_swap()
        return self._engine

    def ocr(self, source: Any, name: str | None = None) -> Any:
        return self.engine().ocr(source, name=name)

    def ocr_many(self, sources: Sequence[Any], names: Sequence[str | None] | None = None) -> list[Any]:
        return self.engine().ocr_many(sources, names)

    def open_document(self, source: Any, name: str | None = None) -> Any:
        return self.engine().open_document(source, name)

    def tuned(self, changes: Mapping[str, Any]) -> Any:
        """The current version's engine with a channel's settings (engine.pipeline.OcrEngine.tuned)."""
        return self.engine().tuned(changes)

    def read_settings(self) -> dict[str, Any]:
        return dict(self.engine().read_settings())

    def read_document(
        self, document: Any, batch: int = 4, skip: Collection[int] = frozenset()
    ) -> Iterator[tuple[int, Any]]:
        return self.engine().read_document(document, batch, skip)

    def _maybe_swap(self) -> None:
        now = self.clock()
        if now - self._checked < self.check_seconds:
            return
        with self._lock:
            if now - self._checked < self.check_seconds:
                return  # another thread just checked
            self._checked = now
            try:
                wanted = current_version(self.client, self.settings.model_set)
            except redis.RedisError as exc:
                log.debug("worker %s: model key unreadable (%s); keeping %s", self.name, exc, self.version)
                return
            if wanted == self.version or self._failed.get(wanted, 0.0) > now:
                return
            try:
                engine = self.build(self.settings, self.registry.files(wanted))
            except Exception as exc:  # noqa: BLE001 - any load failure keeps the old engine
                log.error(
                    "worker %s: cannot switch model %s -> %s (%s); keeping %s",
                    self.name,
                    self.version,
                    wanted,
                    exc,
                    self.version,
                )
                self._failed[wanted] = now + self.retry_seconds
                return
            log.info("worker %s: model %s -> %s", self.name, self.version, wanted)
            self._failed.pop(wanted, None)
            self.version, self._engine = wanted, engine
