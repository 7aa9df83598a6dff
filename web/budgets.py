"""Upload budgets: what one request may write, what a user and a team may upload in a day, and the
free space the shared folder must keep.

An upload is planned before anything is written (web.uploads), so each budget is checked against
the plan, never half way through a ZIP:

- one request: files, ZIPs and bytes it writes (``web.max_request_*``); over is 413;
- each user and each team: files and bytes a UTC day (``web.user_*_per_day``, ``web.team_*_per_day``),
  counters in Redis that expire after their day. One Lua script checks all four and adds to all or
  none, so concurrent requests cannot both slip under a limit; over is 429 with Retry-After (the
  end of the day). What a request then did not write (an empty or unreadable member) is given back;
- each user and each team: jobs waiting at once (queued or being read; ``web.user_queued_jobs``,
  ``web.team_queued_jobs``), counted in the result store; over is 429 with Retry-After, so one
  member's burst cannot hold the shared queue for everyone. Two requests at the same instant may
  both pass this count (it is read, not reserved): it bounds the queue to the limit plus one request;
- the shared folder: an upload that would leave less than ``web.min_free_bytes`` free is 507.

A limit of 0 is no limit. Every refusal names its budget by its setting.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from config.settings import WebSettings

DAY = 86_400
PREFIX = "teamocr:budget:"
# KEYS: the counters. ARGV: their limits (0: none), then the amounts to add, then the counters' TTL.
# Returns 0 when all were added, else the (1-based) index of the first counter that would overflow.
_RESERVE = """
local n = #KEYS
for i = 1, n do
  local limit, add = tonumber(ARGV[i]), tonumber(ARGV[n + i])
  if limit > 0 and add > 0 and tonumber(redis.call('GET', KEYS[i]) or '0') + add > limit then
    return i
  end
end
for i = 1, n do
  redis.call('INCRBY', KEYS[i], ARGV[n + i])
  redis.call('EXPIRE', KEYS[i], ARGV[2 * n + 1])
end
return 0
"""
# KEYS: the counters; ARGV: the amounts to take off. A counter that expired meanwhile stays gone.
_GIVE_BACK = """
for i = 1, #KEYS do
  if tonumber(ARGV[i]) > 0 and redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('DECRBY', KEYS[i], ARGV[i])
  end
end
return 0
"""


@dataclass(frozen=True)
class Need:
    """What one upload request will write at most."""

    files: int
    bytes: int
    zips: int


class BudgetExceeded(Exception):
    """A budget refuses the upload; ``status`` is 413 (this request alone), 429 (a day's) or 507 (disk)."""

    def __init__(
        self, budget: str, status: int, message: str, *, limit: int, requested: int, used: int = 0, retry_after: int = 0
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.status = status
        self.message = message
        self.limit = limit
        self.requested = requested
        self.used = used
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        """The JSON answer: the app's error shape, plus the budget's name and figures."""
        return {
            "error": self.message,
            "status": self.status,
            "budget": self.budget,
            "limit": self.limit,
            "requested": self.requested,
            "used": self.used,
        }


def check_request(need: Need, settings: WebSettings) -> None:
    """BudgetExceeded (413) when one request would write more files, ZIPs or bytes than it may."""
    for key, limit, wanted, what in (
        ("web.max_request_zips", settings.max_request_zips, need.zips, "ZIPs"),
        ("web.max_request_files", settings.max_request_files, need.files, "files"),
        ("web.max_request_write_bytes", settings.max_request_write_bytes, need.bytes, "bytes"),
    ):
        if 0 < limit < wanted:
            raise BudgetExceeded(
                key,
                413,
                f"this upload would write {wanted} {what}, over the limit of {limit} per request ({key}); "
                "send fewer or smaller files at a time",
                limit=limit,
                requested=wanted,
            )


WAITING_RETRY_AFTER = 30  # seconds: a queue drains in minutes, not in days


def check_waiting(
    files: int, user_waiting: int, team_waiting: int, user: str, team: str, settings: WebSettings
) -> None:
    """BudgetExceeded (429) when ``files`` more would put more of the user's uploads, or of the
    team's files, in the queue at once than they may have."""
    for key, limit, waiting, who in (
        ("web.user_queued_jobs", settings.user_queued_jobs, user_waiting, f"user {user}"),
        ("web.team_queued_jobs", settings.team_queued_jobs, team_waiting, f"team {team}"),
    ):
        if limit > 0 and waiting + files > limit:
            raise BudgetExceeded(
                key,
                429,
                f"too many files waiting to be read: {who} has {waiting} in the queue and this upload adds "
                f"{files}, over the limit of {limit} at once ({key}); send them again when the queue has drained",
                limit=limit,
                requested=files,
                used=waiting,
                retry_after=WAITING_RETRY_AFTER,
            )


def check_free_space(folder: Path, need: int, min_free: int) -> None:
    """BudgetExceeded (507) when writing ``need`` bytes into ``folder`` would leave less than
    ``min_free`` bytes free on its file system. The message names no server path."""
    free = shutil.disk_usage(folder).free
    if free - need < min_free:
        raise BudgetExceeded(
            "web.min_free_bytes",
            507,
            f"not enough free space in the shared folder: {free} bytes free, this upload needs {need} "
            f"and {min_free} must stay free (web.min_free_bytes); ask an operator to make room",
            limit=min_free,
            requested=need,
            used=max(free, 0),
        )


@dataclass(frozen=True)
class Reservation:
    """What a request took from the day's counters, to give back what it did not use."""

    keys: tuple[str, ...]
    files: int
    bytes: int


class DailyBudgets:
    """Files and bytes uploaded per user and per team in a UTC day, in Redis."""

    def __init__(self, client: redis.Redis, settings: WebSettings, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock

    def reserve(self, user: str, team: str, files: int, nbytes: int) -> Reservation:
        """Add ``files`` and ``nbytes`` to the day's counters of ``user`` and ``team``, or to none
        of them: BudgetExceeded (429, Retry-After the end of the day) when one would overflow."""
        now = self.clock()
        day = int(now // DAY)
        budgets = (
            ("web.user_jobs_per_day", f"user:{user}:files", self.settings.user_jobs_per_day, files, f"user {user}"),
            ("web.user_bytes_per_day", f"user:{user}:bytes", self.settings.user_bytes_per_day, nbytes, f"user {user}"),
            ("web.team_jobs_per_day", f"team:{team}:files", self.settings.team_jobs_per_day, files, f"team {team}"),
            ("web.team_bytes_per_day", f"team:{team}:bytes", self.settings.team_bytes_per_day, nbytes, f"team {team}"),
        )
        keys = tuple(f"{PREFIX}{key}:{day}" for _, key, _, _, _ in budgets)
        limits = [max(limit, 0) for _, _, limit, _, _ in budgets]
        amounts = [amount for _, _, _, amount, _ in budgets]
        # Kept one day past their own, so a request that started at 23:59 gives back to the right day.
        overflow = int(self.client.eval(_RESERVE, len(keys), *keys, *limits, *amounts, 2 * DAY))
        if overflow:
            name, _, limit, amount, who = budgets[overflow - 1]
            used = int(self.client.get(keys[overflow - 1]) or 0)
            what = "files" if name.endswith("jobs_per_day") else "bytes"
            retry_after = max(1, (day + 1) * DAY - int(now))
            raise BudgetExceeded(
                name,
                429,
                f"upload budget used up: {who} has uploaded {used} {what} today and this upload needs "
                f"{amount} more, over the limit of {limit} a day ({name}); it resets at midnight UTC",
                limit=limit,
                requested=amount,
                used=used,
                retry_after=retry_after,
            )
        return Reservation(keys, files, nbytes)

    def give_back(self, reservation: Reservation, files_used: int, bytes_used: int) -> None:
        """Return what a reservation took but the request did not write."""
        files = max(reservation.files - files_used, 0)
        nbytes = max(reservation.bytes - bytes_used, 0)
        if not files and not nbytes:
            return
        self.client.eval(_GIVE_BACK, len(reservation.keys), *reservation.keys, files, nbytes, files, nbytes)
