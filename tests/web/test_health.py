"""/healthz, /metrics and the OpenAPI document on the real app, Redis and store (Redis or the store down too)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from daemon.queue.redisconn import RedisHandle
from daemon.queue.streams import HEARTBEATS, JOBS, WORKERS_GROUP
from tests.web.test_api import T0, add_result
from web.services import Services

# name{labels} value, as the Prometheus text format 0.0.4 writes a sample
SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)\})? (?P<value>\S+)$'
)


@pytest.fixture
def busy(svc: Services) -> None:
    """Two results of each team's channels, a queue with one job handed out, two workers (one silent)."""
    add_result(svc, "", "a.png", created_at=T0)
    add_result(svc, "sales", "b.png", created_at=T0 + 1, status="failed")
    add_result(svc, "finance", "c.png", created_at=T0 + 2, status="queued")
    now = time.time()
    svc.redis.hset(HEARTBEATS, mapping={"host-1": now - 2, "host-2": now - 120})
    for n in range(3):
        svc.redis.xadd(JOBS, {"job": str(n)})
    svc.redis.xreadgroup(WORKERS_GROUP, "host-1", {JOBS: ">"}, count=1)


def parse_metrics(text: str) -> tuple[dict[str, float], dict[str, tuple[str, str]]]:
    """Samples by 'name{labels}', and (type, help) by family; fails on any malformed line."""
    samples: dict[str, float] = {}
    families: dict[str, dict[str, str]] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            _, kind, name, rest = line.split(" ", 3)
            families.setdefault(name, {})[kind] = rest
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        assert match["name"] in families, f"sample before its # HELP/# TYPE: {line!r}"
        key = match["name"] + (f"{{{match['labels']}}}" if match["labels"] else "")
        samples[key] = float(match["value"])
    for name, info in families.items():
        assert set(info) == {"HELP", "TYPE"} and info["TYPE"] in ("counter", "gauge"), name
    return samples, {name: (info["TYPE"], info["HELP"]) for name, info in families.items()}


def test_healthz_reports_redis_store_workers_and_queue(client: FlaskClient, auth: dict, busy: None) -> None:
    response = client.get("/healthz", headers=auth["bob"])  # a member sees the workers' names
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    assert body["status"] == "ok" and body["redis"] is True and body["store"] is True
    assert set(body["workers"]) == {"host-1", "host-2"} and 1 <= body["workers"]["host-1"] < 30
    assert body["workers_alive"] == 1
    assert body["queue"] == {"length": 3, "pending": 1, "lag": 2, "delayed": 0}
    assert "finance" not in response.get_data(as_text=True) and "sales" not in response.get_data(as_text=True)


def test_healthz_answers_503_when_redis_is_down(client: FlaskClient, auth: dict, redis_handle: RedisHandle) -> None:
    redis_handle.close()
    started = time.monotonic()
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded" and body["redis"] is False and body["store"] is True
    assert body["workers"] == {} and body["queue"]["length"] is None
    assert time.monotonic() - started < 10
    # A member's token cannot be checked against revocations without Redis (the scrape secret can:
    # tests/web/test_endpoint_health.py), so the answer says so rather than trusting it.
    metrics = client.get("/metrics", headers=auth["bob"])
    assert metrics.status_code == 503 and "web.metrics_token" in metrics.get_json()["error"]


def test_healthz_answers_503_when_the_store_is_closed(client: FlaskClient, auth: dict, svc: Services) -> None:
    svc.store.close()
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json()["store"] is False
    samples, _ = parse_metrics(client.get("/metrics", headers=auth["bob"]).get_data(as_text=True))
    assert samples["teamocr_store_up"] == 0 and "teamocr_files_seen_total" not in samples


def test_healthz_before_the_daemon_made_its_groups(client: FlaskClient, svc: Services) -> None:
    svc.redis.delete(JOBS)
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["queue"] == {"length": 0, "pending": None, "lag": None, "delayed": 0}


def test_metrics_are_prometheus_text(client: FlaskClient, auth: dict, busy: None) -> None:
    response = client.get("/metrics", headers=auth["bob"])  # a member (or web.metrics_token)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples, families = parse_metrics(response.get_data(as_text=True))
    assert samples["teamocr_files_seen_total"] == 3
    assert {
        key: samples[f'teamocr_results_total{{status="{key}"}}']
        for key in ("queued", "processing", "done", "duplicate", "failed")
    } == {"queued": 1, "processing": 0, "done": 1, "duplicate": 0, "failed": 1}
    assert samples["teamocr_done_total"] == 1 and samples["teamocr_failed_total"] == 1
    assert samples["teamocr_duplicates_total"] == 0
    assert samples["teamocr_queue_depth"] == 2 and samples["teamocr_queue_pending"] == 1
    assert samples["teamocr_workers_alive"] == 1
    assert samples['teamocr_ocr_seconds_total{stage="total"}'] == pytest.approx(0.31)
    assert {f'teamocr_ocr_seconds_total{{stage="{s}"}}' for s in ("decode", "detect", "recognize")} <= set(samples)
    assert families["teamocr_files_seen_total"][0] == "counter" and families["teamocr_queue_depth"][0] == "gauge"
    assert not any("finance" in key or "sales" in key for key in samples)


def refs(node: Any) -> list[str]:
    """Every $ref in a JSON document."""
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for value in node.values() for r in refs(value)]
    return [r for value in node for r in refs(value)] if isinstance(node, list) else []


def test_openapi_document_describes_every_endpoint(client: FlaskClient, app: Flask, auth: dict, svc: Services) -> None:
    response = client.get("/api/v1/openapi.json")  # no token
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1") and "bearerAuth" in doc["components"]["securitySchemes"]
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/") or rule.rule in ("/healthz", "/metrics")):
            continue
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        assert path in doc["paths"], path
        assert set(doc["paths"][path]) >= {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}}, path
    for ref in refs(doc):
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # a KeyError names a dangling $ref
    result = doc["components"]["schemas"]["Result"]
    rec = add_result(svc, "", "a.png")
    item = client.get(f"/api/v1/results/{rec.id}", headers=auth["bob"]).get_json()
    assert set(result["required"]) == set(result["properties"]) == set(item) - {"corrections"}
    assert json.loads(response.data) == json.loads((Path(__file__).parents[2] / "web" / "openapi.json").read_text())
