"""Exceptions raised by the OCR engine.

Everything the engine raises on purpose derives from :class:`EngineError`, so callers
(the daemon, the command line) can record a failure for one image and carry on.
An :class:`ImageError` carries the name of the input and the cause as data, and its
message reads ``"<source>: <reason>"`` so the user sees both without further work.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class for every error the engine raises deliberately."""


class ImageError(EngineError):
    """An input could not be turned into an image: missing, unreadable, not an image, corrupt.

    ``source`` names the input (a path, or the name the caller gave bytes) and
    ``reason`` says what is wrong with it, in words meant for the user.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(source, reason)
        self.source = source
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class ImageTooLargeError(ImageError):
    """The image is over the configured pixel or byte budget (a decompression-bomb guard)."""


class ModelError(EngineError):
    """Model weights are missing, corrupt or cannot be run on the chosen backend."""


class TableError(EngineError, ValueError):
    """A stored table cannot be laid out as a grid: a position that is not a whole number, or a grid
    too large to write. A ``ValueError`` too, since it is bad input.

    ``table`` names the table (``"table 2 (page 3)"``) and ``reason`` says what is wrong with it.
    """

    def __init__(self, table: str, reason: str) -> None:
        super().__init__(table, reason)
        self.table = table
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.table}: {self.reason}"
