"""Faults against the real `teamocr run`: killed workers and a Redis restart under a stream of drops,
a stop in the middle of a burst, a full data disk, the shared folder unmounted and back.

The short versions run in CI; the long ones (marker ``long``) are benchmarks/reliability.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import scenarios

SIZES = scenarios.SIZES


@pytest.mark.parametrize("size", SIZES)
def test_chaos_kills_and_a_redis_restart_lose_and_repeat_nothing(tmp_path: Path, size: str) -> None:
    scenarios.chaos(tmp_path, scenarios.CHAOS[size], f"chaos ({size})")


@pytest.mark.parametrize("size", SIZES)
def test_stopped_mid_burst_and_started_again_loses_nothing(tmp_path: Path, size: str) -> None:
    scenarios.stop_mid_burst(tmp_path, scenarios.BURST[size], f"stop mid-burst ({size})")


@pytest.mark.parametrize("size", SIZES)
def test_a_full_data_disk_is_logged_and_caught_up_once_freed(tmp_path: Path, size: str) -> None:
    figures = scenarios.disk_full(tmp_path, scenarios.DISK[size], f"disk full ({size})")
    if "skipped" in figures:
        pytest.skip(figures["skipped"])


@pytest.mark.parametrize("size", SIZES)
def test_the_shared_folder_unmounted_and_back_loses_nothing(tmp_path: Path, size: str) -> None:
    figures = scenarios.unmount(tmp_path, scenarios.UNMOUNT[size], f"unmount ({size})")
    if "skipped" in figures:
        pytest.skip(figures["skipped"])
