"""Faults against the real `teamocr run`: killed workers and a Redis restart under a stream of drops,
a stop in the middle of a burst, a full data disk, the shared folder unmounted and back.

The short versions run in CI; the long ones (marker ``long``) are benchmarks/reliability.py's.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import scenarios
from tests.faults.figures import report

SIZES = [pytest.param("short", id="short"), pytest.param("long", id="long", marks=pytest.mark.long)]


@pytest.mark.parametrize("size", SIZES)
def test_chaos_kills_and_a_redis_restart_lose_and_repeat_nothing(tmp_path: Path, size: str) -> None:
    report(f"chaos ({size})", scenarios.chaos(tmp_path, scenarios.CHAOS[size]))
