"""Rate limits (flask-limiter, counters in the same Redis): login per user name and per client
address, the API per user. A refusal is 429 with Retry-After.

The X-RateLimit-* and Retry-After headers go on refusals only (:func:`refusal_headers`): on every
answered request they cost a second Redis round trip, a fifth of the API's time under load."""

from __future__ import annotations

import time

from flask import Flask, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from config.settings import WebSettings

limiter = Limiter(key_func=get_remote_address, headers_enabled=False, strategy="moving-window")


def refusal_headers() -> dict[str, str]:
    """Retry-After (whole seconds, at least 1) and X-RateLimit-* of the limit this request broke."""
    current = limiter.current_limit
    if current is None:
        return {"Retry-After": "1"}
    reset_at = current.reset_at
    return {
        "Retry-After": str(max(1, int(reset_at - time.time()))),
        "X-RateLimit-Limit": str(current.limit.amount),
        "X-RateLimit-Remaining": str(current.remaining),
        "X-RateLimit-Reset": str(reset_at),
    }


def storage_uri(redis_url: str) -> str:
    """The limits library spells a Unix-socket Redis as redis+unix://."""
    return "redis+unix://" + redis_url[len("unix://") :] if redis_url.startswith("unix://") else redis_url


def init_app(app: Flask, redis_url: str, settings: WebSettings) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = storage_uri(redis_url)
    app.config["RATELIMIT_KEY_PREFIX"] = "teamocr-limits"
    app.config["TEAMOCR_LOGIN_LIMIT"] = settings.login_limit
    app.config["TEAMOCR_API_LIMIT"] = settings.api_limit
    app.config["TEAMOCR_REFUSED_LIMIT"] = settings.refused_limit
    limiter.init_app(app)


def login_limit() -> str:
    from flask import current_app

    return str(current_app.config["TEAMOCR_LOGIN_LIMIT"])


def api_limit() -> str:
    from flask import current_app

    return str(current_app.config["TEAMOCR_API_LIMIT"])


def refused_limit() -> str:
    from flask import current_app

    return str(current_app.config["TEAMOCR_REFUSED_LIMIT"])


def refused_key() -> str:
    return f"refused-addr:{get_remote_address()}"


def login_name_key() -> str:
    body = request.get_json(silent=True) or {}
    name = body.get("username") if isinstance(body, dict) else None
    # Capped: valid names have at most 64 characters, and a huge name must not become a huge Redis key.
    return f"login-user:{name[:64] if isinstance(name, str) else ''}"


def login_address_key() -> str:
    return f"login-addr:{get_remote_address()}"


def user_key() -> str:
    principal = getattr(g, "principal", None)
    return f"user:{principal.user.username}" if principal is not None else f"addr:{get_remote_address()}"
