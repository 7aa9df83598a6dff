"""A result's life after its first reading: retry a failure, read again, see earlier readings, delete.

``POST   /api/v1/results/<id>/retry``     a failed result queued again (a member of its team)
``POST   /api/v1/reprocess``              admins: ``{"ids": [...]}``, or ``{"channel", "since", "until"}``
                                          (either may be left out), or ``{"all": true}``: the team's
                                          done results read again with the current model and their
                                          channel's settings (failed ones retried); each old reading
                                          is kept as a version
``GET    /api/v1/results/<id>/versions``  the earlier readings, newest first
``DELETE /api/v1/results/<id>``           admins: the result, its corrections, versions and output
                                          files; its source file only with
                                          ``daemon.retention_delete_sources``

Jobs go through the records stream and the jobs stream as the intake's do (the recorder applies
the records in order, the worker reads the file, checking its size and MD5 first). Another team's
id answers 404 like an unknown one.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from flask import Blueprint, abort, g, jsonify

from daemon.queue.streams import JOBS, SEEN, Job, add_record, md5_key, rereading_key
from daemon.records import RequeuedMessage, ResultRecord, Status
from daemon.results.recorder import delete_source
from daemon.results.store import MAX_LIMIT, ResultStore
from daemon.results.teams import ChannelScope
from daemon.worker.outputs import remove_outputs
from web.api import visible_record
from web.auth import require_admin, require_auth
from web.bodies import json_body
from web.budgets import BudgetExceeded, check_waiting
from web.services import services
from web.uploads import budget_refusal

blueprint = Blueprint("lifecycle", __name__, url_prefix="/api/v1")

MAX_REPROCESS = 10_000  # results one reprocess call may queue
REREAD_MARK_SECONDS = 86400  # a result being read again is not queued again for this long (or until read)
DELETED = "deleted"  # the status of the event that tells the team a result is gone


def job_of(rec: ResultRecord, reread: bool = False) -> Job:
    """The job that reads ``rec``'s file again (as intake made it, with its channel's settings now)."""
    settings = services().settings
    return Job(
        id=rec.id,
        md5=rec.md5,
        path=rec.path,
        raw_path=rec.raw_path,
        filename=rec.filename,
        channel=rec.channel,
        size=rec.size,
        created_at=rec.created_at,
        uploader=rec.uploader,
        engine=settings.channel_engine(rec.channel) or None,
        reread=reread,
    )


def _queue(recs: list[ResultRecord], by: str) -> list[str]:
    """Queue each of ``recs`` again: a failed one retried, a done one read again (once at a time:
    one already being read again is left out). The ids queued."""
    svc = services()
    try:
        fresh = [rec for rec in recs if rec.status != Status.DONE or _mark_rereading(svc.redis, rec.id)]
        pipe = svc.redis.pipeline(transaction=True)
        for rec in fresh:
            if rec.status == Status.FAILED:
                add_record(pipe, RequeuedMessage(type="requeued", id=rec.id, by=by))
                pipe.set(md5_key(rec.md5, rec.scope), rec.id, nx=True)  # it answers for its content again
            pipe.xadd(JOBS, {"job": job_of(rec, reread=rec.status == Status.DONE).to_json()})
        pipe.execute()
    except redis.RedisError:
        abort(503, description="the queue is unavailable; try again")
    return [rec.id for rec in fresh]


def _mark_rereading(client: redis.Redis, result_id: str) -> bool:
    """Note that ``result_id`` is being read again; False when it already is (the recorder clears
    the mark when the new reading is stored; it lapses after a day)."""
    return bool(client.set(rereading_key(result_id), "1", nx=True, ex=REREAD_MARK_SECONDS))


@blueprint.post("/results/<result_id>/retry")
@require_auth
def retry(result_id: str) -> Any:
    rec = visible_record(result_id)
    if rec.status != Status.FAILED:
        abort(409, description=f"only a failed result is retried (this one is {rec.status})")
    if not rec.md5:
        abort(409, description=f"it failed before it was read ({rec.error}); drop the file again")
    primary = services().store.by_md5(rec.md5, rec.scope)
    if primary is not None and primary.id != rec.id:
        abort(409, description=f"its content was dropped again and read since, as result {primary.id}")
    _queue([rec], g.principal.user.username)
    return jsonify(id=rec.id, status="queued"), 202


@blueprint.post("/reprocess")
@require_admin
def reprocess() -> Any:
    body = json_body()
    svc = services()
    principal = g.principal
    recs = svc.offload.run(_chosen, body, principal.scope, svc.reads)
    readable = [rec for rec in recs if rec.md5 and rec.status in (Status.DONE, Status.FAILED)]
    settings = svc.settings.web
    if settings.team_queued_jobs > 0:
        waiting = svc.offload.run(svc.reads.waiting, principal.scope)
        try:
            check_waiting(len(readable), 0, waiting, principal.user.username, principal.user.team, settings)
        except BudgetExceeded as exc:
            return budget_refusal(exc)
    ids = _queue(readable, principal.user.username)
    return jsonify(queued=len(ids), ids=ids, skipped=len(recs) - len(ids)), 202


def _chosen(body: dict[str, Any], scope: ChannelScope, store: ResultStore) -> list[ResultRecord]:
    """The team's results ``body`` names: ids, or a channel and time range, or all (at most
    :data:`MAX_REPROCESS`, newest first). Runs off the event loop."""
    if "ids" in body:
        ids = body["ids"]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > MAX_REPROCESS:
            abort(400, description=f"ids must be a list of at most {MAX_REPROCESS} result ids")
        found = [store.get(i) for i in dict.fromkeys(ids)]
        return [rec for rec in found if rec is not None and scope.allows(rec.channel)]
    filters: dict[str, Any] = {}
    if "channel" in body:
        if not isinstance(body["channel"], str):
            abort(400, description="channel must be a string")
        filters["channel"] = body["channel"]
    for name in ("since", "until"):
        if name in body:
            if isinstance(body[name], bool) or not isinstance(body[name], int | float):
                abort(400, description=f"{name} must be epoch seconds")
            filters[name] = float(body[name])
    if not filters and body.get("all") is not True:
        abort(400, description='name the results: "ids", or "channel"/"since"/"until", or "all": true')
    chosen: list[ResultRecord] = []
    while len(chosen) < MAX_REPROCESS:
        page = store.list(limit=MAX_LIMIT, offset=len(chosen), scope=scope, **filters)
        chosen.extend(page)
        if len(page) < MAX_LIMIT:
            break
    return chosen[:MAX_REPROCESS]


@blueprint.get("/results/<result_id>/versions")
@require_auth
def versions(result_id: str) -> Any:
    rec = visible_record(result_id)
    return jsonify(id=rec.id, items=services().store.readings(rec.id))


@blueprint.delete("/results/<result_id>")
@require_admin
def delete(result_id: str) -> Any:
    rec = visible_record(result_id)
    svc = services()
    gone = svc.store.delete(rec.id)
    if gone is None:
        abort(404, description="result not found")
    outputs = svc.offload.run(remove_outputs, svc.settings.data_dir / "outputs", rec.id)
    source = False
    try:
        if rec.md5 and svc.redis.get(md5_key(rec.md5, rec.scope)) == rec.id:
            svc.redis.delete(md5_key(rec.md5, rec.scope))
        if svc.settings.daemon.retention_delete_sources and rec.status != Status.DUPLICATE:
            source = delete_source(svc.settings.shared_dir, rec.disk_path, rec.md5)
            if source:
                svc.redis.hdel(SEEN, rec.path)
        _announce(rec)
    except redis.RedisError:
        pass  # the row is gone; a stale claim only makes the same content a duplicate of nothing
    return jsonify(id=rec.id, deleted=True, outputs_removed=outputs, source_deleted=source)


def _announce(rec: ResultRecord) -> None:
    """Tell the team's dashboards the result is gone (a ``result`` event with status "deleted")."""
    svc = services()
    if svc.socketio is None:
        return
    room = svc.teams.room_of(rec.channel)
    svc.socketio.emit("result", {"id": rec.id, "channel": rec.channel, "status": DELETED, "at": time.time()}, to=room)
