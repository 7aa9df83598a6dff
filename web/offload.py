"""Where the web runs long calls: in gevent's thread pool when it is served by one event loop
(:mod:`cli.webserver`), in the calling thread otherwise.

Long means file copies, hashes, image codecs, password checks and the store's slow reads (a
search, an export's pages, the counts behind /metrics): work that leaves the interpreter lock
(SQLite does), so a thread of the pool does it while the loop serves other requests. Such a call
may use the pool's own result store (``Services.reads``), never the loop's (``Services.store``):
a greenlet waiting on a lock that a pool thread holds is woken late, seconds under load. It must
not touch Redis or the request (no ``services()``, no ``g``): those belong to the loop, so read
what the call needs before and pass it in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Offload:
    """``run(fn, *args)`` runs a long call; ``pause()`` lets other requests run (between the pages of
    a long read)."""

    run: Callable[..., Any] = _call
    pause: Callable[[], None] = _nothing


def _outcome(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    """(True, what ``fn(*args)`` returned) or (False, the exception it raised)."""
    try:
        return True, fn(*args)
    except Exception as exc:  # noqa: BLE001 - handed back to the caller, which raises it
        return False, exc


def _in_pool(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a thread of the gevent hub's pool. Its exception is raised here, in the
    caller; the pool would also print it to stderr as a failure, and a refusal (a changed file, an
    image that does not decode) is an answer, not a failure."""
    import gevent

    ok, value = gevent.get_hub().threadpool.apply(_outcome, (fn, args))
    if ok:
        return value
    raise value


def native_lock() -> contextlib.AbstractContextManager[Any]:
    """A reentrant lock of the operating system, even where gevent patched ``threading``: for what
    only the pool's threads share (a gevent lock that several native threads wait on can hang them)."""
    import gevent.monkey

    lock: contextlib.AbstractContextManager[Any] = gevent.monkey.get_original("_thread", "RLock")()
    return lock


def offload_for(async_mode: str) -> Offload:
    """The pool of the gevent hub for "gevent"; plain calls for "threading" (threads already share)."""
    if async_mode != "gevent":
        return Offload()
    import gevent

    return Offload(run=_in_pool, pause=lambda: gevent.sleep(0))
