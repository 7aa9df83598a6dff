"""Errors raised while reading settings."""

from __future__ import annotations


class ConfigError(Exception):
    """A setting could not be read: names where it came from, the key (if any) and why.

    ``source`` is a file name, ``"environment"`` or ``"command line"``; ``key`` is the dotted
    setting name or the environment variable.
    """

    def __init__(self, source: str, reason: str, key: str | None = None) -> None:
        # All data goes to args so the exception survives pickling between processes.
        super().__init__(source, reason, key)
        self.source = source
        self.reason = reason
        self.key = key

    def __str__(self) -> str:
        if self.key is None:
            return f"{self.source}: {self.reason}"
        return f"{self.source}: {self.key}: {self.reason}"
