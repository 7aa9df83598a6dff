"""The README's webhook receiver, run as written (on a free port): it takes a real delivery from
the deliverer, checks its signature and posts the text to a chat webhook (a real local server);
a body signed with another secret is refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from daemon.webhooks.deliverer import Deliverer
from daemon.webhooks.queue import Outbox
from daemon.webhooks.registry import WebhookRegistry
from daemon.webhooks.signing import signature
from tests.daemon.servicekit import REPO, embedded_redis, free_port, stop_process
from tests.daemon.webhookkit import Receiver
from tests.polling import wait_until


def readme_receiver() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"A receiver that checks.*?```python\n(.*?)```", text, re.S)
    assert found, "the README's receiver example"
    return found.group(1)


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:
        return True  # it answers (501 for a GET)
    except OSError:
        return False
    return True


def test_the_readme_receiver_checks_the_signature_and_posts_to_the_chat(tmp_path: Path) -> None:
    chat = Receiver().start()
    port = free_port()
    registry = WebhookRegistry.for_data_dir(tmp_path / "data")
    hook = registry.add("alpha", f"http://127.0.0.1:{port}/", ["result.done"], "alice")
    code = readme_receiver().replace('"0.0.0.0", 8081', f'"127.0.0.1", {port}')
    env = {**os.environ, "TEAMOCR_WEBHOOK_SECRET": hook.secret, "CHAT_WEBHOOK_URL": chat.url}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/"), 30, "the README's receiver")
        with embedded_redis(tmp_path / "redis") as handle:
            item = {"id": "r1", "channel": "finance", "status": "done", "filename": "a.png", "text": "total 42"}
            Outbox().result_changed(handle.client, item)
            deliverer = Deliverer(handle.client, registry, lambda channel: "alpha", allow_private=True)
            deliverer.run_once(block_ms=1)
            (log,) = registry.deliveries(hook.id)
            assert (log.state, log.status_code) == ("delivered", 204), log
        (posted,) = wait_until(lambda: chat.received, 30, "the chat message")
        assert posted.payload == {"text": "result.done a.png:\ntotal 42"}
        forged = urllib.request.Request(
            f"http://127.0.0.1:{port}/",
            b'{"timestamp": 0}',
            {"Content-Type": "application/json", "X-Teamocr-Signature": signature("whsec_other", b'{"timestamp": 0}')},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 401 and len(chat.received) == 1
    finally:
        stop_process(proc)
        chat.stop()
        registry.close()
