"""Every wrong token is refused with 401 and a JSON error naming the cause; the signing secret
is generated safely on first start, kept private, and reused.

Tokens are crafted here with PyJWT (or by hand, for alg "none") against the real app and its
real embedded Redis; a crafted valid token is accepted, so each refusal is down to one change.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
import time
import uuid
from dataclasses import replace
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from tests.web.conftest import PASSWORD, bearer, login
from web.app import ACCOUNTS_NAME, create_app
from web.services import Services, services
from web.tokens import SECRET_FILE, TokenError, load_secret

ME = "/api/v1/auth/me"
REFRESH = "/api/v1/auth/refresh"
DROP = object()  # a claim value meaning "leave this claim out"
OTHER_KEY = "another-secret-that-is-long-enough-for-hs256-0123456789"


def claims_for(svc: Services, username: str = "bob", **changes: Any) -> dict[str, Any]:
    """Valid access-token claims for ``username``, with ``changes`` applied (DROP removes one)."""
    now = int(time.time())
    web = svc.settings.web
    claims: dict[str, Any] = {
        "sub": username,
        "team": "alpha",
        "role": "member",
        "typ": "access",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "iss": web.jwt_issuer,
        "aud": web.jwt_audience,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not DROP}


def sign(svc: Services, claims: dict[str, Any], key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key if key is not None else svc.tokens.secret, algorithm=algorithm)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def assert_refused(client: FlaskClient, headers: dict[str, str], cause: str) -> None:
    response = client.get(ME, headers=headers)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert body["status"] == 401
    assert cause in body["error"], body


def test_a_crafted_valid_token_is_accepted(client: FlaskClient, svc: Services, users: dict) -> None:
    response = client.get(ME, headers=bearer(sign(svc, claims_for(svc))))
    assert response.status_code == 200
    assert response.get_json() == {"username": "bob", "team": "alpha", "role": "member"}


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Bearer    ", "Basic Ym9iOnB3", "bob"])
def test_missing_bearer_token(client: FlaskClient, users: dict, header: str | None) -> None:
    assert_refused(client, {} if header is None else {"Authorization": header}, "missing bearer token")


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "..", "Zm9v.YmFy.YmF6", "e30.e30"])
def test_malformed_token(client: FlaskClient, users: dict, token: str) -> None:
    assert_refused(client, bearer(token), "malformed token")


@pytest.mark.parametrize("head", [{"alg": "none", "typ": "JWT"}, {"alg": "None"}, {"alg": "NONE"}, {}])
def test_alg_none_is_refused(client: FlaskClient, svc: Services, users: dict, head: dict[str, str]) -> None:
    header = b64url(json.dumps(head).encode())
    payload = b64url(json.dumps(claims_for(svc)).encode())
    assert_refused(client, bearer(f"{header}.{payload}."), "algorithm not allowed")


def test_wrong_signing_key(client: FlaskClient, svc: Services, users: dict) -> None:
    assert_refused(client, bearer(sign(svc, claims_for(svc), key=OTHER_KEY)), "signature does not match")


def test_tampered_payload_keeps_old_signature(client: FlaskClient, svc: Services, users: dict) -> None:
    token = login(client, "carol")["access_token"]  # carol is in team beta
    head, payload, signature = token.split(".")
    claims = b64url_json(payload)
    assert claims["team"] == "beta"
    forged = b64url(json.dumps({**claims, "team": "alpha"}).encode())
    assert_refused(client, bearer(f"{head}.{forged}.{signature}"), "signature does not match")
    assert client.get(ME, headers=bearer(token)).get_json()["team"] == "beta"


def test_expired_token(client: FlaskClient, svc: Services, users: dict) -> None:
    now = int(time.time())
    assert_refused(
        client, bearer(sign(svc, claims_for(svc, iat=now - 120, nbf=now - 120, exp=now - 60))), "token expired"
    )


def test_no_leeway_on_expiry(client: FlaskClient, svc: Services, users: dict) -> None:
    # exp = the current whole second: already past with no leeway, still valid with any leeway >= 1 s.
    now = int(time.time())
    token = sign(svc, claims_for(svc, iat=now - 10, nbf=now - 10, exp=now))
    assert_refused(client, bearer(token), "token expired")
    with pytest.raises(TokenError, match="expired"):
        svc.tokens.verify(token)
    assert (
        jwt.decode(token, svc.tokens.secret, algorithms=["HS256"], audience=svc.settings.web.jwt_audience, leeway=5)[
            "exp"
        ]
        == now
    )  # proof that only the missing leeway refuses it


def test_not_yet_valid_token(client: FlaskClient, svc: Services, users: dict) -> None:
    assert_refused(client, bearer(sign(svc, claims_for(svc, nbf=int(time.time()) + 60))), "token not yet valid")


def test_wrong_audience(client: FlaskClient, svc: Services, users: dict) -> None:
    assert_refused(client, bearer(sign(svc, claims_for(svc, aud="someone-else"))), "another audience")


def test_wrong_issuer(client: FlaskClient, svc: Services, users: dict) -> None:
    assert_refused(client, bearer(sign(svc, claims_for(svc, iss="evil-issuer"))), "another issuer")


@pytest.mark.parametrize("claim", ["jti", "typ", "exp", "nbf", "iat", "sub", "iss", "aud"])
def test_missing_claim(client: FlaskClient, svc: Services, users: dict, claim: str) -> None:
    assert_refused(client, bearer(sign(svc, claims_for(svc, **{claim: DROP}))), f"lacks the '{claim}' claim")


def test_unknown_token_type(client: FlaskClient, svc: Services, users: dict) -> None:
    assert_refused(client, bearer(sign(svc, claims_for(svc, typ="id"))), "wrong token type")


def test_token_revoked_by_logout(client: FlaskClient, users: dict) -> None:
    tokens = login(client, "bob")
    assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 200
    out = client.post(
        "/api/v1/auth/logout", headers=bearer(tokens["access_token"]), json={"refresh_token": tokens["refresh_token"]}
    )
    assert out.status_code == 200
    assert_refused(client, bearer(tokens["access_token"]), "token revoked")
    again = client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401 and again.get_json()["error"] == "token revoked"


def test_refresh_token_is_not_an_access_token(client: FlaskClient, users: dict) -> None:
    assert_refused(client, bearer(login(client, "bob")["refresh_token"]), "wrong token type")


def test_access_token_is_not_a_refresh_token(client: FlaskClient, users: dict) -> None:
    response = client.post(REFRESH, json={"refresh_token": login(client, "bob")["access_token"]})
    assert response.status_code == 401 and response.is_json
    assert "wrong token type" in response.get_json()["error"]


def test_refresh_token_is_single_use_even_when_racing(svc: Services, users: dict) -> None:
    claims = svc.tokens.verify(svc.tokens.issue(users["bob"])["refresh_token"], "refresh")
    assert svc.tokens.revoke(claims) is True  # the first refresh wins ...
    assert svc.tokens.revoke(claims) is False  # ... one that passed verify() at the same time loses


def test_token_of_a_deleted_user(client: FlaskClient, svc: Services, settings: Settings, users: dict) -> None:
    tokens = login(client, "bob")
    with sqlite3.connect(settings.data_dir / ACCOUNTS_NAME) as db:
        assert db.execute("DELETE FROM users WHERE username = 'bob'").rowcount == 1
    db.close()
    assert_refused(client, bearer(tokens["access_token"]), "user no longer exists")
    response = client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 401 and "user no longer exists" in response.get_json()["error"]


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_algorithm_confusion(client: FlaskClient, svc: Services, users: dict, algorithm: str) -> None:
    assert svc.settings.web.jwt_algorithm == "HS256"
    token = sign(svc, claims_for(svc), algorithm=algorithm)  # the right secret, another algorithm
    assert_refused(client, bearer(token), "algorithm not allowed")


def test_first_start_creates_no_user_and_a_private_secret(
    client: FlaskClient, svc: Services, settings: Settings
) -> None:
    for username, password in [("admin", "admin"), ("admin", "password"), ("root", "root")]:
        response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert response.status_code == 401 and response.is_json
    assert svc.accounts.teams() == [] and svc.accounts.first_team() is None
    path = settings.data_dir / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text(encoding="ascii").strip()
    assert len(secret) >= 32 and svc.tokens.secret == secret


def test_secret_is_reused_by_the_next_app(
    client: FlaskClient, settings: Settings, redis_handle: RedisHandle, users: dict
) -> None:
    secret = (settings.data_dir / SECRET_FILE).read_text(encoding="ascii")
    token = login(client, "carol")["access_token"]
    app2, _ = create_app(settings, redis_url=redis_handle.url)
    try:
        assert services(app2).tokens.secret == secret.strip()
        response = app2.test_client().get(ME, headers=bearer(token))
        assert response.status_code == 200 and response.get_json()["username"] == "carol"
    finally:
        services(app2).store.close()
        services(app2).accounts.close()
    assert (settings.data_dir / SECRET_FILE).read_text(encoding="ascii") == secret


def test_configured_secret_is_used_and_no_file_written(settings: Settings, redis_handle: RedisHandle) -> None:
    configured = "configured-secret-" + "x" * 40
    app, _ = create_app(replace(settings, web=replace(settings.web, jwt_secret=configured)), redis_url=redis_handle.url)
    svc = services(app)
    try:
        assert svc.tokens.secret == configured
        assert not (settings.data_dir / SECRET_FILE).exists()
        svc.accounts.add_user("bob", PASSWORD, "alpha")
        client = app.test_client()
        assert client.get(ME, headers=bearer(jwt.encode(claims_for(svc), configured))).status_code == 200
        assert_refused(client, bearer(sign(svc, claims_for(svc), key=OTHER_KEY)), "signature does not match")
    finally:
        svc.store.close()
        svc.accounts.close()


def test_short_configured_secret_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        load_secret(replace(settings, web=replace(settings.web, jwt_secret="secret")))
    assert not (settings.data_dir / SECRET_FILE).exists()


def test_short_secret_file_is_refused(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / SECRET_FILE).write_text("too-short", encoding="ascii")
    with pytest.raises(ValueError, match="shorter than 32"):
        load_secret(settings)
