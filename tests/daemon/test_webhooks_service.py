"""Webhooks through the real `teamocr run`: a receiver (a real local HTTP server) that is down
while results are stored, across a restart of the service, gets every event once it is up, each
signed with its webhook's secret; nothing is lost and nothing delivered twice."""

from __future__ import annotations

from pathlib import Path

import requests

from daemon.webhooks.registry import WebhookRegistry
from tests.daemon.webhookkit import Receiver
from tests.faults.stack import add_users, product, product_env, start_product, tiny_image, wait_for_workers
from tests.polling import wait_until

EVENTS = ["result.done", "result.failed", "result.corrected"]


def test_a_receiver_down_across_a_restart_gets_every_event_once_it_is_up(tmp_path: Path) -> None:
    receiver = Receiver()  # not started: connections are refused
    env = product_env(
        tmp_path,
        web__webhooks_allow_private="true",
        daemon__webhook_retry_delays="0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1",
    )
    data, share = Path(env["TEAMOCR_DATA_DIR"]), Path(env["TEAMOCR_SHARED_DIR"])
    add_users(data, {"alice": "alpha", "dan": "beta"}, admins=frozenset({"alice", "dan"}))
    first = start_product(env)
    try:
        wait_for_workers(first, 1)
        api = first.url + "/api/v1"
        alice = {"Authorization": f"Bearer {first.token('alice')}"}
        dan = {"Authorization": f"Bearer {first.token('dan')}"}
        hook = requests.post(f"{api}/webhooks", json={"url": receiver.url, "events": EVENTS}, headers=alice, timeout=30)
        assert hook.status_code == 201, hook.text
        beta = requests.post(f"{api}/webhooks", json={"url": receiver.url + "?beta"}, headers=dan, timeout=30).json()
        for i in range(3):
            tiny_image(share / "finance" / f"paid{i}.png", f"Invoice {i} paid", seed=i)
        (share / "finance" / "broken.png").write_bytes(b"not an image at all")
        tiny_image(share / "sales" / "lead.png", "Sales lead", seed=9)  # beta's: alpha's webhook never sees it
        wait_until(lambda: first.settled(5), 120, "5 results stored", interval=0.2)
        registry = WebhookRegistry.for_data_dir(data)
        try:
            wait_until(
                lambda: len(logs := registry.deliveries(hook.json()["id"])) == 4 and all(d.attempts for d in logs),
                60,
                "4 deliveries tried while the receiver is down",
                interval=0.2,
            )
        finally:
            registry.close()
    finally:
        assert first.stop() == 0
    assert receiver.received == []
    with product(env) as second:
        done = next(r for r in second.rows() if r.filename == "paid0.png")
        alice = {"Authorization": f"Bearer {second.token('alice')}"}
        fixed = requests.post(
            f"{second.url}/api/v1/results/{done.id}/lines/0", json={"text": "Invoice 0 PAID"}, headers=alice, timeout=30
        )
        assert fixed.status_code == 200, fixed.text
        receiver.start()
        try:
            wait_until(lambda: len(receiver.deliveries()) == 6, 60, "6 deliveries received", interval=0.2)
            log = requests.get(
                f"{second.url}/api/v1/webhooks/{hook.json()['id']}/deliveries", headers=alice, timeout=30
            )
            assert {(d["state"], d["status_code"]) for d in log.json()["deliveries"]} == {("delivered", 200)}
        finally:
            receiver.stop()
    got = receiver.deliveries()
    secrets = {hook.json()["id"]: hook.json()["secret"], beta["id"]: beta["secret"]}
    assert len(receiver.received) == len(got)  # none delivered twice
    assert all(r.signed_by(secrets[delivery.rsplit("@", 1)[1]]) for delivery, r in got.items())
    seen = sorted(
        (r.payload["event"], r.payload["item"]["filename"], r.headers["X-Teamocr-Delivery"][-16:]) for r in got.values()
    )
    alpha_id, beta_id = hook.json()["id"], beta["id"]
    assert seen == sorted(
        [
            ("result.corrected", "paid0.png", alpha_id),
            ("result.done", "lead.png", beta_id),
            ("result.done", "paid0.png", alpha_id),
            ("result.done", "paid1.png", alpha_id),
            ("result.done", "paid2.png", alpha_id),
            ("result.failed", "broken.png", alpha_id),
        ]
    )
