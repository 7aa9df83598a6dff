"""API keys over the API (``teamocr key`` is the same on the command line); a login only, never a key.

``GET    /api/v1/keys``        the caller's keys (an admin: every key of their team)
``POST   /api/v1/keys``        ``{"name", "expires_in_days"?}``: a new key for the caller, shown once
``DELETE /api/v1/keys/<id>``   revoke one of the caller's keys (an admin: any of their team's)

Another team's key, or a member's key for another member, answers 404 like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, jsonify

from web.accounts import User
from web.api_keys import ApiKey, ApiKeyError
from web.auth import require_login
from web.bodies import json_body
from web.services import services

blueprint = Blueprint("keys", __name__, url_prefix="/api/v1/keys")


def _caller() -> User:
    return g.principal.user


def _visible(key: ApiKey | None) -> bool:
    """Whether the caller may see and revoke ``key``: their own, or (an admin) their team's."""
    if key is None or key.revoked_at:
        return False
    caller = _caller()
    if key.username == caller.username:
        return True
    owner = services().accounts.get(key.username)
    return caller.is_admin and owner is not None and owner.team == caller.team


@blueprint.get("")
@require_login
def list_keys() -> Any:
    caller = _caller()
    store = services().api_keys
    if caller.is_admin:
        keys = store.list(usernames=[user.username for user in services().accounts.users(caller.team)])
    else:
        keys = store.list(username=caller.username)
    return jsonify(items=[key.to_dict() for key in keys])


@blueprint.post("")
@require_login
def create_key() -> Any:
    body = json_body()
    name, days = body.get("name"), body.get("expires_in_days")
    if not isinstance(name, str):
        abort(400, description="name (a string) is required")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int | float)):
        abort(400, description="expires_in_days must be a number of days")
    try:
        key, secret = services().api_keys.create(_caller().username, name, days, _caller().stamp)
    except ApiKeyError as exc:
        abort(400, description=str(exc))
    return jsonify({**key.to_dict(), "key": secret}), 201


@blueprint.delete("/<key_id>")
@require_login
def revoke_key(key_id: str) -> Any:
    store = services().api_keys
    if not _visible(store.get(key_id)):
        abort(404, description=f"no API key {key_id!r}")
    return jsonify(store.revoke(key_id).to_dict())
