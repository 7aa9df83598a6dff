"""/metrics needs a member's token or the scrape secret (web.metrics_token) and counts the store at
most every web.metrics_max_age seconds (tests/web/test_endpoint_healthz.py: /healthz)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from tests.web.conftest import bearer
from tests.web.test_api import T0, add_result
from tests.web.test_health import parse_metrics
from web.app import create_app
from web.services import Services

SECRET = "scrape-secret-0123456789abcdef"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, web=replace(settings.web, metrics_token=SECRET))


def test_metrics_need_a_member_token_or_the_scrape_secret(client: FlaskClient, auth: dict, svc: Services) -> None:
    add_result(svc, "sales", "b.png", created_at=T0)
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and "Bearer" in anonymous.get_json()["error"]
    assert client.get("/metrics", headers=bearer("not-the-secret-0123456789")).status_code == 401
    for headers in (auth["carol"], bearer(SECRET)):
        answer = client.get("/metrics", headers=headers)
        assert answer.status_code == 200, answer.get_json()
        samples, _ = parse_metrics(answer.get_data(as_text=True))
        assert samples["teamocr_files_seen_total"] == 1 and samples["teamocr_store_up"] == 1
    svc.accounts.close()  # the accounts' file closed: a member's token can no longer be checked ...
    assert client.get("/metrics", headers=bearer(SECRET)).status_code == 200  # ... the secret still works


def test_metrics_count_the_store_at_most_every_max_age(client: FlaskClient, svc: Services, app: Flask) -> None:
    from web.health import figures_cache

    add_result(svc, "", "a.png", created_at=T0)
    scrape = lambda: parse_metrics(client.get("/metrics", headers=bearer(SECRET)).get_data(as_text=True))[0]  # noqa: E731
    assert scrape()["teamocr_files_seen_total"] == 1
    add_result(svc, "", "b.png", created_at=T0 + 1)
    for _ in range(5):
        samples = scrape()
        assert samples["teamocr_files_seen_total"] == 1  # not counted again: within web.metrics_max_age
        assert 0 <= samples["teamocr_store_figures_age_seconds"] < 15
    cache = figures_cache(app)
    assert cache.refreshes == 1
    cache.max_age = 0  # what web.metrics_max_age = 0 asks for: count on every scrape
    assert scrape()["teamocr_files_seen_total"] == 2 and cache.refreshes == 2


def test_metrics_with_redis_down_answer_without_a_server_error(client: FlaskClient, redis_handle: RedisHandle) -> None:
    redis_handle.close()
    assert client.get("/metrics").status_code == 401  # refused (uncounted), not a 500
    samples, _ = parse_metrics(client.get("/metrics", headers=bearer(SECRET)).get_data(as_text=True))
    assert samples["teamocr_redis_up"] == 0 and samples["teamocr_store_up"] == 1
    assert "teamocr_queue_depth" not in samples and "teamocr_files_seen_total" in samples


@pytest.fixture
def short_secret_settings(settings: Settings) -> Iterator[Settings]:
    yield replace(settings, web=replace(settings.web, metrics_token="short"))


def test_a_short_scrape_secret_stops_the_app(short_secret_settings: Settings, redis_handle: RedisHandle) -> None:
    with pytest.raises(ValueError, match="web.metrics_token must be at least 16 characters"):
        create_app(short_secret_settings, redis_url=redis_handle.url)
