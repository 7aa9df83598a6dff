"""Where the web runs long calls: in gevent's thread pool when it is served by one event loop
(:mod:`cli.webserver`), in the calling thread otherwise.

Long means file copies, hashes, image codecs and password checks: work that leaves the
interpreter lock, so a thread of the pool does it while the loop serves other requests. Such a
call must not touch Redis, the store or the request: those belong to the loop.
"""

from __future__ import annotations

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


def offload_for(async_mode: str) -> Offload:
    """The pool of the gevent hub for "gevent"; plain calls for "threading" (threads already share)."""
    if async_mode != "gevent":
        return Offload()
    import gevent

    return Offload(run=lambda fn, *args: gevent.get_hub().threadpool.apply(fn, args), pause=lambda: gevent.sleep(0))
