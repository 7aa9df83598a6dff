"""Floods, on a real server on loopback with concurrent clients: one user's flood is throttled (429
with Retry-After) without refusing other users, and a flood of refused tokens is throttled per
address. (Login brute force and the per-user budget are in test_limits.py; the latency figures
under load belong to the load benchmark.)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace

import pytest
import requests

from config.settings import Settings
from tests.polling import wait_until
from tests.web.conftest import bearer
from web.services import Services

ME = "/api/v1/auth/me"
API_LIMIT = 30
REFUSED_LIMIT = 20


@pytest.fixture
def settings(settings: Settings) -> Settings:
    web = replace(settings.web, api_limit=f"{API_LIMIT} per minute", refused_limit=f"{REFUSED_LIMIT} per minute")
    return replace(settings, web=web)


def flood(url: str, headers: dict[str, str], stop: threading.Event, seen: Counter, threads: int = 3) -> list:
    def run() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                response = session.get(url, headers=headers, timeout=10)
                seen[response.status_code] += 1
                if response.status_code == 429:
                    seen["retry-after"] += response.headers.get("Retry-After", "").isdigit()

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    return workers


def test_one_users_flood_does_not_refuse_another(base_url: str, svc: Services, users: dict) -> None:
    alice = bearer(svc.tokens.issue(users["alice"])["access_token"])
    bob = bearer(svc.tokens.issue(users["bob"])["access_token"])
    stop, seen = threading.Event(), Counter()
    workers = flood(base_url + ME, alice, stop, seen)
    try:
        wait_until(lambda: seen[429] >= 20, 60, "alice well into her refusals")
        answers, slowest = [], 0.0
        with requests.Session() as session:
            for _ in range(10):
                start = time.monotonic()
                answers.append(session.get(base_url + ME, headers=bob, timeout=30).status_code)
                slowest = max(slowest, time.monotonic() - start)
    finally:
        stop.set()
        for worker in workers:
            worker.join(15)
    assert seen[200] == API_LIMIT and seen[429] >= 20 and seen["retry-after"] == seen[429], seen
    assert answers == [200] * 10
    assert slowest < 20.0  # loose: bob is served, not starved (the tight figure is the load benchmark's)


def test_a_flood_of_refused_tokens_is_throttled_per_address(base_url: str, svc: Services, users: dict) -> None:
    stop, seen = threading.Event(), Counter()
    workers = flood(base_url + ME, bearer("not-a-token"), stop, seen, threads=2)
    try:
        wait_until(lambda: seen[429] >= 10, 60, "10 refusals of the flood")
    finally:
        stop.set()
        for worker in workers:
            worker.join(15)
    assert seen[401] == REFUSED_LIMIT and seen[429] >= 10 and seen["retry-after"] == seen[429], seen
    # the flood used up the address's budget for refusals only: a valid token from it still works
    alice = bearer(svc.tokens.issue(users["alice"])["access_token"])
    assert requests.get(base_url + ME, headers=alice, timeout=10).status_code == 200
