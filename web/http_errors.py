"""HTTP errors as JSON: every error the web returns is {"error": "<what went wrong>", "status": <code>}."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify
from flask_limiter.errors import RateLimitExceeded
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from web.limits import refusal_headers

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        response = exc.get_response()
        body = jsonify(error=_message(exc), status=exc.code)
        body.status_code = exc.code or 500
        for name in ("Retry-After", "Allow", "WWW-Authenticate"):
            if name in response.headers:
                body.headers[name] = response.headers[name]
        if isinstance(exc, RateLimitExceeded):
            body.headers.update(refusal_headers())
        return body

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error")
        body = jsonify(error="internal error", status=500)
        body.status_code = 500
        return body


def _message(exc: HTTPException) -> str:
    """The description, said plainly where werkzeug's or flask-limiter's wording is unclear."""
    if isinstance(exc, RateLimitExceeded):  # its description is the bare limit ("3 per 1 minute")
        return f"too many requests (limit: {exc.description}); retry after Retry-After seconds"
    if isinstance(exc, RequestEntityTooLarge) and exc.description == RequestEntityTooLarge.description:
        return f"request body larger than {current_app.config.get('MAX_CONTENT_LENGTH')} bytes"
    return exc.description or exc.name
