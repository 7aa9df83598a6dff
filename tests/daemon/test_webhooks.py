"""Webhooks in the daemon: URL checks (SSRF), the durable queue, the deliverer against a real local
HTTP receiver that is down and comes back, signatures, the log, and the recorder's events."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from daemon.queue.redisconn import RedisHandle
from daemon.queue.streams import RECORDER_GROUP, RECORDS, WEBHOOK_EVENTS, add_record
from daemon.results.events import LatestCache
from daemon.results.recorder import Recorder
from daemon.results.store import SqliteStore
from daemon.results.teams import TeamMap
from daemon.webhooks import signing
from daemon.webhooks.deliverer import Deliverer
from daemon.webhooks.errors import RefusedUrl
from daemon.webhooks.queue import DELIVERIES, DUE, Outbox
from daemon.webhooks.registry import WebhookRegistry
from daemon.webhooks.targets import resolve
from tests.daemon.servicekit import embedded_redis
from tests.daemon.webhookkit import Receiver

TEAMS = TeamMap.from_spec("finance=alpha, sales=beta", "alpha")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[RedisHandle]:
    with embedded_redis(tmp_path / "redis") as handle:
        yield handle


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[WebhookRegistry]:
    registry = WebhookRegistry.for_data_dir(tmp_path / "data")
    yield registry
    registry.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


def deliverer(handle: RedisHandle, registry: WebhookRegistry, clock: Clock, **kwargs: Any) -> Deliverer:
    return Deliverer(
        handle.client,
        registry,
        lambda channel: TEAMS.team_of(channel, lambda: None),
        allow_private=True,
        retry_delays=kwargs.pop("retry_delays", (5, 30, 120)),
        clock=clock,
        **kwargs,
    )


def item(result_id: str, channel: str = "finance", status: str = "done") -> dict[str, Any]:
    return {"id": result_id, "channel": channel, "status": status, "filename": f"{result_id}.png", "text": "hi"}


# -- URLs -------------------------------------------------------------------------------------------


def fixed(*addresses: str) -> Any:
    return lambda host, port, **_: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("ftp://example.com/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("example.com/hook", "only http and https"),
        ("https://user:pw@example.com/", "passwords in the URL"),
        ("https:///nohost", "names no host"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://exa mple.com/", "spaces or control"),
        ("https://example.com/" + "a" * 2000, "over the limit of 2000"),
    ],
)
def test_urls_other_than_http_s_are_refused(url: str, cause: str) -> None:
    with pytest.raises(RefusedUrl, match=cause):
        resolve(url, allow_private=True, resolver=fixed("93.184.216.34"))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        ("::1", "loopback"),
        ("fd00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ],
)
def test_private_addresses_are_refused_unless_allowed(address: str, kind: str) -> None:
    with pytest.raises(RefusedUrl, match=kind):
        resolve("https://hooks.example.com/x", allow_private=False, resolver=fixed(address))
    # any one bad address of several is enough (a name can resolve to both)
    with pytest.raises(RefusedUrl, match=kind):
        resolve("https://hooks.example.com/x", allow_private=False, resolver=fixed("93.184.216.34", address))
    assert resolve("https://hooks.example.com/x", allow_private=True, resolver=fixed(address)).address == address


def test_a_public_address_is_taken_and_pinned() -> None:
    target = resolve("https://hooks.example.com:8443/in?team=a#frag", False, resolver=fixed("93.184.216.34"))
    assert (target.host, target.port, target.target, target.address) == (
        "hooks.example.com",
        8443,
        "/in?team=a",
        "93.184.216.34",
    )
    with pytest.raises(RefusedUrl, match="does not resolve"):
        resolve("https://no-such-host.invalid/", False)


# -- the deliverer --------------------------------------------------------------------------------


def test_a_receiver_down_for_a_while_gets_every_event_once_up(
    handle: RedisHandle, registry: WebhookRegistry, receiver: Receiver
) -> None:
    clock = Clock()
    hook = registry.add("alpha", receiver.url, ["result.done", "result.failed", "result.corrected"], "alice")
    other = registry.add("beta", receiver.url, ["result.done"], "carol")  # another team: gets only its own
    done_only = registry.add("alpha", receiver.url + "?done", ["result.done"], "alice")
    sender = deliverer(handle, registry, clock)
    outbox = Outbox(clock)
    outbox.result_changed(handle.client, item("r1"))
    outbox.result_changed(handle.client, item("r2", channel="", status="failed"))  # root: alpha (default)
    outbox.corrected(handle.client, item("r1"))
    outbox.result_changed(handle.client, item("r3", channel="sales"))
    outbox.result_changed(handle.client, item("r4", status="processing"))  # not an event
    # down: every attempt is refused and retried after 5 s, then 30 s
    sender.run_once(block_ms=1)
    logs = registry.deliveries(hook.id)
    assert [(d.event, d.state, d.attempts) for d in logs] == [
        ("result.corrected", "retrying", 1),
        ("result.failed", "retrying", 1),
        ("result.done", "retrying", 1),
    ]
    assert "ConnectionRefusedError" in logs[0].last_error and logs[0].next_at == clock.now + 5
    assert len(registry.deliveries(done_only.id)) == 1 and len(registry.deliveries(other.id)) == 1
    clock.now += 5
    sender.run_once(block_ms=1)
    assert {d.attempts for d in registry.deliveries(hook.id)} == {2}
    # up again: the next due attempt delivers everything, signed with each webhook's secret
    receiver.start()
    sender.run_once(block_ms=1)
    assert not receiver.received  # not due yet (30 s after the second attempt)
    clock.now += 30
    sender.run_once(block_ms=1)
    got = receiver.deliveries()
    assert len(receiver.received) == len(got) == 5
    by_hook = {hook.id: hook.secret, other.id: other.secret, done_only.id: done_only.secret}
    for delivery_id, received in got.items():
        assert received.signed_by(by_hook[delivery_id.rsplit("@", 1)[1]])
        assert not received.signed_by("whsec_wrong")
        payload = received.payload
        assert payload["id"] == delivery_id and received.headers[signing.EVENT] == payload["event"]
        assert received.headers[signing.TIMESTAMP] == str(payload["timestamp"]) == str(int(clock.now))
    events = sorted((p["event"], p["item"]["id"]) for p in (r.payload for r in got.values()))
    assert events == [
        ("result.corrected", "r1"),
        ("result.done", "r1"),
        ("result.done", "r1"),
        ("result.done", "r3"),
        ("result.failed", "r2"),
    ]
    assert {(d.state, d.attempts, d.status_code) for d in registry.deliveries(hook.id)} == {("delivered", 3, 200)}
    assert handle.client.zcard(DUE) == 0 and handle.client.hlen(DELIVERIES) == 0
    assert handle.client.xlen(WEBHOOK_EVENTS) == 0


def test_an_event_added_twice_is_delivered_once(
    handle: RedisHandle, registry: WebhookRegistry, receiver: Receiver
) -> None:
    clock = Clock()
    registry.add("alpha", receiver.start().url, ["result.done"], "alice")
    outbox = Outbox(clock)
    outbox.result_changed(handle.client, item("r1"))
    outbox.result_changed(handle.client, item("r1"))  # a replayed record
    sender = deliverer(handle, registry, clock)
    sender.run_once(block_ms=1)
    outbox.result_changed(handle.client, item("r1"))  # later still
    sender.run_once(block_ms=1)
    (got,) = receiver.received
    assert got.headers["Host"] == f"127.0.0.1:{receiver.port}" and got.headers["User-Agent"] == signing.USER_AGENT


def test_https_goes_to_the_checked_address_with_the_urls_host_name(tmp_path: Path) -> None:
    """TLS to the pinned address: the certificate is checked against the URL's host (SNI), and the
    Host header names it without the usual port."""
    import ssl
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from daemon.webhooks.sender import post
    from daemon.webhooks.targets import Target

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hooks.test",
         "-addext", "subjectAltName=DNS:hooks.test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            hosts.append(self.headers["Host"])
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        trust = ssl.create_default_context(cafile=str(cert))
        target = Target(f"https://hooks.test:{port}/in", "https", "hooks.test", port, "/in", "127.0.0.1")
        assert post(target, b"{}", {"Content-Type": "application/json"}, 5.0, trust).status == 204
        assert hosts == [f"hooks.test:{port}"]
        wrong = Target(f"https://other.test:{port}/in", "https", "other.test", port, "/in", "127.0.0.1")
        with pytest.raises(ssl.SSLCertVerificationError):
            post(wrong, b"{}", {}, 5.0, trust)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_errors_answers_and_giving_up_are_logged(
    handle: RedisHandle, registry: WebhookRegistry, receiver: Receiver
) -> None:
    clock = Clock()
    receiver.start().status = 503
    hook = registry.add("alpha", receiver.url, ["result.done"], "alice")
    sender = deliverer(handle, registry, clock, retry_delays=(1,))
    Outbox(clock).result_changed(handle.client, item("r1"))
    sender.run_once(block_ms=1)
    (log,) = registry.deliveries(hook.id)
    assert (log.state, log.attempts, log.status_code, log.last_error) == ("retrying", 1, 503, "answered 503")
    receiver.status = 302  # a redirect is not followed: it is a failed attempt
    clock.now += 1
    sender.run_once(block_ms=1)
    (log,) = registry.deliveries(hook.id)
    assert (log.state, log.attempts, log.status_code) == ("failed", 2, 302)
    assert handle.client.zcard(DUE) == 0 and len(receiver.received) == 2


def test_a_removed_webhooks_deliveries_are_dropped_and_private_addresses_refused_at_delivery(
    handle: RedisHandle, registry: WebhookRegistry, receiver: Receiver
) -> None:
    clock = Clock()
    receiver.start()
    gone = registry.add("alpha", receiver.url, ["result.done"], "alice")
    kept = registry.add("alpha", receiver.url, ["result.done"], "alice")
    Outbox(clock).result_changed(handle.client, item("r1"))
    sender = deliverer(handle, registry, clock)
    sender.allow_private = False  # the registry has a loopback URL: refused at delivery time too
    sender.run_once(block_ms=1)
    (log,) = registry.deliveries(kept.id)
    assert log.state == "retrying" and "resolves to 127.0.0.1, a loopback address" in log.last_error
    assert registry.remove(gone.id) and registry.deliveries(gone.id) == []
    sender.allow_private = True
    clock.now += 5
    sender.run_once(block_ms=1)
    assert [r.payload["id"].rsplit("@", 1)[1] for r in receiver.received] == [kept.id]
    assert handle.client.zcard(DUE) == 0


def test_a_delivery_whose_sender_died_is_sent_again_after_its_lease(
    handle: RedisHandle, registry: WebhookRegistry, receiver: Receiver
) -> None:
    clock = Clock()
    registry.add("alpha", receiver.start().url, ["result.done"], "alice")
    Outbox(clock).result_changed(handle.client, item("r1"))
    first = deliverer(handle, registry, clock)
    first.fan_out()
    assert len(first.queue.take_due(clock.now, 10)) == 1  # taken, then the process "dies"
    second = deliverer(handle, registry, clock, name="other")
    second.run_once(block_ms=1)
    assert receiver.received == []
    clock.now += 61
    second.run_once(block_ms=1)
    assert len(receiver.received) == 1


# -- the recorder queues the events of results done and failed ---------------------------------------


def test_the_recorder_queues_done_and_failed_with_the_acknowledgement(handle: RedisHandle, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite3")

    class Events:
        def publish(self, item: dict[str, Any]) -> None:
            pass

        def wait_for_listeners(self, stop: Any, timeout: float) -> int:
            return 0

    recorder = Recorder(handle.client, store, Events(), LatestCache(handle.client, 10), webhooks=Outbox())
    base = {"md5": "m" * 32, "path": "/s/finance/a.png", "filename": "a.png", "channel": "finance", "size": 3}
    add_record(handle.client, {"type": "queued", "id": "r1", **base, "created_at": 1.0})  # type: ignore[typeddict-item]
    add_record(handle.client, {"type": "processing", "id": "r1", "attempts": 1})  # type: ignore[typeddict-item]
    done = {
        "type": "done",
        "id": "r1",
        "width": 1,
        "height": 1,
        "lines": [],
        "text": "",
        "timings": {},
        "engine_version": "e",
        "model_version": "m",
        "finished_at": 2.0,
    }
    add_record(handle.client, done)  # type: ignore[arg-type]
    add_record(handle.client, done)  # type: ignore[arg-type]  # late or replayed: queued again, deduped later
    while recorder.run_once(block_ms=1):
        pass
    events = [json.loads(f["event"]) for _, f in handle.client.xrange(WEBHOOK_EVENTS)]
    assert [(e["type"], e["id"], e["item"]["status"]) for e in events] == [
        ("result.done", "result.done:r1:2.0", "done")
    ] * 2
    assert handle.client.xlen(RECORDS) == 0
    assert handle.client.xpending(RECORDS, RECORDER_GROUP)["pending"] == 0
    store.close()


def test_redis_errors_leave_the_event_unacknowledged(handle: RedisHandle, registry: WebhookRegistry) -> None:
    clock = Clock()
    Outbox(clock).result_changed(handle.client, item("r1"))
    registry.add("alpha", "http://127.0.0.1:9/", ["result.done"], "alice")
    broken = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    with pytest.raises(redis.ConnectionError):
        Deliverer(broken, registry, lambda c: "alpha", clock=clock).run_once(block_ms=1)
    assert handle.client.xlen(WEBHOOK_EVENTS) == 1
