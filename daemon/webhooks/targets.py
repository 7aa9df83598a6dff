"""Where a webhook may POST: http(s) URLs whose host resolves to public addresses only.

A webhook URL is checked when it is registered and again at every delivery (a name may resolve
elsewhere later: DNS rebinding), and the POST goes to the very address that was checked. Private,
loopback, link-local, multicast, reserved and unspecified addresses are refused unless the
deployment allows them (``web.webhooks_allow_private``, for a receiver on the LAN).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from daemon.webhooks.errors import RefusedUrl

MAX_URL_CHARS = 2000
SCHEMES = {"http": 80, "https": 443}

# The kinds of address refused, the most telling first (a loopback address is private too).
_KINDS = (
    ("loopback", "a loopback address"),
    ("link_local", "a link-local address"),
    ("multicast", "a multicast address"),
    ("unspecified", "the unspecified address"),
    ("reserved", "a reserved address"),
    ("private", "a private address"),
)
Resolver = Callable[..., list[tuple[Any, ...]]]  # socket.getaddrinfo's shape


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for there."""

    url: str
    scheme: str
    host: str  # as written (the Host header, TLS server name)
    port: int
    target: str  # path and query
    address: str  # the checked IP address the POST goes to


def parse_url(url: Any) -> tuple[str, str, int, str]:
    """(scheme, host, port, path+query) of a webhook URL; :class:`RefusedUrl` for anything else."""
    if not isinstance(url, str) or not url:
        raise RefusedUrl(str(url), "url must be a non-empty string")
    if len(url) > MAX_URL_CHARS:
        raise RefusedUrl(url[:80], f"it has {len(url)} characters, over the limit of {MAX_URL_CHARS}")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise RefusedUrl(url, "it holds spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedUrl(url, f"it is not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise RefusedUrl(url, f"only http and https URLs are sent to, not {parts.scheme or 'none'!r}")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl(url, "user names and passwords in the URL are not sent; put a token in the path")
    host = parts.hostname or ""
    if not host:
        raise RefusedUrl(url, "it names no host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or SCHEMES[scheme], target


def forbidden(address: str) -> str | None:
    """Why ``address`` may not be sent to without ``webhooks_allow_private``, else None."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag, what in _KINDS:
        if getattr(ip, f"is_{flag}"):
            return what
    if not ip.is_global:
        return "not a public address"
    return None


def resolve(url: Any, allow_private: bool, resolver: Resolver = socket.getaddrinfo) -> Target:
    """Check ``url`` and the addresses its host resolves to (every one must be allowed); the
    :class:`Target` names the first. :class:`RefusedUrl` says why not."""
    scheme, host, port, target = parse_url(url)
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RefusedUrl(url, f"its host {host!r} does not resolve ({exc})") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise RefusedUrl(url, f"its host {host!r} has no address")
    if not allow_private:
        for address in addresses:
            why = forbidden(address)
            if why is not None:
                raise RefusedUrl(
                    url,
                    f"its host {host!r} resolves to {address}, {why} (set web.webhooks_allow_private "
                    "to send to the local network)",
                )
    return Target(url, scheme, host, port, target, addresses[0])
