"""The dashboard: one page (``GET /``) whose vanilla JavaScript talks to the REST API and Socket.IO.

The page comes from ``templates/index.html``; its script, styles and the vendored Socket.IO client
are in ``web/static``, which the app (``Flask(__name__)`` in ``web.app``) serves at ``/static``. Nothing
is loaded from elsewhere, and the page's Content-Security-Policy says so: scripts and styles only
from this origin and never inline, images also as ``blob:`` (result images are fetched with the
token and shown from blob URLs). Results are inserted as text, never as HTML, by the script.
"""

from __future__ import annotations

from flask import Blueprint, Response, make_response, render_template

blueprint = Blueprint("dashboard", __name__, template_folder="templates")

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


@blueprint.get("/")
def index() -> Response:
    """The single-page app; it holds no data, so it is served without authentication."""
    response = make_response(render_template("index.html"))
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response
