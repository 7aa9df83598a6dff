"""A user may have ``web.user_renders_at_once`` files being made at once (searchable PDFs, exports,
table files): one more is a 429 naming the budget, another user is not held up, and a slot is
given back however its render ends."""

from __future__ import annotations

import contextlib

import pytest
from flask.testing import FlaskClient

from web.budgets import BudgetExceeded
from web.render_slots import BUDGET, RenderSlots
from web.services import Services


def test_a_third_render_of_one_user_is_a_429_and_others_go_on(client: FlaskClient, auth: dict, svc: Services) -> None:
    assert svc.renders.per_user == 2  # the default
    assert client.get("/api/v1/export?format=md", headers=auth["bob"]).status_code == 200
    with contextlib.ExitStack() as held:
        for _ in range(2):  # two of bob's files being made
            held.enter_context(svc.renders.hold("bob"))
        refused = client.get("/api/v1/export?format=md", headers=auth["bob"])
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        body = refused.get_json()
        assert body["budget"] == BUDGET and body["limit"] == 2 and body["used"] == 2
        assert client.get("/api/v1/export?format=csv", headers=auth["alice"]).status_code == 200
        assert client.get("/api/v1/results", headers=auth["bob"]).status_code == 200  # only files are held
    assert svc.renders.in_flight("bob") == 0
    assert client.get("/api/v1/export?format=md", headers=auth["bob"]).status_code == 200


def test_a_slot_is_given_back_when_its_render_fails() -> None:
    slots = RenderSlots(1)
    with pytest.raises(RuntimeError), slots.hold("bob"):
        raise RuntimeError("the render broke")
    assert slots.in_flight("bob") == 0
    with slots.hold("bob"):
        with pytest.raises(BudgetExceeded, match="at most 1 at once"), slots.hold("bob"):
            pass
        with slots.hold("carol"):
            assert slots.in_flight("carol") == 1
    unlimited = RenderSlots(0)
    with unlimited.hold("bob"), unlimited.hold("bob"), unlimited.hold("bob"):
        assert unlimited.in_flight("bob") == 3
