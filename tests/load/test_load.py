"""Load and soak against the real `teamocr run` on loopback: API and Socket.IO clients while files are
read; a steady drop rate with every process's memory at the start and the end.

The short versions run in CI; the long ones (marker ``long``) are benchmarks/reliability.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.scenarios import SIZES
from tests.load import scenarios


@pytest.mark.parametrize("size", SIZES)
def test_api_and_socket_clients_under_load_see_no_errors_and_every_event(tmp_path: Path, size: str) -> None:
    scenarios.load(tmp_path, scenarios.LOAD[size], f"load ({size})")


@pytest.mark.parametrize("size", SIZES)
def test_soak_at_a_steady_drop_rate_keeps_memory_flat(tmp_path: Path, size: str) -> None:
    scenarios.soak(tmp_path, scenarios.SOAK[size], f"soak ({size})")
