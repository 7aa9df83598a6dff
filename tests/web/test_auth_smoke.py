"""Login, me, refresh and logout on the real app and Redis."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.web.conftest import bearer, login


def test_login_me_refresh_logout(client: FlaskClient, users: dict) -> None:
    tokens = login(client, "bob")
    assert set(tokens) >= {"access_token", "refresh_token", "expires_in"}
    me = client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.get_json() == {"username": "bob", "team": "alpha", "role": "member"}
    fresh = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401 and again.get_json()["error"] == "token revoked"
    out = client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert out.status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401


def test_wrong_password_and_missing_token(client: FlaskClient, users: dict) -> None:
    bad = client.post("/api/v1/auth/login", json={"username": "bob", "password": "nope-nope"})
    assert bad.status_code == 401 and "wrong" in bad.get_json()["error"]
    assert client.get("/api/v1/auth/me").status_code == 401
