"""/healthz names no host to anonymous callers (a worker's name holds its host's), drops heartbeats
older than ten minutes, and reads nothing that grows with the store; /metrics refuses anonymous
scrapes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from daemon.queue.streams import HEARTBEATS
from web.services import Services


@pytest.fixture
def beats(svc: Services) -> float:
    now = time.time()
    svc.redis.hset(HEARTBEATS, mapping={"gpu-host-7-4242": now - 1, "cpu-box.internal-99": now - 40})
    return now


def test_healthz_names_no_host_to_anonymous_callers(client: FlaskClient, auth: dict, beats: float) -> None:
    anonymous = client.get("/healthz")
    assert anonymous.status_code == 200
    body: dict[str, Any] = anonymous.get_json()
    assert sorted(body["workers"]) == ["worker-1", "worker-2"] and body["workers_alive"] == 1
    text = anonymous.get_data(as_text=True)
    assert "gpu-host" not in text and "cpu-box" not in text
    assert 35 < body["workers"]["worker-1"] < 60  # cpu-box... sorts first: ages kept, names hidden
    bad = client.get("/healthz", headers={"Authorization": "Bearer forged"})
    assert bad.status_code == 200 and sorted(bad.get_json()["workers"]) == ["worker-1", "worker-2"]
    named = client.get("/healthz", headers=auth["bob"]).get_json()  # a member (or the scrape secret)
    assert sorted(named["workers"]) == ["cpu-box.internal-99", "gpu-host-7-4242"]


def test_healthz_drops_heartbeats_older_than_ten_minutes(
    client: FlaskClient, auth: dict, svc: Services, beats: float
) -> None:
    svc.redis.hset(HEARTBEATS, mapping={f"old-{n}": beats - 601 - n for n in range(50)})
    body = client.get("/healthz", headers=auth["bob"]).get_json()
    assert sorted(body["workers"]) == ["cpu-box.internal-99", "gpu-host-7-4242"]
    assert sorted(svc.redis.hkeys(HEARTBEATS)) == ["cpu-box.internal-99", "gpu-host-7-4242"]  # removed, not hidden


def test_healthz_does_not_count_the_store(client: FlaskClient, svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Anyone may call /healthz: what it reads must not grow with the store."""
    calls: list[str] = []
    for name in ("counts", "stage_seconds", "list", "search"):
        real = getattr(svc.store, name)
        monkeypatch.setattr(svc.store, name, lambda *a, _n=name, _r=real, **k: calls.append(_n) or _r(*a, **k))
    assert client.get("/healthz").status_code == 200
    assert calls == []


def test_metrics_refuse_anonymous_scrapes_and_answer_members(client: FlaskClient, auth: dict) -> None:
    """(Without web.metrics_token; the secret: tests/web/test_endpoint_health.py.)"""
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.get_json()["status"] == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer forged"}).status_code == 401
    member = client.get("/metrics", headers=auth["carol"])
    assert member.status_code == 200 and "teamocr_store_up 1" in member.get_data(as_text=True)
