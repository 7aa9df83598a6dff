"""JWT access and refresh tokens (PyJWT), with revocation in Redis.

Every token names its type ("access" or "refresh"), issuer, audience, subject, team and role,
and carries iat/nbf/exp and a unique jti. Verification accepts only the configured algorithm
(so "none" and any other algorithm are refused), checks audience, issuer and times, and refuses
a token whose jti was revoked (logout).

A login starts a *family* (``fam``, with the login time ``auth_time``): every token refreshed from
it belongs to it. A refresh token is single-use; presenting one already spent means a copy of it
is in other hands, so the whole family (every access and refresh token of that login) is revoked.
No token of a family lives past ``auth_time + web.session_max_age``: then the user logs in again.
Tokens also carry the account's ``stamp`` (web.accounts), which a password, role or state change
replaces, so :func:`check_user` refuses every token the user held before.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import redis

from config.settings import Settings, WebSettings
from web.accounts import User

log = logging.getLogger(__name__)

REVOKED = "teamocr:revoked:"
FAMILY_REVOKED = "teamocr:revoked-family:"
SPENT = "spent"  # the value of a refresh token's revocation once it was traded for a new pair
SECRET_FILE = "jwt_secret"


class TokenError(Exception):
    """A token that must be refused (401); the message says why."""


def load_secret(settings: Settings) -> str:
    """The configured signing secret, else one generated once into the data folder (mode 0600)."""
    if settings.web.jwt_secret:
        if len(settings.web.jwt_secret) < 32:
            raise ValueError("web.jwt_secret must have at least 32 characters (or leave it empty to generate one)")
        return settings.web.jwt_secret
    path = settings.data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(48))
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < 32:
        raise ValueError(f"{path}: the JWT secret is shorter than 32 characters")
    return secret


class TokenService:
    """Issues, verifies and revokes tokens."""

    def __init__(self, settings: WebSettings, secret: str, client: redis.Redis) -> None:
        if settings.jwt_algorithm not in ("HS256", "HS384", "HS512"):
            raise ValueError(f"web.jwt_algorithm must be HS256, HS384 or HS512, got {settings.jwt_algorithm!r}")
        self.settings = settings
        self.secret = secret
        self.client = client

    def issue(self, user: User) -> dict[str, Any]:
        """A fresh access + refresh token pair for ``user``: a new login, so a new family."""
        return self._pair(user, uuid.uuid4().hex, int(time.time()))

    def rotate(self, claims: dict[str, Any], user: User) -> dict[str, Any]:
        """The next pair of the login whose (spent) refresh token had ``claims``."""
        family = claims.get("fam")
        return self._pair(user, str(family) if family else uuid.uuid4().hex, _auth_time(claims))

    def _pair(self, user: User, family: str, auth_time: int) -> dict[str, Any]:
        ends = auth_time + self.settings.session_max_age
        now = int(time.time())
        return {
            "access_token": self._encode(user, "access", self.settings.access_ttl, family, auth_time, ends),
            "refresh_token": self._encode(user, "refresh", self.settings.refresh_ttl, family, auth_time, ends),
            "expires_in": min(self.settings.access_ttl, ends - now),
            "token_type": "Bearer",
        }

    def _encode(self, user: User, kind: str, ttl: int, family: str, auth_time: int, ends: int) -> str:
        now = int(time.time())
        claims = {
            "sub": user.username,
            "team": user.team,
            "role": user.role,
            "typ": kind,
            "iat": now,
            "nbf": now,
            "exp": min(now + ttl, ends),
            "jti": uuid.uuid4().hex,
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "fam": family,
            "auth_time": auth_time,
        }
        if user.stamp:
            claims["stamp"] = user.stamp
        return jwt.encode(claims, self.secret, algorithm=self.settings.jwt_algorithm)

    def verify(self, token: str, kind: str = "access") -> dict[str, Any]:
        """The claims of a valid, unrevoked token of type ``kind``; TokenError otherwise."""
        claims = self.decode(token, kind)
        self.check(claims)
        return claims

    def decode(self, token: str, kind: str) -> dict[str, Any]:
        """The claims of a well-signed, current token of type ``kind`` (revocation not checked)."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[self.settings.jwt_algorithm],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "iat", "nbf", "jti", "sub", "typ", "iss", "aud"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("token not yet valid") from None
        except jwt.InvalidAudienceError:
            raise TokenError("token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenError("token from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError(f"token algorithm not allowed (only {self.settings.jwt_algorithm})") from None
        except jwt.InvalidSignatureError:
            raise TokenError("token signature does not match") from None
        except jwt.DecodeError:
            raise TokenError("malformed token") from None
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"invalid token ({type(exc).__name__})") from None
        if claims.get("typ") != kind:
            raise TokenError(f"wrong token type: {claims.get('typ')!r} where {kind!r} is needed")
        return claims

    def subject_of(self, token: str, kind: str) -> str | None:
        """The subject of a well-signed, current token of type ``kind`` (revocation not checked),
        else None."""
        try:
            subject = self.decode(token, kind)["sub"]
        except TokenError:
            return None
        return subject if isinstance(subject, str) else None

    def check(self, claims: dict[str, Any]) -> None:
        """TokenError when the token, or the login it belongs to, was revoked (one Redis call)."""
        if self.client.exists(*_revocation_keys(claims)):
            raise TokenError("token revoked")

    def check_many(self, many: list[dict[str, Any]]) -> list[bool]:
        """For each token's claims, whether it is still unrevoked (one Redis round trip in all)."""
        pipe = self.client.pipeline(transaction=False)
        for claims in many:
            pipe.exists(*_revocation_keys(claims))
        return [not found for found in pipe.execute()]

    def revoke(self, claims: dict[str, Any], value: str = "1") -> bool:
        """Refuse this token from now until it would have expired anyway.

        True when this call revoked it, False when it already was: the check and the write are
        one Redis command, so two requests racing with one single-use token cannot both win.
        """
        ttl = max(1, int(claims["exp"]) - int(time.time()))
        return bool(self.client.set(REVOKED + str(claims["jti"]), value, ex=ttl, nx=True))

    def revoke_family(self, claims: dict[str, Any]) -> None:
        """Refuse every token of the login ``claims`` belong to (the token itself as well)."""
        self.revoke(claims)
        if claims.get("fam"):
            # Any token of the family still alive expires within the longer of the two lifetimes.
            ttl = max(1, self.settings.access_ttl, self.settings.refresh_ttl)
            self.client.set(FAMILY_REVOKED + str(claims["fam"]), "1", ex=ttl)

    def spend_refresh(self, claims: dict[str, Any]) -> None:
        """Spend the refresh token of ``claims`` (from :meth:`decode`): single use. A token already
        spent revokes its whole family (a copy is being replayed); a login older than
        ``web.session_max_age`` refreshes no more. TokenError when it cannot be spent."""
        if time.time() >= _auth_time(claims) + self.settings.session_max_age:
            raise TokenError("session expired (web.session_max_age): log in again")
        if claims.get("fam") and self.client.exists(FAMILY_REVOKED + str(claims["fam"])):
            raise TokenError("token revoked")
        if self.revoke(claims, SPENT):
            return
        if _text(self.client.get(REVOKED + str(claims["jti"]))) == SPENT:  # not a logout's revocation
            self.revoke_family(claims)
            log.warning("a spent refresh token of %s was sent again: every token of that login revoked", claims["sub"])
        raise TokenError("token revoked")


def check_user(claims: dict[str, Any], user: User | None) -> User:
    """``user`` when the token's claims were issued to the account as it is now; TokenError when
    it was removed, disabled, or changed (password, role, state) since the token was issued."""
    if user is None:
        raise TokenError("user no longer exists")
    if user.disabled:
        raise TokenError("user disabled")
    stamp = claims.get("stamp")
    if stamp is None:
        # A token minted before accounts had stamps: good until the account first changes.
        if user.revoked_at or int(claims["iat"]) < int(user.created_at):
            raise TokenError("token revoked: the account changed since it was issued")
    elif not hmac.compare_digest(str(stamp).encode(), user.stamp.encode()):
        raise TokenError("token revoked: the account changed since it was issued")
    return user


def _auth_time(claims: dict[str, Any]) -> int:
    """When the login of ``claims`` happened (a token from before families: when it was issued)."""
    value = claims.get("auth_time", claims["iat"])
    return int(value) if isinstance(value, int | float) else int(claims["iat"])


def _text(value: Any) -> str | None:
    """A Redis reply as text (the client may or may not decode replies)."""
    return value.decode() if isinstance(value, bytes) else value


def _revocation_keys(claims: dict[str, Any]) -> list[str]:
    keys = [REVOKED + str(claims["jti"])]
    if claims.get("fam"):
        keys.append(FAMILY_REVOKED + str(claims["fam"]))
    return keys
