"""Socket.IO for the dashboard: who may connect, which rooms they join, when they are cut off.

A browser connects with ``io({auth: {token}})``. The access token is checked in ``connect(auth)``
(refused with ``ConnectionRefusedError("unauthorized: <reason>")``); an accepted connection joins
its principal's rooms (``team:<team>``, plus ``team:*default*`` for the default team). Results
reach those rooms from the daemon's write-only emitter through the Redis message queue that
``create_app`` configured, so nothing here relays them.

A connection outlives the token it was opened with, so every client event checks the token's
expiry; past it, the server sends ``error`` ``{"error": "token expired"}`` and disconnects. A
client that refreshed its token sends ``renew`` ``{"token"}`` to extend the connection.
Expiry times are kept per connection (``request.sid``) in :class:`SocketSessions`, not in the
Flask session (the threading server has no cookie session on the socket).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import request
from flask_socketio import ConnectionRefusedError, SocketIO, disconnect, emit, join_room

from web.auth import Principal, principal_for
from web.services import services
from web.tokens import TokenError
from web.training import admin_room

log = logging.getLogger(__name__)

EXPIRED = {"error": "token expired"}


@dataclass(frozen=True)
class SocketSession:
    """What a connection was admitted as: the user, their rooms, and when their token expires."""

    username: str
    rooms: tuple[str, ...]
    exp: float


class SocketSessions:
    """Connections by ``request.sid``; handlers run on many threads, so every access is locked."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, SocketSession] = {}
        self.clock = clock

    def add(self, sid: str, session: SocketSession) -> None:
        with self._lock:
            self._by_sid[sid] = session

    def get(self, sid: str) -> SocketSession | None:
        with self._lock:
            return self._by_sid.get(sid)

    def drop(self, sid: str) -> None:
        with self._lock:
            self._by_sid.pop(sid, None)

    def expired(self, sid: str) -> bool:
        """True when ``sid`` is unknown or its token has expired."""
        session = self.get(sid)
        return session is None or self.clock() >= session.exp

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_sid)


def _principal(token: Any) -> Principal:
    if not isinstance(token, str) or not token:
        raise TokenError("missing token (connect with auth: {token: <access token>})")
    return principal_for(services().tokens.verify(token, "access"))


def init_socketio(socketio: SocketIO) -> SocketSessions:
    """Register the handlers on ``socketio``; returns the connection registry (tests read it)."""
    sessions = SocketSessions()

    def checked(handler: Callable[..., Any]) -> Callable[..., Any]:
        """Run ``handler`` only while the connection's token is valid; else say so and disconnect."""

        @functools.wraps(handler)
        def wrapper(*args: Any) -> Any:
            sid = request.sid  # type: ignore[attr-defined]
            if sessions.expired(sid):
                emit("error", EXPIRED)
                disconnect()
                return EXPIRED
            return handler(*args)

        return wrapper

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = _principal(token)
        except TokenError as exc:
            log.info("socket refused: %s", exc)
            raise ConnectionRefusedError(f"unauthorized: {exc}") from None
        for room in principal.rooms:
            join_room(room)
        if principal.user.is_admin:
            join_room(admin_room(principal.user.team))  # fine-tune progress (web.training)
        sid = request.sid  # type: ignore[attr-defined]
        sessions.add(
            sid, SocketSession(principal.user.username, tuple(principal.rooms), float(principal.claims["exp"]))
        )
        log.debug("socket %s: %s joined %s", sid, principal.user.username, principal.rooms)

    @socketio.on("disconnect")
    def on_disconnect(reason: Any = None) -> None:
        sessions.drop(request.sid)  # type: ignore[attr-defined]

    @socketio.on("ping")
    @checked
    def on_ping(_data: Any = None) -> dict[str, Any]:
        session = sessions.get(request.sid)  # type: ignore[attr-defined]
        return {"ok": True, "exp": session.exp if session else None}

    @socketio.on("subscribe")
    @checked
    def on_subscribe(_data: Any = None) -> dict[str, Any]:
        """A no-op that acknowledges the rooms this connection receives results in."""
        session = sessions.get(request.sid)  # type: ignore[attr-defined]
        return {"rooms": list(session.rooms) if session else []}

    @socketio.on("renew")
    @checked
    def on_renew(data: Any = None) -> dict[str, Any]:
        """Extend the connection with a refreshed access token of the same user."""
        sid = request.sid  # type: ignore[attr-defined]
        current = sessions.get(sid)
        try:
            principal = _principal(data.get("token") if isinstance(data, dict) else None)
        except TokenError as exc:
            return {"error": str(exc)}
        if current is None or principal.user.username != current.username:
            return {"error": "the token belongs to another user"}
        sessions.add(sid, SocketSession(current.username, current.rooms, float(principal.claims["exp"])))
        return {"ok": True, "exp": float(principal.claims["exp"])}

    @socketio.on("*")
    @checked
    def on_other(event: str, _data: Any = None) -> dict[str, Any]:
        return {"error": f"unknown event {event!r}"}

    return sessions
