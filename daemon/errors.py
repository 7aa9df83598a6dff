"""Errors of the teamocr service."""

from __future__ import annotations


class DaemonError(Exception):
    """Base class of the service's errors."""


class EngineStartError(DaemonError):
    """The OCR engine could not be built (in this process or in a worker process)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot start the OCR engine: {self.reason}"
