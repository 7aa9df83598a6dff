"""JSON floods on the real app: every JSON body is capped at 16 KiB before it is read or parsed,
the login limiter's key function (which reads the user name from the body) included. A body that
says it is larger is refused on its Content-Length without a byte read; one that gives no length
stops being read at the cap.
"""

from __future__ import annotations

import io
import json
from typing import Any

from flask.testing import FlaskClient

from tests.web.conftest import PASSWORD
from tests.web.test_api import add_result
from web.bodies import MAX_JSON_BYTES
from web.services import Services

LOGIN = "/api/v1/auth/login"
FLOOD = 20_000_000


class Counted(io.BytesIO):
    """A request body whose position, after the request, says how much of it the server read."""

    def close(self) -> None:  # the test client closes the input: keep the position readable
        pass

    @property
    def read_bytes(self) -> int:
        return self.tell()


def flood_body() -> bytes:
    """A 20 MB login whose user name is real and whose password is long."""
    head = b'{"username": "bob", "password": "'
    return head + b"x" * (FLOOD - len(head) - 2) + b'"}'


def assert_413(response: Any) -> None:
    assert response.status_code == 413 and response.is_json, response.get_data(as_text=True)
    assert response.get_json() == {
        "error": f"request body larger than {MAX_JSON_BYTES} bytes (the limit for JSON)",
        "status": 413,
    }


def test_a_20_mb_login_is_413_without_being_read(client: FlaskClient, users: dict) -> None:
    body = Counted(flood_body())
    response = client.post(LOGIN, input_stream=body, content_length=FLOOD, content_type="application/json")
    assert_413(response)
    assert body.read_bytes == 0  # refused on its Content-Length: never read, never parsed


def test_a_login_without_a_length_stops_being_read_at_the_cap(client: FlaskClient, users: dict) -> None:
    body = Counted(flood_body())
    response = client.post(
        LOGIN,
        input_stream=body,
        content_type="application/json",
        # chunked: no length, and the server marks where the stream ends
        environ_overrides={"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True},
    )
    assert_413(response)
    assert body.read_bytes <= 2 * MAX_JSON_BYTES, body.read_bytes


def test_json_bodies_of_other_endpoints_are_capped_too(client: FlaskClient, svc: Services, auth: dict) -> None:
    rec = add_result(svc, "finance")
    text = json.dumps({"text": "x" * MAX_JSON_BYTES})
    url = f"/api/v1/results/{rec.id}/lines/0"
    response = client.post(url, data=text, content_type="application/json", headers=auth["bob"])
    assert_413(response)
    token = json.dumps({"refresh_token": "x" * MAX_JSON_BYTES})
    assert_413(client.post("/api/v1/auth/refresh", data=token, content_type="application/json"))


def test_a_login_just_under_the_cap_is_read(client: FlaskClient, users: dict) -> None:
    body = {"username": "bob", "password": PASSWORD, "padding": "x" * (MAX_JSON_BYTES - 100)}
    assert len(json.dumps(body)) <= MAX_JSON_BYTES
    assert client.post(LOGIN, json=body).status_code == 200
