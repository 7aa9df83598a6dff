"""Rate limits (flask-limiter, counters in the same Redis): login per (user name, client address)
and per client address, token refresh per user and per address, the API per user. A refusal is
429 with Retry-After.

A client address is the one the WSGI server saw, or the one the trusted proxies forwarded
(``web.trusted_proxies``, applied in :func:`web.app.create_app`); an IPv6 address counts as its
/64, the block one subscriber gets, so a new address from the same block is no new budget.

The X-RateLimit-* and Retry-After headers go on refusals only (:func:`refusal_headers`): on every
answered request they cost a second Redis round trip, a fifth of the API's time under load."""

from __future__ import annotations

import ipaddress
import time

from flask import Flask, g
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from config.settings import WebSettings
from web.bodies import json_value
from web.services import services

MAX_KEY_NAME = 64  # valid names have at most 64 characters; a huge name must not become a huge Redis key
IPV6_BLOCK = 64


def client_address() -> str:
    """The address a request is counted under: IPv4 as is, IPv6 as its /64, IPv4-mapped IPv6 as IPv4."""
    raw = get_remote_address()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:  # not an address (a Unix socket's peer, a test's name): as given, capped
        return raw[:MAX_KEY_NAME]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        block = int(address) >> (128 - IPV6_BLOCK) << (128 - IPV6_BLOCK)
        return str(ipaddress.IPv6Network((block, IPV6_BLOCK)))
    return str(address)


limiter = Limiter(key_func=client_address, headers_enabled=False, strategy="moving-window")


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
    app.config["TEAMOCR_KEYS_LIMIT"] = settings.keys_limit
    app.config["TEAMOCR_REFUSED_LIMIT"] = settings.refused_limit
    limiter.init_app(app)


def login_limit() -> str:
    from flask import current_app

    return str(current_app.config["TEAMOCR_LOGIN_LIMIT"])


def api_limit() -> str:
    from flask import current_app

    return str(current_app.config["TEAMOCR_API_LIMIT"])


def keys_limit() -> str:
    from flask import current_app

    return str(current_app.config["TEAMOCR_KEYS_LIMIT"])


def refused_limit() -> str:
    from flask import current_app

    return str(current_app.config["TEAMOCR_REFUSED_LIMIT"])


def refused_key() -> str:
    return f"refused-addr:{client_address()}"


def _body_string(field: str) -> str:
    """A string field of the (capped, :func:`web.bodies.json_value`) JSON body, else ""."""
    body = json_value()
    value = body.get(field) if isinstance(body, dict) else None
    return value if isinstance(value, str) else ""


def login_name_key() -> str:
    """Login attempts per (user name, address): attempts from one address cannot lock the name out
    for everyone else (the address has its own limit besides, :func:`login_address_key`)."""
    return f"login-user:{_body_string('username')[:MAX_KEY_NAME]}/addr:{client_address()}"


def login_address_key() -> str:
    return f"login-addr:{client_address()}"


def refresh_subject_key() -> str:
    """Refreshes per user: the subject of the sent refresh token when its signature holds (so no
    one can spend another user's budget with a forged token), else per address."""
    subject = refresh_subject(_body_string("refresh_token"))
    return f"refresh-user:{subject[:MAX_KEY_NAME]}" if subject is not None else f"refresh-addr:{client_address()}"


def refresh_subject(token: str) -> str | None:
    """The subject of a validly signed, unexpired refresh token, else None.

    Only the signature and times are checked, not revocation: a spent token counts against its
    user like a fresh one, and the view does the full check."""
    return services().tokens.subject_of(token, "refresh") if token else None


def user_key() -> str:
    principal = getattr(g, "principal", None)
    if principal is None:
        return f"addr:{client_address()}"
    key = principal.claims.get("api_key")  # a script's key has a budget of its own
    return f"key:{key}" if key else f"user:{principal.user.username}"
