"""Which team sees which channel.

Each first-level folder of the shared folder is a channel. Settings map channels to teams
(``teams.channels = "finance=accounting, sales=sales"``); the folder's root and every unmapped
channel belong to the default team. The daemon announces a result to its team's room; the web
puts each member's connection in their team's room (and the default team's members also in
``team:*default*``) and filters every read with a :class:`ChannelScope`.

Deduplication is scoped by team too (:meth:`TeamMap.dedup_scope`): a file is only ever a duplicate
of an earlier file of its own team. The scope is fixed when a result is stored; a later change of
``teams.channels`` or ``teams.default_team`` moves no stored result to another scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ROOM = "team:*default*"
UPLOADS_CHANNEL = "uploads"  # the default team's uploads land in this (unmapped) channel
# The dedup scope of the root and unmapped channels when ``teams.default_team`` is empty (the web
# then takes the first team created, which the daemon cannot see). Never a team name: those are
# letters, digits and ``_ . @ -`` only.
DEFAULT_SCOPE = "*default*"


def parse_channel_map(spec: str) -> dict[str, str]:
    """ "finance=accounting, sales=sales" -> {"finance": "accounting", "sales": "sales"}."""
    mapping: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        channel, sep, team = part.partition("=")
        if not sep or not channel.strip() or not team.strip():
            raise ValueError(f"teams.channels: expected channel=team, got {part.strip()!r}")
        mapping[channel.strip()] = team.strip()
    return mapping


@dataclass(frozen=True)
class ChannelScope:
    """Channels a reader may see: exactly ``only`` when given, else all but ``excluded``."""

    only: frozenset[str] | None = None
    excluded: frozenset[str] = field(default_factory=frozenset)

    def allows(self, channel: str) -> bool:
        if self.only is not None:
            return channel in self.only
        return channel not in self.excluded

    def sql(self, column: str = "r.channel") -> tuple[str, list[Any]]:
        """A WHERE clause (never empty) and its parameters."""
        if self.only is not None:
            if not self.only:
                return "0", []
            return f"{column} IN ({','.join('?' * len(self.only))})", sorted(self.only)
        if not self.excluded:
            return "1", []
        return f"{column} NOT IN ({','.join('?' * len(self.excluded))})", sorted(self.excluded)


@dataclass(frozen=True)
class TeamMap:
    """The channel -> team mapping of the settings (``default_team`` as configured, maybe empty)."""

    channels: dict[str, str]
    default_team: str = ""

    @classmethod
    def from_spec(cls, spec: str, default_team: str = "") -> TeamMap:
        return cls(parse_channel_map(spec), default_team.strip())

    def dedup_scope(self, channel: str) -> str:
        """The team whose earlier files a file of ``channel`` may duplicate: the channel's team,
        else the configured default team, else :data:`DEFAULT_SCOPE`. With ``default_team`` empty,
        the default team's own mapped channels form a second scope of that team: its files there
        and in the root are OCR'd once each, never deduplicated across the two (nothing leaks)."""
        return self.channels.get(channel) or self.default_team or DEFAULT_SCOPE

    def room_of(self, channel: str) -> str:
        """The Socket.IO room announcing results of ``channel``."""
        team = self.channels.get(channel)
        return f"team:{team}" if team else DEFAULT_ROOM

    def rooms_for(self, team: str, is_default: bool) -> list[str]:
        return [f"team:{team}", DEFAULT_ROOM] if is_default else [f"team:{team}"]

    def scope_for(self, team: str, is_default: bool) -> ChannelScope:
        """What a member of ``team`` may read."""
        own = frozenset(c for c, t in self.channels.items() if t == team)
        if is_default:
            return ChannelScope(excluded=frozenset(self.channels) - own)
        return ChannelScope(only=own)

    def team_of(self, channel: str, first_team: Callable[[], str | None]) -> str | None:
        """The team whose members see results of ``channel`` (the one :meth:`scope_for` lets
        read it): its mapped team, else the default team (``default_team``, else the team created
        first, ``first_team()``, asked only then); None while there is no team at all."""
        return self.channels.get(channel) or self.default_team or first_team()

    def upload_channel(self, team: str, is_default: bool) -> str | None:
        """Where a member's uploads go when they name no channel: the default team's are the
        (unmapped) channel "uploads", another team's its first mapped channel; None for a team
        that owns no channel at all."""
        if is_default and self.channels.get(UPLOADS_CHANNEL, team) == team:
            return UPLOADS_CHANNEL
        own = sorted(c for c, t in self.channels.items() if t == team)
        return own[0] if own else None


def is_default_team(team: str, default_team: str, first_team: Callable[[], str | None]) -> bool:
    """Whether ``team`` is the default team (it owns the root and the unmapped channels): the one
    rule the web (a member's scope) and training (``corrections export --team``) both ask.

    ``default_team`` is the setting ``teams.default_team`` as configured: when it is set, that team.
    When it is empty, the team created first, ``first_team()`` (the accounts; asked only then), and
    no team at all when there is none yet.
    """
    if default_team:
        return team == default_team
    return team == first_team()
