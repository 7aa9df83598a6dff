"""Request bodies: the JSON a POST view (or a rate limiter's key function) reads, read under a cap.

Every JSON body the API takes is small (a name and a password, a token, one line of text), so no
more than :data:`MAX_JSON_BYTES` is ever read or parsed: a body that says it is larger is refused
with 413 before a byte is read, and one without a length stops being read at the cap.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

NOT_AN_OBJECT = "expected a JSON object body"
MAX_JSON_BYTES = 16 * 1024


def json_cap() -> int:
    """The most bytes a JSON body may have: 16 KiB, or the app's MAX_CONTENT_LENGTH when smaller."""
    app_cap = current_app.config.get("MAX_CONTENT_LENGTH")
    return MAX_JSON_BYTES if app_cap is None else min(int(app_cap), MAX_JSON_BYTES)


def json_value() -> Any:
    """The request's parsed JSON, or None when the body is absent, not JSON or not marked as JSON.

    413 when the body is over :func:`json_cap`: refused on its Content-Length before anything is
    read, else (no length given) as soon as reading passes the cap. Parsed once per request.
    """
    if not request.is_json:
        return None
    cap = json_cap()
    if request.content_length is not None and request.content_length > cap:
        abort(413, description=_too_large(cap))
    # Without a length the stream is cut at max_content_length (built on first use, with this
    # limit), silently: one byte past the cap tells a body over it from one that fits.
    request.max_content_length = cap + 1
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        abort(413, description=_too_large(cap))
    if len(data) > cap:
        abort(413, description=_too_large(cap))
    return request.get_json(silent=True)  # parses the data just read (cached), once per request


def json_body(description: str = NOT_AN_OBJECT) -> dict[str, Any]:
    """The request's JSON object; 400 with ``description`` when the body is not one (absent, not
    JSON, or JSON but no object); 413 when it is over the cap (:func:`json_value`)."""
    body = json_value()
    if not isinstance(body, dict):
        abort(400, description=description)
    return body


def _too_large(cap: int) -> str:
    return f"request body larger than {cap} bytes" + (" (the limit for JSON)" if cap == MAX_JSON_BYTES else "")
