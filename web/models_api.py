"""Admin API for model versions and fine-tuning (every view needs an admin token).

``GET  /api/v1/models``            the versions the caller's team may see and the current one
``POST /api/v1/models/current``    ``{"version"}``: the workers switch to it between jobs (operators)
``POST /api/v1/training``          ``{"kind": "rec", "source": "corrections"}``: queue a fine-tune job
``GET  /api/v1/training``          the team's latest job
``GET  /api/v1/training/<id>``     one job's state (its progress also arrives over Socket.IO)

Every worker of every team uses the one current version, so switching it is the operators' right,
not a team admin's. A team admin sees the packaged versions and their own team's (made by their
team's fine-tune jobs); versions made on the command line without ``--team`` are the operators'.
Another team's version or job is as unknown as one that does not exist (404).
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Blueprint, Flask, abort, current_app, g, jsonify

from daemon.versions.registry import ModelRegistry, ModelVersion, ModelVersionError, current_version, use_version
from web.auth import require_admin, require_operator
from web.bodies import json_body
from web.services import services
from web.training import KINDS, SOURCES, TrainingBusy, TrainingCommands, TrainingJobs

log = logging.getLogger(__name__)

blueprint = Blueprint("models", __name__, url_prefix="/api/v1")

EXTENSION = "teamocr.training"


def init_app(app: Flask, commands: TrainingCommands | None = None) -> TrainingJobs:
    """Attach the fine-tune job runner (``commands`` configures the commands it starts)."""
    svc = services(app)

    def emit(event: str, payload: dict[str, Any], room: str) -> None:
        if svc.socketio is not None:
            svc.socketio.emit(event, payload, to=room)

    jobs = TrainingJobs(svc.redis, svc.settings, svc.redis_url, emit, commands, first_team=svc.accounts.first_team)
    try:
        if jobs.recover():
            log.warning("fine-tune jobs of an earlier run were left unfinished; marked failed")
    except redis.RedisError as exc:  # Redis not up yet: the stale state just stays
        log.warning("cannot check for unfinished fine-tune jobs: %s", exc)
    app.extensions[EXTENSION] = jobs
    app.register_blueprint(blueprint)
    return jobs


def training_jobs(app: Flask | None = None) -> TrainingJobs:
    """The app's fine-tune job runner (default: the current app's)."""
    return (app or current_app).extensions[EXTENSION]


def _registry() -> ModelRegistry:
    return ModelRegistry.for_data_dir(services().settings.data_dir)


def _viewer() -> str | None:
    """The team whose versions the caller sees; None for an operator, who sees them all."""
    user = g.principal.user
    return None if user.is_operator else str(user.team)


def public(version: ModelVersion) -> dict[str, Any]:
    """A version as clients see it: no server paths."""
    item = version.to_dict()
    for key in ("det", "rec", "charset", "det_checkpoint", "rec_checkpoint"):
        if item[key] is not None:
            item[key] = item[key].rsplit("/", 1)[-1]
    parity = item["metrics"].get("parity")
    if isinstance(parity, dict):
        for figures in parity.values():
            if isinstance(figures, dict) and "onnx" in figures:
                figures["onnx"] = str(figures["onnx"]).rsplit("/", 1)[-1]
    return item


@blueprint.get("/models")
@require_admin
def list_models() -> Any:
    svc = services()
    return jsonify(
        # the name only: every team's results record it anyway (one version reads every team's files)
        current=current_version(svc.redis, svc.settings.engine.model_set),
        versions=[public(v) for v in _registry().visible(_viewer())],
        can_switch=bool(g.principal.user.is_operator),
    )


@blueprint.post("/models/current")
@require_operator
def set_current() -> Any:
    name = json_body().get("version")
    if not isinstance(name, str) or not name:
        abort(400, description="version (string) is required")
    registry = _registry()
    try:
        registry.get(name, _viewer())
    except ModelVersionError as exc:
        abort(404, description=str(exc))
    try:
        version = use_version(services().redis, registry, name)
    except ModelVersionError as exc:  # registered, but its files are broken
        abort(409, description=str(exc))
    log.info("operator %s switched the model to %s", g.principal.user.username, name)
    return jsonify(current=version.version)


@blueprint.post("/training")
@require_admin
def start_training() -> Any:
    body = json_body()
    kind, source = body.get("kind", "rec"), body.get("source", "corrections")
    if kind not in KINDS:
        abort(400, description=f"kind must be one of {list(KINDS)}")
    if source not in SOURCES:
        abort(400, description=f"source must be one of {list(SOURCES)}")
    user = g.principal.user
    try:
        state = training_jobs().start(user.team, user.username, kind, source)
    except TrainingBusy as exc:
        abort(409, description=str(exc))
    return jsonify(state), 202


@blueprint.get("/training")
@require_admin
def latest_training() -> Any:
    state = training_jobs().latest(g.principal.user.team)
    return jsonify(job=state)


@blueprint.get("/training/<job_id>")
@require_admin
def get_training(job_id: str) -> Any:
    state = training_jobs().get(job_id)
    if state is None or state.get("team") != g.principal.user.team:  # another team's: unknown
        abort(404, description="training job not found")
    return jsonify(state)
