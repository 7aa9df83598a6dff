"""JWT access and refresh tokens (PyJWT), with revocation in Redis.

Every token names its type ("access" or "refresh"), issuer, audience, subject, team and role,
and carries iat/nbf/exp and a unique jti. Verification accepts only the configured algorithm
(so "none" and any other algorithm are refused), checks audience, issuer and times, and refuses
a token whose jti was revoked (logout).
"""

from __future__ import annotations

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

REVOKED = "teamocr:revoked:"
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
        """A fresh access + refresh token pair for ``user``."""
        return {
            "access_token": self._encode(user, "access", self.settings.access_ttl),
            "refresh_token": self._encode(user, "refresh", self.settings.refresh_ttl),
            "expires_in": self.settings.access_ttl,
            "token_type": "Bearer",
        }

    def _encode(self, user: User, kind: str, ttl: int) -> str:
        now = int(time.time())
        claims = {
            "sub": user.username,
            "team": user.team,
            "role": user.role,
            "typ": kind,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
        }
        return jwt.encode(claims, self.secret, algorithm=self.settings.jwt_algorithm)

    def verify(self, token: str, kind: str = "access") -> dict[str, Any]:
        """The claims of a valid, unrevoked token of type ``kind``; TokenError otherwise."""
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
        if self.client.exists(REVOKED + str(claims["jti"])):
            raise TokenError("token revoked")
        return claims

    def revoke(self, claims: dict[str, Any]) -> bool:
        """Refuse this token from now until it would have expired anyway.

        True when this call revoked it, False when it already was: the check and the write are
        one Redis command, so two requests racing with one single-use token cannot both win.
        """
        ttl = max(1, int(claims["exp"]) - int(time.time()))
        return bool(self.client.set(REVOKED + str(claims["jti"]), "1", ex=ttl, nx=True))
