"""``create_app(settings)``: the team web (REST API, Socket.IO, dashboard) as a Flask app.

The web reads results through the daemon's store and submits uploads through the daemon's
intake; it never reaches the other way. Dependencies can be passed in (tests do), else they are
built from the settings; the web needs a Redis URL (``teamocr run`` passes its embedded one).
"""

from __future__ import annotations

import logging
from typing import Any

import socketio as sio
from flask import Flask
from flask_socketio import SocketIO
from werkzeug.middleware.proxy_fix import ProxyFix

from config.settings import Settings
from daemon.intake.dedupe import Intake, file_md5
from daemon.private import private_dir
from daemon.queue.redisconn import client_for
from daemon.results.events import SOCKETIO_CHANNEL
from daemon.results.store import STORE_NAME, SqliteStore
from daemon.results.teams import TeamMap
from daemon.webhooks.registry import WebhookRegistry
from web import (
    api,
    auth,
    dashboard,
    health,
    http_errors,
    keys_api,
    layout_api,
    lifecycle_api,
    limits,
    models_api,
    ocr_api,
    sockets,
    uploads,
    users_api,
    webhooks_api,
)
from web.accounts import AccountStore
from web.api_keys import ApiKeyStore
from web.headers import init_app as init_headers
from web.offload import native_lock, offload_for
from web.render_slots import RenderSlots
from web.services import EXTENSION, Services
from web.tokens import TokenService, load_secret

log = logging.getLogger(__name__)

ACCOUNTS_NAME = "accounts.sqlite3"


def create_app(
    settings: Settings, *, redis_url: str | None = None, async_mode: str = "threading", **overrides: Any
) -> tuple[Flask, SocketIO]:
    """Build the app and its Socket.IO server. ``overrides`` replace built services by name.

    ``async_mode`` is how the app will be served: "threading" for any threaded WSGI server (what
    tests embed), "gevent" only in a process gevent has patched (:mod:`cli.webserver`)."""
    url = redis_url or settings.redis_url
    if not url:
        raise ValueError("the web needs a Redis URL: set redis_url or start it with `teamocr run`")
    private_dir(settings.data_dir, tighten=False)  # made 0700; a folder the operator chose is left as it is
    client = overrides.pop("redis", None) or client_for(url)
    teams = TeamMap.from_spec(settings.teams.channels, settings.teams.default_team)  # also the dedup scopes
    offload = offload_for(async_mode)
    store = overrides.pop("store", None)
    pool_store = None
    if store is None and async_mode == "gevent":
        pool_store = SqliteStore(settings.data_dir / STORE_NAME, lock=native_lock())
    built = Services(
        settings=settings,
        redis=client,
        redis_url=url,
        store=store or SqliteStore(settings.data_dir / STORE_NAME),
        pool_store=pool_store,
        accounts=overrides.pop("accounts", None)
        or AccountStore(settings.data_dir / ACCOUNTS_NAME, run_blocking=offload.run),
        tokens=overrides.pop("tokens", None) or TokenService(settings.web, load_secret(settings), client),
        teams=teams,
        intake=overrides.pop("intake", None)
        or Intake(
            client,
            settings.engine.max_file_bytes,
            teams=teams,
            hasher=lambda path: offload.run(file_md5, path),
            channel_engine=settings.channel_engine,
        ),
        api_keys=overrides.pop("api_keys", None) or ApiKeyStore(settings.data_dir / ACCOUNTS_NAME),
        webhooks=overrides.pop("webhooks", None) or WebhookRegistry.for_data_dir(settings.data_dir),
        offload=offload,
        renders=RenderSlots(settings.web.user_renders_at_once),
    )
    training = overrides.pop("training", None)  # web.training.TrainingCommands (tests use tiny runs)
    if overrides:
        raise TypeError(f"unknown services: {', '.join(sorted(overrides))}")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.web.max_request_bytes
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = built
    http_errors.init_app(app)
    init_headers(app)  # nosniff everywhere; no-store on the API, exports, /healthz, /metrics
    limits.init_app(app, url, settings.web)
    for module in (
        auth,
        api,
        uploads,
        health,
        dashboard,
        users_api,
        keys_api,
        ocr_api,
        lifecycle_api,
        webhooks_api,
        layout_api,
    ):
        app.register_blueprint(module.blueprint)
    socketio = SocketIO(
        app,
        async_mode=async_mode,
        client_manager=sio.RedisManager(url, channel=SOCKETIO_CHANNEL),
    )
    built.socketio = socketio
    models_api.init_app(app, training)
    sockets.init_socketio(socketio)
    hops = settings.web.trusted_proxies
    if hops < 0:
        raise ValueError(f"web.trusted_proxies must be 0 (no proxy) or more, got {hops}")
    if hops:  # outermost, so Socket.IO's requests get the client's address and scheme too
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    return app, socketio
