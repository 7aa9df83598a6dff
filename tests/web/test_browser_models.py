"""The admin-only Models panel in real headless Chromium, against the real app and a real Redis.

alice (admin) sees the versions, switches the current one and starts a fine-tune whose state
arrives live; bob (member of the same team) never sees the panel. The fine-tune commands are the
real command line given an option it refuses, so the job fails at its first step, quickly.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from daemon.versions.registry import CURRENT_KEY
from tests.polling import wait_until
from tests.web.browserkit import BROWSER_MARKS, Dashboard, logged_in, serving
from tests.web.conftest import PASSWORD
from web.app import create_app
from web.models_api import training_jobs
from web.services import services
from web.training import TrainingCommands

pytestmark = BROWSER_MARKS


@pytest.fixture
def pages(settings: Settings, redis_handle: RedisHandle, tmp_path: Any) -> Iterator[dict[str, Any]]:
    commands = TrainingCommands(prefix=[sys.executable, "-m", "cli", "--no-such-option"])
    app, _ = create_app(settings, redis_url=redis_handle.url, training=commands)
    svc = services(app)
    svc.accounts.add_user("alice", PASSWORD, "alpha", admin=True)
    svc.accounts.add_user("bob", PASSWORD, "alpha")
    try:
        with serving(app) as url:
            try:
                with logged_in(url, ("alice", "bob"), tmp_path, PASSWORD) as browsers:
                    yield {"app": app, "redis": redis_handle.client, **browsers}
            finally:
                training_jobs(app).wait(60)
    finally:
        svc.store.close()
        svc.accounts.close()


def panel(page: Dashboard) -> dict[str, Any]:
    return page.js("""const root = document.querySelector('[data-testid=models-panel]');
        return {hidden: root.hidden, current: document.querySelector('[data-testid=models-current]').dataset.version,
                versions: [...root.querySelectorAll('[data-testid=model-version]')].map(n => n.dataset.name),
                status: document.querySelector('[data-testid=train-status]').dataset.state || null,
                statusText: document.querySelector('[data-testid=train-status]').textContent};""")


def test_admins_see_versions_and_fine_tune_members_do_not_see_them(pages: dict[str, Any]) -> None:
    alice, bob = pages["alice"], pages["bob"]
    shown = wait_until(lambda: (lambda p: p if p["versions"] else None)(panel(alice)), 60, "alice's model list")
    assert not shown["hidden"] and shown["current"] == "PP-OCRv6-small"
    assert set(shown["versions"]) == {"PP-OCRv6-small", "PP-OCRv6-tiny"}
    assert panel(bob)["hidden"] and panel(bob)["versions"] == []

    # switching every team's model is an operator's (issue 13; test_browser_models_teams shows the
    # operator's switch): alice, alpha's admin, is offered none
    assert alice.js("return document.querySelectorAll('[data-testid=model-use]').length") == 0
    assert pages["redis"].get(CURRENT_KEY) in (None, "PP-OCRv6-small")

    alice.css("[data-testid=train-start]").click()
    done = wait_until(
        lambda: (lambda p: p if p["status"] == "failed" else None)(panel(alice)), 60, "the job's failure, live"
    )
    assert "Failed:" in done["statusText"] and "corrections export" in done["statusText"]
    assert alice.js("return document.querySelector('[data-testid=train-start]').disabled") is False
    assert panel(bob)["hidden"] and panel(bob)["status"] is None
