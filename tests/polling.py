"""The tests' one polling helper: wait for a condition with a deadline, never sleep for a fixed time.

Deadlines are generous (a busy CI core may be slow): they say that something happens, not how fast;
the figures of how fast belong to benchmarks/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str = "condition", interval: float = 0.05) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy, and return
    that; fail with an AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
