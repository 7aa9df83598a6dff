"""Shared test setup: every test starts with no TEAMOCR_* variables from the caller's shell."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_teamocr_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TEAMOCR_"):
            monkeypatch.delenv(name)
