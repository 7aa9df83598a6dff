"""Headers every answer of the API, the exports and the service endpoints carries.

``X-Content-Type-Options: nosniff`` on every answer (a browser never guesses a type, so an uploaded
file served as bytes stays bytes), and ``Cache-Control: no-store`` on what holds a team's data or
the service's state (``/api/...``, exports and images included, ``/healthz``, ``/metrics``): no
browser or proxy keeps a copy of them on disk.
"""

from __future__ import annotations

from flask import Flask, Response, request

NO_STORE_PREFIXES = ("/api/",)
NO_STORE_PATHS = frozenset({"/healthz", "/metrics"})


def init_app(app: Flask) -> None:
    """Add the headers to every answer of ``app`` (errors included)."""
    app.after_request(secure_headers)


def secure_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    path = request.path
    if path in NO_STORE_PATHS or path.startswith(NO_STORE_PREFIXES):
        response.headers["Cache-Control"] = "no-store"
    return response
