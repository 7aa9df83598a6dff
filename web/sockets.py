"""Socket.IO for the dashboard: who may connect, which rooms they join, when they are cut off.

A browser connects with ``io({auth: {token}})``. The access token is checked in ``connect(auth)``
(refused with ``ConnectionRefusedError("unauthorized: <reason>")``); an accepted connection joins
its principal's rooms (``team:<team>``, plus ``team:*default*`` for the default team). Results
reach those rooms from the daemon's write-only emitter through the Redis message queue that
``create_app`` configured, so nothing here relays them.

A connection outlives the token it was opened with, so every client event checks the token's
expiry, and a background sweep (every :data:`SWEEP_SECONDS`, while any connection is open) cuts
the connections whose token expired (:data:`EXPIRY_GRACE` after) or was revoked (logout, a
reused refresh token, a password, role or state change of the account, its removal) without
waiting for the client to speak: the server sends ``error`` ``{"error": "<why>"}`` (``"token
expired"``, ``"token revoked"``, ...) and disconnects. A client that refreshed its token sends
``renew`` ``{"token"}`` to extend the connection. Expiry times and claims are kept per
connection (``request.sid``) in :class:`SocketSessions`, not in the Flask session (the threading
server has no cookie session on the socket).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import request
from flask_socketio import ConnectionRefusedError, SocketIO, disconnect, emit, join_room

from web.accounts import User
from web.auth import Principal, principal_for
from web.services import Services, services
from web.tokens import TokenError, check_user
from web.training import admin_room

log = logging.getLogger(__name__)

EXPIRED = {"error": "token expired"}
SWEEP_SECONDS = 2.0  # how often the open connections are checked
# An expired token's connection is cut by the sweep this long after its expiry (an event of the
# client's cuts it at once): a client renewing right at expiry is not cut in the middle of it.
EXPIRY_GRACE = 2.0


@dataclass(frozen=True)
class SocketSession:
    """What a connection was admitted as: the user, their rooms, when their token expires, and
    the token's claims (the sweep checks them for revocation)."""

    username: str
    rooms: tuple[str, ...]
    exp: float
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class SocketSessions:
    """Connections by ``request.sid``; handlers run on many threads, so every access is locked."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, SocketSession] = {}
        self._sweeping = False
        self.clock = clock

    def add(self, sid: str, session: SocketSession) -> bool:
        """Register ``sid``; True when no sweep is running, so the caller must start one."""
        with self._lock:
            self._by_sid[sid] = session
            start, self._sweeping = not self._sweeping, True
            return start

    def items(self) -> list[tuple[str, SocketSession]]:
        with self._lock:
            return list(self._by_sid.items())

    def keep_sweeping(self) -> bool:
        """False, and the sweep counts as stopped, once no connection is left (the next
        :meth:`add` asks for a new one): an idle server runs no sweep."""
        with self._lock:
            self._sweeping = bool(self._by_sid)
            return self._sweeping

    def stop_sweeping(self) -> None:
        with self._lock:
            self._sweeping = False

    def get(self, sid: str) -> SocketSession | None:
        with self._lock:
            return self._by_sid.get(sid)

    def drop(self, sid: str, only: SocketSession | None = None) -> bool:
        """Forget ``sid`` (when given, only while it is still the session ``only``: a renew in
        between wins). True when this call removed it, so only one caller says why it is cut."""
        with self._lock:
            current = self._by_sid.get(sid)
            if current is None or (only is not None and current is not only):
                return False
            del self._by_sid[sid]
            return True

    def take_expired(self, sid: str) -> bool:
        """Forget ``sid`` and return True when its token has expired (one caller wins)."""
        with self._lock:
            session = self._by_sid.get(sid)
            if session is None or self.clock() < session.exp:
                return False
            del self._by_sid[sid]
            return True

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


def sweep(sessions: SocketSessions, svc: Services) -> list[tuple[str, SocketSession, str]]:
    """``(sid, session, reason)`` of every connection whose token expired or was revoked, or whose
    user was removed, disabled or changed since; one Redis round trip and one account read per user."""
    now = sessions.clock()
    cut: list[tuple[str, SocketSession, str]] = []
    live: list[tuple[str, SocketSession]] = []
    for sid, session in sessions.items():
        if now >= session.exp + EXPIRY_GRACE:
            cut.append((sid, session, EXPIRED["error"]))
        elif session.claims:
            live.append((sid, session))
    unrevoked = svc.tokens.check_many([session.claims for _, session in live]) if live else []
    users: dict[str, User | None] = {}
    for (sid, session), ok in zip(live, unrevoked, strict=True):
        if not ok:
            cut.append((sid, session, "token revoked"))
            continue
        if session.username not in users:
            users[session.username] = svc.accounts.get(session.username)
        try:
            check_user(session.claims, users[session.username])
        except TokenError as exc:
            cut.append((sid, session, str(exc)))
    return cut


def init_socketio(socketio: SocketIO, sweep_seconds: float = SWEEP_SECONDS) -> SocketSessions:
    """Register the handlers on ``socketio``; returns the connection registry (tests read it)."""
    sessions = SocketSessions()

    def sweeper(svc: Services) -> None:
        """Cut connections whose token ended, every ``sweep_seconds`` while any is open."""
        try:
            while sessions.keep_sweeping():
                socketio.sleep(sweep_seconds)
                try:
                    for sid, session, reason in sweep(sessions, svc):
                        if sessions.drop(sid, only=session):
                            log.info("socket %s of %s cut: %s", sid, session.username, reason)
                            socketio.emit("error", {"error": reason}, to=sid)
                            socketio.server.disconnect(sid, namespace="/")
                except Exception:  # a dead sweep would leave revoked sockets open: log, go on
                    log.exception("socket sweep failed")
        except BaseException:  # stopped from outside (the server's shutdown): the next connection starts one
            sessions.stop_sweeping()
            raise

    def admit(sid: str, session: SocketSession) -> None:
        if sessions.add(sid, session):
            socketio.start_background_task(sweeper, services())

    def checked(handler: Callable[..., Any]) -> Callable[..., Any]:
        """Run ``handler`` only while the connection's token is valid; else say so and disconnect."""

        @functools.wraps(handler)
        def wrapper(*args: Any) -> Any:
            sid = request.sid  # type: ignore[attr-defined]
            if sessions.take_expired(sid):
                emit("error", EXPIRED)
                disconnect()
                return EXPIRED
            if sessions.get(sid) is None:  # the sweep is cutting it and says why
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
        admit(
            sid,
            SocketSession(
                principal.user.username, tuple(principal.rooms), float(principal.claims["exp"]), principal.claims
            ),
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
        admit(sid, SocketSession(current.username, current.rooms, float(principal.claims["exp"]), principal.claims))
        return {"ok": True, "exp": float(principal.claims["exp"])}

    @socketio.on("*")
    @checked
    def on_other(event: str, _data: Any = None) -> dict[str, Any]:
        return {"error": f"unknown event {event!r}"}

    return sessions
