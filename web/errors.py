"""Every error the web returns is JSON: {"error": "<what went wrong>", "status": <code>}."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        response = exc.get_response()
        body = jsonify(error=exc.description or exc.name, status=exc.code)
        body.status_code = exc.code or 500
        for name in ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Allow",
                     "WWW-Authenticate"):
            if name in response.headers:
                body.headers[name] = response.headers[name]
        return body

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error")
        body = jsonify(error="internal error", status=500)
        body.status_code = 500
        return body
