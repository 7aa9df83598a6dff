"""A one-line progress bar for the terminal; silent when the stream is not a TTY."""

from __future__ import annotations

import time
from typing import TextIO


class ProgressBar:
    """Redraws ``[#####-----] done/total failed N  rate`` in place with ``\\r``.

    Draws nothing unless ``stream.isatty()``, so piped or logged stderr stays clean.
    """

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total = total
        self.stream = stream
        self.width = width
        self.enabled = total > 0 and stream.isatty()
        self._start = time.monotonic()

    def update(self, done: int, failed: int) -> None:
        """Show that ``done`` of ``total`` items are finished, ``failed`` of them with an error."""
        if not self.enabled:
            return
        filled = self.width * done // self.total
        elapsed = max(time.monotonic() - self._start, 1e-9)
        line = (
            f"\r[{'#' * filled}{'-' * (self.width - filled)}] {done}/{self.total}"
            f" failed {failed}  {done / elapsed:.1f} img/s"
        )
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line so later output starts on a fresh one."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
