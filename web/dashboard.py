"""The dashboard: one page (``GET /``) whose vanilla JavaScript talks to the REST API and Socket.IO.

The page comes from ``templates/index.html``; its script, styles and the vendored Socket.IO client
are in ``web/static``, which the app (``Flask(__name__)`` in ``web.app``) serves at ``/static``. Nothing
is loaded from elsewhere, and the page's Content-Security-Policy says so: scripts and styles only
from this origin and never inline, images also as ``blob:`` (result images are fetched with the
token and shown from blob URLs), and connections (fetch, Socket.IO's WebSocket) only to this origin:
``'self'`` plus ``ws://`` and ``wss://`` of the very host the page was asked from, never any
WebSocket server. Results are inserted as text, never as HTML, by the script.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, make_response, render_template, request

blueprint = Blueprint("dashboard", __name__, template_folder="templates")

CSP_BEFORE_CONNECT = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
]
CSP_AFTER_CONNECT = [
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]
# host, host:port, [v6]:port: what a CSP host source may be; a Host header of any other shape
# gets no WebSocket source at all ('self' still covers same-origin WebSockets in CSP 3 browsers).
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def csp_for(host: str) -> str:
    """The page's Content-Security-Policy when it was asked for at ``host`` (the Host header)."""
    connect = "connect-src 'self'"
    if _HOST.fullmatch(host):
        connect += f" ws://{host} wss://{host}"
    return "; ".join([*CSP_BEFORE_CONNECT, connect, *CSP_AFTER_CONNECT])


@blueprint.get("/")
def index() -> Response:
    """The single-page app; it holds no data, so it is served without authentication."""
    response = make_response(render_template("index.html"))
    response.headers["Content-Security-Policy"] = csp_for(request.host)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response
