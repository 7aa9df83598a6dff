"""The admin-only Webhooks panel in real headless Chromium, against the real app, a real Redis, the
daemon's deliverer and a real local receiver: alice (admin) adds a webhook, sees its secret once
and a delivery in its log after a correction; bob (member) never sees the panel."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from daemon.webhooks.deliverer import Deliverer
from tests.daemon.webhookkit import Receiver
from tests.polling import wait_until
from tests.web.browserkit import BROWSER_MARKS, Dashboard, logged_in, serving
from tests.web.conftest import PASSWORD
from tests.web.test_api import add_result
from web.app import create_app
from web.services import services

pytestmark = BROWSER_MARKS


@pytest.fixture
def pages(settings: Settings, redis_handle: RedisHandle, tmp_path: Any) -> Iterator[dict[str, Any]]:
    settings = replace(settings, web=replace(settings.web, webhooks_allow_private=True))  # the receiver is local
    app, _ = create_app(settings, redis_url=redis_handle.url)
    svc = services(app)
    svc.accounts.add_user("alice", PASSWORD, "alpha", admin=True)
    svc.accounts.add_user("bob", PASSWORD, "alpha")
    receiver = Receiver().start()
    deliverer = Deliverer(svc.redis, svc.webhooks, lambda c: svc.teams.team_of(c, lambda: "alpha"), allow_private=True)
    stop = threading.Event()
    thread = threading.Thread(target=deliverer.run, args=(stop,), name="test-deliverer", daemon=True)
    thread.start()
    try:
        with serving(app) as url, logged_in(url, ("alice", "bob"), tmp_path, PASSWORD) as browsers:
            yield {"url": url, "svc": svc, "receiver": receiver, **browsers}
    finally:
        stop.set()
        thread.join(30)
        receiver.stop()
        svc.store.close()
        svc.accounts.close()
        svc.webhooks.close()


def deliveries(page: Dashboard) -> list[dict[str, str]]:
    return list(
        page.js("""return [...document.querySelectorAll('[data-testid=webhook-delivery]')]
            .map(n => ({state: n.dataset.state, event: n.dataset.event, text: n.textContent}));""")
    )


def test_an_admin_adds_a_webhook_and_sees_its_deliveries(pages: dict[str, Any]) -> None:
    alice, bob, receiver, svc = pages["alice"], pages["bob"], pages["receiver"], pages["svc"]
    wait_until(lambda: alice.js("return !document.querySelector('[data-testid=webhooks-panel]').hidden"), 30, "panel")
    assert bob.js("return document.querySelector('[data-testid=webhooks-panel]').hidden") is True
    alice.css("[data-testid=webhook-url]").send_keys(receiver.url)
    alice.css("[data-testid=webhook-add]").click()
    secret = wait_until(
        lambda: alice.js("return document.querySelector('[data-testid=webhook-secret]').dataset.secret"), 30, "secret"
    )
    assert secret.startswith("whsec_")
    assert alice.js("return document.querySelector('[data-testid=webhook-url-shown]').textContent") == receiver.url

    rec = add_result(svc, "finance", "fin.png", text="total 42")
    token = svc.tokens.issue(svc.accounts.get("bob"))["access_token"]
    fixed = requests.post(
        f"{pages['url']}/api/v1/results/{rec.id}/lines/0",
        json={"text": "total 43"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert fixed.status_code == 200
    (got,) = wait_until(lambda: receiver.received, 30, "the delivery at the receiver")
    assert got.signed_by(secret) and got.payload["event"] == "result.corrected"

    alice.css("[data-testid=webhook-log]").click()
    shown = wait_until(
        lambda: [d for d in deliveries(alice) if d["state"] == "delivered"], 30, "the delivery in the log"
    )
    assert shown[0]["event"] == "result.corrected" and "HTTP 200" in shown[0]["text"]

    alice.css("[data-testid=webhook-remove]").click()
    wait_until(lambda: alice.js("return !!document.querySelector('[data-testid=webhooks-empty]')"), 30, "removed")
    assert svc.webhooks.of_team("alpha") == []
