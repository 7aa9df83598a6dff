"""One webhook POST: to the address :mod:`daemon.webhooks.targets` checked, never redirected.

http.client rather than urllib or requests: it follows no redirect by itself, and connecting to
the checked address (while the Host header and the TLS server name stay the URL's host) is one
small ``connect``; nothing is installed for it.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass

from daemon.webhooks.targets import Target

MAX_ANSWER = 4096  # bytes of the answer read (for the log), the rest is not waited for


@dataclass(frozen=True)
class Answer:
    """The receiver's answer: its status and the start of its body."""

    status: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to ``address``, speaking to ``host`` (Host header, TLS server name)."""

    def __init__(self, target: Target, timeout: float, tls: ssl.SSLContext | None) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.default_port = 443 if tls is not None else 80  # a Host header without the usual port
        self._address = target.address
        self._tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host) if self._tls is not None else sock


def post(
    target: Target, body: bytes, headers: dict[str, str], timeout: float, tls: ssl.SSLContext | None = None
) -> Answer:
    """POST ``body``; the answer, whatever its status (a redirect is an answer, not followed).
    ``tls``: the certificates an https receiver is checked against (default: the system's).
    Raises ``OSError`` (refused, timed out, TLS) and ``http.client.HTTPException``."""
    tls = (tls or ssl.create_default_context()) if target.scheme == "https" else None
    conn = _PinnedConnection(target, timeout, tls)
    try:
        conn.request("POST", target.target, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read(MAX_ANSWER).decode("utf-8", "replace")
        return Answer(response.status, text)
    finally:
        conn.close()
