"""Request bodies: the JSON object a POST view reads."""

from __future__ import annotations

from typing import Any

from flask import abort, request

NOT_AN_OBJECT = "expected a JSON object body"


def json_body(description: str = NOT_AN_OBJECT) -> dict[str, Any]:
    """The request's JSON object; 400 with ``description`` when the body is not one (absent, not
    JSON, or JSON but no object)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description=description)
    return body
