"""The served team web: the team web's app bound to host:port, in a process of its own.

:mod:`cli.webserver` (``python -m cli.webserver``) is that process's entry: ``teamocr run`` starts it
beside the daemon (and restarts it if it dies); ``teamocr web`` becomes it. It reads the settings
and sets up logging, then calls :func:`serve`.

With ``web.async_mode = "gevent"`` (the default) the web is one cooperative event loop: every
request and socket is a greenlet, and a request waiting on Redis or the network gives the loop to
the next one at once. Threads would instead queue for the interpreter lock behind each other at
every Redis round trip, which under load put the API's p99 at 4-5x its median. gevent must patch
the standard library before anything opens a socket or starts a thread, hence a process of its
own, apart from the daemon's watcher and recorder threads.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

# Exit codes: 2 says "do not restart me" (bad settings, the port taken) to ``teamocr run``.
EXIT_CONFIG = 2

if TYPE_CHECKING:
    import logging

    from config.settings import Settings


def serve(settings: Settings, follow_parent: bool = False) -> int:
    """Serve the web on host:port until stopped; :data:`EXIT_CONFIG` when it cannot (no Redis URL,
    the port taken)."""
    import logging
    import os

    from daemon.service import follow_parent_of
    from web.app import create_app

    log = logging.getLogger("web.server")
    if not settings.redis_url:
        log.error("the web needs redis_url (TEAMOCR_REDIS_URL); `teamocr run` passes its embedded one")
        return EXIT_CONFIG
    mode = settings.web.async_mode
    app, _socketio = create_app(settings, redis_url=settings.redis_url, async_mode=mode)
    try:
        server = _listen(app, settings.host, settings.port, mode, log)
    except OSError as exc:
        log.error("cannot serve the web on %s:%d: %s", settings.host, settings.port, exc.strerror or exc)
        return EXIT_CONFIG
    if follow_parent:
        follow_parent_of(lambda: os._exit(0), "web")
    log.info("serving the team web on %s:%d (%s)", settings.host, settings.port, mode)
    print(f"teamocr web: http://{settings.host}:{settings.port}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def _listen(app: Any, host: str, port: int, mode: str, log: logging.Logger) -> Any:
    """A server bound to host:port (so that a taken port fails here, before we say we serve)."""
    if mode == "gevent":
        from gevent import pywsgi

        server = pywsgi.WSGIServer((host, port), app, log=None, error_log=log)
        server.init_socket()
        return server
    from werkzeug.serving import make_server

    return make_server(host, port, app, threaded=True)
