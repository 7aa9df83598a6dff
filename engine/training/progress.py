"""Training progress for people (a bar on stderr) or programs (JSON Lines on stdout).

The JSON form is a stable interface (the dashboard reads it), one object per line:

* ``{"type": "progress", "epoch": 1, "step": 12, "steps": 400, "loss": 0.73, "lr": 0.0001}``:
  ``epoch`` counts from 1; ``step`` is the optimiser step of the whole run (from 1) and ``steps``
  the run's total, so ``step / steps`` is the fraction done;
* at the end ``{"type": "done", "kind": "rec", "checkpoint": "workdirs/x/best.pt", ...metrics}``
  with metrics such as ``test_before``/``test_after`` (dicts with ``accuracy``), ``guard_before``/
  ``guard_after``, ``epochs``, ``steps``, ``seconds``.

Readers should ignore types and keys they do not know.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    def step(self, epoch: int, step: int, steps: int, loss: float, lr: float) -> None: ...
    def end_epoch(self) -> None: ...
    def done(self, result: dict[str, Any]) -> None: ...


class JsonProgress:
    """One JSON object per line, flushed at once."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def step(self, epoch: int, step: int, steps: int, loss: float, lr: float) -> None:
        self._emit({"type": "progress", "epoch": epoch, "step": step, "steps": steps, "loss": _finite(loss), "lr": lr})

    def end_epoch(self) -> None:
        pass

    def done(self, result: dict[str, Any]) -> None:
        self._emit({"type": "done", **result})

    def _emit(self, obj: dict[str, Any]) -> None:
        self.stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.stream.flush()


class BarProgress:
    """A one-line bar redrawn at most every ``interval`` seconds; loss is a running mean."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.2, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.width = width
        self._last = 0.0
        self._loss: float | None = None
        self._open = False

    def step(self, epoch: int, step: int, steps: int, loss: float, lr: float) -> None:
        if math.isfinite(loss):
            self._loss = loss if self._loss is None else 0.9 * self._loss + 0.1 * loss
        now = time.monotonic()
        if now - self._last < self.interval and step < steps:
            return
        self._last = now
        filled = int(self.width * step / max(1, steps))
        bar = "#" * filled + "." * (self.width - filled)
        loss_text = f"{self._loss:.4f}" if self._loss is not None else "nan"
        self.stream.write(f"\repoch {epoch} [{bar}] {step}/{steps} loss {loss_text} lr {lr:.2e}")
        self.stream.flush()
        self._open = True

    def end_epoch(self) -> None:
        """End the bar's line, so that the epoch's log lines start on their own."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False

    def done(self, result: dict[str, Any]) -> None:
        self.end_epoch()
        self.stream.write(f"done: {result.get('checkpoint')}\n")
        self.stream.flush()


class QuietProgress:
    def step(self, epoch: int, step: int, steps: int, loss: float, lr: float) -> None:
        pass

    def end_epoch(self) -> None:
        pass

    def done(self, result: dict[str, Any]) -> None:
        pass


def make_progress(kind: str) -> Progress:
    """ "bar" (default), "json" or "none"."""
    if kind == "json":
        return JsonProgress()
    if kind == "none":
        return QuietProgress()
    return BarProgress()


def _finite(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None
