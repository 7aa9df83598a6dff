"""The errors of the webhooks package: each names the URL or webhook and the cause."""

from __future__ import annotations


class WebhookError(Exception):
    """Base of the webhook errors."""


class RefusedUrl(WebhookError, ValueError):
    """A URL a webhook may not have (or may not be sent to now): its scheme, its form, or an
    address it resolves to (private, loopback...: server-side request forgery)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"webhook URL refused: {reason}")
        self.url = url
        self.reason = reason


class TooManyWebhooks(WebhookError):
    """A team has as many webhooks as it may."""

    def __init__(self, team: str, limit: int) -> None:
        super().__init__(f"team {team!r} has {limit} webhooks already, the most it may have; remove one first")
        self.team = team
        self.limit = limit
