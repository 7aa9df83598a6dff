"""A budget of heavy renders per user: how many files one user may have made at once.

A searchable PDF of a 500-page document, an export of many results, a workbook of a result's
tables or its Markdown each keep a thread of the web's pool busy for seconds. Rate limits count
requests, not their cost, so one member could keep the pool (and the CPU) busy for the whole team.
Each user may have ``web.user_renders_at_once`` (2) such requests in flight; one more is 429 with
``Retry-After: 1`` and ``"budget": "web.user_renders_at_once"`` (0: no limit). The count is the
web process's own: one process serves the web (``teamocr web``/``run``), so nothing needs to be
shared.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from flask import g

from web.budgets import BudgetExceeded

BUDGET = "web.user_renders_at_once"

F = TypeVar("F", bound=Callable[..., Any])


class RenderSlots:
    """The renders in flight, per user, up to ``per_user`` each (0: no limit)."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._lock = threading.Lock()  # only held for a count, never across a render
        self._busy: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, user: str) -> Iterator[None]:
        """A slot of ``user``'s for the ``with`` block; BudgetExceeded (429) when all are taken."""
        with self._lock:
            used = self._busy.get(user, 0)
            if self.per_user and used >= self.per_user:
                raise BudgetExceeded(
                    BUDGET,
                    429,
                    f"{user} already has {used} file(s) being made (searchable PDFs, exports, workbooks); "
                    f"at most {self.per_user} at once, try again when one is done",
                    limit=self.per_user,
                    requested=1,
                    used=used,
                    retry_after=1,
                )
            self._busy[user] = used + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._busy[user] - 1
                if left:
                    self._busy[user] = left
                else:
                    del self._busy[user]

    def in_flight(self, user: str) -> int:
        """How many of ``user``'s renders are running."""
        with self._lock:
            return self._busy.get(user, 0)


def heavy_render(view: F) -> F:
    """A view (after ``require_auth``) that makes a file: it runs in one of the user's render slots
    (``services().renders``), else answers the budget's 429."""
    from web.services import services
    from web.uploads import budget_refusal

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            with services().renders.hold(g.principal.user.username):
                return view(*args, **kwargs)
        except BudgetExceeded as exc:
            if exc.budget != BUDGET:
                raise
            return budget_refusal(exc)

    return cast(F, wrapped)
