"""The Models panel across teams in real headless Chromium, against the real app and a real Redis.

alice (alpha's admin) sees her versions without a switch button (only operators switch) and her
fine-tune job waiting behind beta's, with its place in the line, then starting live when beta's
ends; olga (an operator) sees every version and switches. The fine-tune commands are a stand-in
(tests.web.gatekit) whose timing the test decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from daemon.versions.operations import add_from_onnx
from daemon.versions.registry import CURRENT_KEY, ModelRegistry
from engine.weights import model_files
from tests.polling import wait_until
from tests.web.browserkit import BROWSER_MARKS, Dashboard, logged_in, serving
from tests.web.conftest import PASSWORD, bearer, login
from tests.web.gatekit import gate_commands, release
from web.app import create_app
from web.models_api import training_jobs
from web.services import services

pytestmark = BROWSER_MARKS


@pytest.fixture
def pages(settings: Settings, redis_handle: RedisHandle, tmp_path: Path) -> Iterator[dict[str, Any]]:
    here = tmp_path / "gate"
    app, _ = create_app(settings, redis_url=redis_handle.url, training=gate_commands(here))
    svc = services(app)
    svc.accounts.add_user("alice", PASSWORD, "alpha", admin=True)
    svc.accounts.add_user("dave", PASSWORD, "beta", admin=True)
    svc.accounts.add_user("olga", PASSWORD, "ops", role="operator")
    registry = ModelRegistry.for_data_dir(settings.data_dir)
    tiny = model_files("tiny")
    for name, team in (("alpha-v1", "alpha"), ("beta-v1", "beta")):
        add_from_onnx(registry, "PP-OCRv6-tiny", {"rec": tiny.rec}, [], name=name, team=team)
    try:
        with serving(app) as url:
            try:
                with logged_in(url, ("alice", "olga"), tmp_path, PASSWORD) as browsers:
                    yield {"app": app, "redis": redis_handle.client, "here": here, **browsers}
            finally:
                release(here, "alpha", "beta")
                training_jobs(app).wait(60)
    finally:
        svc.store.close()
        svc.accounts.close()


def panel(page: Dashboard) -> dict[str, Any]:
    return page.js("""const root = document.querySelector('[data-testid=models-panel]');
        const status = document.querySelector('[data-testid=train-status]');
        return {hidden: root.hidden, current: document.querySelector('[data-testid=models-current]').dataset.version,
                versions: [...root.querySelectorAll('[data-testid=model-version]')].map(n => n.dataset.name),
                buttons: root.querySelectorAll('[data-testid=model-use]').length,
                operatorsOnly: !!root.querySelector('[data-testid=models-operators-only]'),
                status: status.dataset.state || null, position: status.dataset.position || null,
                statusText: status.textContent};""")


def test_a_team_admin_sees_her_versions_and_her_place_in_line_but_cannot_switch(pages: dict[str, Any]) -> None:
    alice = pages["alice"]
    shown = wait_until(lambda: (lambda p: p if p["versions"] else None)(panel(alice)), 60, "alice's model list")
    assert not shown["hidden"] and set(shown["versions"]) == {"PP-OCRv6-small", "PP-OCRv6-tiny", "alpha-v1"}
    assert shown["buttons"] == 0 and shown["operatorsOnly"]

    client = pages["app"].test_client()
    dave = bearer(login(client, "dave")["access_token"])
    beta = client.post("/api/v1/training", json={"kind": "rec", "source": "corrections"}, headers=dave).get_json()
    assert beta["state"] == "queued"  # runs first, held at its export

    alice.css("[data-testid=train-start]").click()
    waiting = wait_until(
        lambda: (lambda p: p if p["status"] == "waiting" else None)(panel(alice)), 60, "alice's job waiting"
    )
    assert waiting["position"] == "1" and "number 1 in line" in waiting["statusText"]
    assert alice.js("return document.querySelector('[data-testid=train-start]').disabled") is True

    release(pages["here"], "beta")
    wait_until(lambda: panel(alice)["status"] in ("exporting", "training", "registering", "done"), 60, "her turn")
    assert panel(alice)["position"] is None
    release(pages["here"], "alpha")
    wait_until(lambda: panel(alice)["status"] == "done", 60, "alice's job done, live")


def test_an_operator_sees_every_version_and_switches(pages: dict[str, Any]) -> None:
    olga = pages["olga"]
    # main.js shows the panel to the "admin" role; the panel itself asks the API who may switch
    olga.js("return window.teamocr.models.show(true)")
    shown = wait_until(lambda: (lambda p: p if p["versions"] else None)(panel(olga)), 60, "olga's model list")
    assert set(shown["versions"]) == {"PP-OCRv6-small", "PP-OCRv6-tiny", "alpha-v1", "beta-v1"}
    assert shown["buttons"] == 3 and not shown["operatorsOnly"]
    olga.css("[data-testid=model-use][data-version='beta-v1']").click()
    wait_until(lambda: panel(olga)["current"] == "beta-v1", 60, "the switch shown")
    assert pages["redis"].get(CURRENT_KEY) == "beta-v1"
