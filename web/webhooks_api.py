"""Webhooks over the API, for a team's admins (the daemon's deliverer sends them).

``GET    /api/v1/webhooks``                   the team's webhooks, each with its last delivery
``POST   /api/v1/webhooks``                   ``{"url", "events"?}``: register one; answers its
                                              ``id`` and ``secret`` (shown this once)
``DELETE /api/v1/webhooks/<id>``              remove one (deliveries still queued are dropped)
``GET    /api/v1/webhooks/<id>/deliveries``   its delivery log, newest first

An admin manages their own team's webhooks only; a member gets 403, and another team's webhook
answers 404 exactly like an unknown one. A URL is http(s), at most 2,000 characters, and its host
must resolve to public addresses only unless ``web.webhooks_allow_private`` (checked again at each
delivery, :mod:`daemon.webhooks.targets`).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, g, jsonify

from daemon.webhooks.errors import RefusedUrl, TooManyWebhooks
from daemon.webhooks.registry import EVENTS, Webhook, WebhookRegistry
from daemon.webhooks.targets import resolve
from web.auth import require_admin
from web.bodies import json_body
from web.services import services

log = logging.getLogger(__name__)

blueprint = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks")

FIELDS = ("url", "events")
NOT_FOUND = "webhook not found"


def _registry() -> WebhookRegistry:
    return services().webhooks


def _team() -> str:
    return str(g.principal.user.team)


def _own(webhook_id: str) -> Webhook:
    """The caller's team's webhook ``webhook_id``; 404 for an unknown one or another team's."""
    hook = _registry().get(webhook_id)
    if hook is None or hook.team != _team():
        abort(404, description=NOT_FOUND)
    return hook


def _events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(e, str) for e in value):
        abort(400, description=f"events must be a non-empty list of {', '.join(EVENTS)}")
    unknown = sorted(set(value) - set(EVENTS))
    if unknown:
        abort(400, description=f"unknown event {unknown[0]!r}: events are {', '.join(EVENTS)}")
    return [e for e in EVENTS if e in value]


def webhook_json(hook: Webhook, registry: WebhookRegistry) -> dict[str, Any]:
    last = registry.deliveries(hook.id, limit=1)
    return {**hook.to_public(), "last_delivery": last[0].to_public() if last else None}


@blueprint.get("")
@require_admin
def list_webhooks() -> Any:
    registry = _registry()
    return jsonify(webhooks=[webhook_json(hook, registry) for hook in registry.of_team(_team())])


@blueprint.post("")
@require_admin
def create_webhook() -> Any:
    body = json_body('expected a JSON object {"url": "https://...", "events": ["result.done", ...]}')
    if set(body) - set(FIELDS):
        abort(400, description=f"unknown field {sorted(set(body) - set(FIELDS))[0]!r}: expected url and events")
    events = _events(body.get("events", list(EVENTS)))
    try:
        resolve(body.get("url"), services().settings.web.webhooks_allow_private)
    except RefusedUrl as exc:
        abort(400, description=str(exc))
    user = g.principal.user
    try:
        hook = _registry().add(user.team, body["url"], events, user.username)
    except TooManyWebhooks as exc:
        abort(409, description=str(exc))
    log.info("admin %s added webhook %s for team %s", user.username, hook.id, user.team)
    return jsonify({**hook.to_public(), "secret": hook.secret}), 201


@blueprint.delete("/<webhook_id>")
@require_admin
def remove_webhook(webhook_id: str) -> Any:
    hook = _own(webhook_id)
    if not _registry().remove(hook.id):  # removed meanwhile
        abort(404, description=NOT_FOUND)
    log.info("admin %s removed webhook %s of team %s", g.principal.user.username, hook.id, hook.team)
    return "", 204


@blueprint.get("/<webhook_id>/deliveries")
@require_admin
def webhook_deliveries(webhook_id: str) -> Any:
    hook = _own(webhook_id)
    return jsonify(deliveries=[d.to_public() for d in _registry().deliveries(hook.id)])
