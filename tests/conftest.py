"""Shared test setup: every test starts with no TEAMOCR_* variables from the caller's shell.

``no_leaked_threads`` is opt-in: a module asks for it with
``pytestmark = pytest.mark.usefixtures("no_leaked_threads")``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from tests.polling import wait_until


@pytest.fixture(autouse=True)
def _clean_teamocr_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TEAMOCR_"):
            monkeypatch.delenv(name)


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    """Fail the test when it leaves threads behind (waits briefly for ones that are stopping)."""
    before = set(threading.enumerate())
    yield
    try:
        wait_until(lambda: not (set(threading.enumerate()) - before), 5.0, "threads to stop")
    except AssertionError:
        leaked = set(threading.enumerate()) - before
        raise AssertionError(f"leaked threads: {sorted(t.name for t in leaked)}") from None
