"""Log in, refresh, log out; and ``require_auth``, which every other API view uses.

A request carries ``Authorization: Bearer <access token>``. The principal (user, team, what the
team may read) is put on ``flask.g.principal``.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import Blueprint, abort, g, jsonify, request
from werkzeug.exceptions import Unauthorized

from daemon.results.teams import ChannelScope, is_default_team
from web.accounts import User
from web.api_keys import ApiKeyError, looks_like_key
from web.bodies import json_body, json_value
from web.limits import (
    api_limit,
    keys_limit,
    limiter,
    login_address_key,
    login_limit,
    login_name_key,
    refresh_subject_key,
    refused_key,
    refused_limit,
)
from web.services import services
from web.tokens import TokenError, check_user

blueprint = Blueprint("auth", __name__, url_prefix="/api/v1/auth")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    """Who is asking, and which results they may see."""

    user: User
    claims: dict[str, Any]
    is_default_team: bool
    scope: ChannelScope
    rooms: list[str]

    @property
    def key_id(self) -> str | None:
        """The API key the request came with (None: a login's access token)."""
        key = self.claims.get("api_key")
        return str(key) if key else None


def principal_for(claims: dict[str, Any]) -> Principal:
    """Resolve a token's claims against the current accounts and team map."""
    svc = services()
    user = check_user(claims, svc.accounts.get(str(claims["sub"])))
    return _principal(user, claims)


def principal_for_key(token: str) -> Principal:
    """The owner of the API key ``token``, as the account is now; TokenError when the key is
    unknown, revoked or expired, or its owner is gone or disabled."""
    svc = services()
    try:
        key = svc.api_keys.authenticate(token)
    except ApiKeyError as exc:
        raise TokenError(str(exc)) from None
    user = svc.accounts.get(key.username)
    if user is None or user.disabled:
        raise TokenError("the API key's user no longer exists or is disabled")
    if not hmac.compare_digest(key.owner_stamp.encode(), user.stamp.encode()):
        raise TokenError("API key revoked: its account changed since it was made")
    return _principal(user, {"sub": user.username, "api_key": key.id})


def _principal(user: User, claims: dict[str, Any]) -> Principal:
    svc = services()
    is_default = is_default_team(user.team, svc.settings.teams.default_team, svc.accounts.first_team)
    return Principal(
        user, claims, is_default, svc.teams.scope_for(user.team, is_default), svc.teams.rooms_for(user.team, is_default)
    )


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        abort(401, description="missing bearer token (Authorization: Bearer <access token>)")
    return token.strip()


def require_auth(view: F) -> F:
    """401 unless the request has a valid access token; rate-limited per user."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            token = bearer_token()
            if looks_like_key(token):
                g.principal = principal_for_key(token)
            else:
                g.principal = principal_for(services().tokens.verify(token, "access"))
        except TokenError as exc:
            return refused(str(exc))
        except Unauthorized as exc:  # no bearer token at all
            return refused(exc.description or "missing bearer token")
        return limited(view)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def refused(reason: str) -> Any:
    """401, counted per client address: a flood of missing or bad tokens gets 429 like any other."""

    def refuse() -> Any:
        abort(401, description=reason)

    return limiter.shared_limit(refused_limit, scope="refused", key_func=refused_key)(refuse)()


def limited(view: F) -> F:
    from web.limits import user_key

    # One budget per user over the whole API (a plain limit would be per user *and endpoint*); a
    # key has a budget of its own, and all of a user's keys share web.keys_limit (50 keys are not
    # 50 budgets).
    per_key = limiter.shared_limit(api_limit, scope="api", key_func=user_key)(view)
    owner = limiter.shared_limit(keys_limit, scope="api-keys", key_func=owner_key, exempt_when=_not_a_key)
    return cast(F, owner(per_key))


def owner_key() -> str:
    return f"user:{g.principal.user.username}"


def _not_a_key() -> bool:
    principal = getattr(g, "principal", None)
    return principal is None or principal.key_id is None


def require_login(view: F) -> F:
    """401 unless the request has a login's access token: an API key is refused (403), as on every
    endpoint of account, key or model administration."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.principal.key_id is not None:
            abort(403, description="an API key cannot do this: log in (POST /api/v1/auth/login)")
        return view(*args, **kwargs)

    return require_auth(wrapper)  # type: ignore[return-value]


def require_admin(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.principal.key_id is not None:
            abort(403, description="an API key cannot do this: log in (POST /api/v1/auth/login)")
        if not g.principal.user.is_admin:
            abort(403, description="admins only")
        return view(*args, **kwargs)

    return require_auth(wrapper)  # type: ignore[return-value]


def require_operator(view: F) -> F:
    """403 unless the user is an operator (switches the model every worker uses, manages every
    team's accounts); a team admin is not one."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.principal.key_id is not None:
            abort(403, description="an API key cannot do this: log in (POST /api/v1/auth/login)")
        if not g.principal.user.is_operator:
            abort(403, description="operators only")
        return view(*args, **kwargs)

    return require_auth(wrapper)  # type: ignore[return-value]


@blueprint.post("/login")
@limiter.limit(login_limit, key_func=login_name_key)
@limiter.limit(login_limit, key_func=login_address_key)
def login() -> Any:
    body = json_body()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        abort(400, description="username and password (strings) are required")
    user = services().accounts.verify(username, password)
    if user is None:
        abort(401, description="wrong user name or password")
    return jsonify(services().tokens.issue(user))


@blueprint.post("/refresh")
@limiter.limit(login_limit, key_func=login_address_key)
@limiter.limit(login_limit, key_func=refresh_subject_key)  # per user too, whatever the address
def refresh() -> Any:
    body = json_body()
    token = body.get("refresh_token")
    if not isinstance(token, str):
        abort(400, description="refresh_token (string) is required")
    tokens = services().tokens
    try:
        claims = tokens.decode(token, "refresh")
        principal = principal_for(claims)  # a refused user's token stays unspent
        tokens.spend_refresh(claims)  # single use: one spent already revokes its whole login
    except TokenError as exc:
        abort(401, description=str(exc))
    return jsonify(tokens.rotate(claims, principal.user))


@blueprint.post("/logout")
def logout() -> Any:
    """End this login: its access token, and every token refreshed from the same login (so its
    sockets are cut too); the refresh token in the body is revoked as well.

    Idempotent: a well-signed, unexpired token whose login already ended elsewhere (a replayed
    refresh token, a password change, a logout in another request) is answered ok as well."""
    tokens = services().tokens
    try:
        claims = tokens.decode(bearer_token(), "access")
    except TokenError as exc:
        return refused(str(exc))
    except Unauthorized as exc:  # no bearer token at all
        return refused(exc.description or "missing bearer token")
    try:
        g.principal = principal_for(claims)  # counted in the user's API budget, like any request
    except TokenError:
        pass  # the account changed or went: its tokens are refused anyway
    return limited(_end_login)(claims)


def _end_login(claims: dict[str, Any]) -> Any:
    tokens = services().tokens
    tokens.revoke_family(claims)
    body = json_value()
    if isinstance(body, dict) and isinstance(body.get("refresh_token"), str):
        try:
            refresh_claims = tokens.verify(body["refresh_token"], "refresh")
        except TokenError:
            pass  # already unusable
        else:
            if refresh_claims["sub"] == claims["sub"]:  # nobody logs another user out
                tokens.revoke(refresh_claims)
    return jsonify(ok=True)


@blueprint.get("/me")
@require_auth
def me() -> Any:
    p: Principal = g.principal
    return jsonify(username=p.user.username, team=p.user.team, role=p.user.role)
