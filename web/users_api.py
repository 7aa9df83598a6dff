"""Accounts over the API, for admins (``teamocr user`` is the same on the command line).

``GET    /api/v1/users``          the accounts the caller manages
``POST   /api/v1/users``          ``{"username", "password", "team"?, "role"?}``: create one
``PATCH  /api/v1/users/<name>``   ``{"role"?, "disabled"?, "password"?}``: change one
``DELETE /api/v1/users/<name>``   remove one

A team admin manages the accounts of their own team and cannot grant the operator role nor touch
an operator's account; an operator manages every team's. Another team's user answers 404 exactly
like one that does not exist. Nobody disables, removes or changes the role of their own account
here (an admin locked out by a slip needs the command line). A password, role or state change
and a removal revoke the user's tokens at once; their sockets are cut by the next sweep
(web.sockets, within seconds).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, jsonify

from web.accounts import NAME, ROLES, AccountError, DuplicateUser, User
from web.auth import require_admin
from web.bodies import json_body
from web.services import services

blueprint = Blueprint("users", __name__, url_prefix="/api/v1/users")

CHANGES = ("role", "disabled", "password")


def user_json(user: User) -> dict[str, Any]:
    return {"username": user.username, "team": user.team, "role": user.role, "disabled": user.disabled}


def _caller() -> User:
    return g.principal.user


def _managed(name: str) -> User:
    """The account ``name`` if the caller manages it; 404 for an unknown or another team's user."""
    caller = _caller()
    user = services().accounts.get(name) if NAME.fullmatch(name) else None
    if user is None or not (caller.is_operator or user.team == caller.team):
        abort(404, description=f"no user {name!r}")
    return user


def _check_role(role: Any) -> str:
    if not isinstance(role, str) or role not in ROLES:
        abort(400, description=f"role must be one of {', '.join(ROLES)}")
    if role == "operator" and not _caller().is_operator:
        abort(403, description="only an operator can grant the operator role")
    return role


@blueprint.get("")
@require_admin
def list_users() -> Any:
    caller = _caller()
    users = services().accounts.users(None if caller.is_operator else caller.team)
    return jsonify(users=[user_json(user) for user in users])


@blueprint.post("")
@require_admin
def create_user() -> Any:
    caller = _caller()
    body = json_body()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        abort(400, description="username and password (strings) are required")
    team = body.get("team", caller.team)
    if not isinstance(team, str):
        abort(400, description="team must be a string")
    role = _check_role(body.get("role", "member"))
    if team != caller.team and not caller.is_operator:
        abort(403, description="a team admin creates accounts in their own team only")
    try:
        user = services().accounts.add_user(username, password, team, role=role)
    except DuplicateUser as exc:
        abort(409, description=str(exc))
    except AccountError as exc:
        abort(400, description=str(exc))
    return jsonify(user_json(user)), 201


@blueprint.patch("/<name>")
@require_admin
def change_user(name: str) -> Any:
    caller = _caller()
    user = _managed(name)
    body = json_body()
    changes = {key: body[key] for key in CHANGES if key in body}
    if not changes or set(body) - set(CHANGES):
        abort(400, description=f"expected one or more of {', '.join(CHANGES)} and nothing else")
    if "role" in changes:
        _check_role(changes["role"])
    if "disabled" in changes and not isinstance(changes["disabled"], bool):
        abort(400, description="disabled must be true or false")
    if "password" in changes and not isinstance(changes["password"], str):
        abort(400, description="password must be a string")
    if user.is_operator and not caller.is_operator:
        abort(403, description="only an operator can change an operator's account")
    if user.username == caller.username and (
        changes.get("disabled") is True or changes.get("role", user.role) != user.role
    ):
        abort(403, description="you cannot disable your own account or change your own role")
    accounts = services().accounts
    try:
        if "password" in changes:
            user = accounts.set_password(user.username, changes["password"])
        if "role" in changes and changes["role"] != user.role:
            user = accounts.set_role(user.username, changes["role"])
        if "disabled" in changes and changes["disabled"] != user.disabled:
            user = accounts.set_disabled(user.username, changes["disabled"])
    except AccountError as exc:  # a short password, or removed meanwhile
        abort(400, description=str(exc))
    return jsonify(user_json(user))


@blueprint.delete("/<name>")
@require_admin
def remove_user(name: str) -> Any:
    caller = _caller()
    user = _managed(name)
    if user.is_operator and not caller.is_operator:
        abort(403, description="only an operator can remove an operator's account")
    if user.username == caller.username:
        abort(403, description="you cannot remove your own account")
    try:
        services().accounts.remove(user.username)
    except AccountError:  # removed meanwhile
        abort(404, description=f"no user {name!r}")
    return "", 204
