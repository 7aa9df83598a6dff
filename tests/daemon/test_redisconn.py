"""The embedded Redis: a second opener joins the running server and leaves it running."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from daemon.queue.redisconn import open_redis


def test_closing_a_joined_embedded_server_leaves_it_running(tmp_path: Path) -> None:
    first = open_redis(None, tmp_path)
    try:
        first.client.set("k", "v")
        second = open_redis(None, tmp_path)
        assert second.url == first.url
        second.close()
        assert first.client.get("k") == "v"  # still up for the process that started it
    finally:
        first.close()
    with pytest.raises(redis.ConnectionError):
        redis.Redis(unix_socket_path=first.url.removeprefix("unix://"), socket_connect_timeout=1).ping()
