"""Stopping a worker: the first SIGTERM finishes the batch in hand, a second one stops at once."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from daemon.records import Status
from tests.daemon.servicekit import (
    EventLog,
    make_settings,
    running,
    start_logged_worker,
    start_worker,
    stop_process,
    store_of,
    text_image,
)
from tests.polling import wait_until


def test_first_sigterm_finishes_the_batch_second_stops_at_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, batch_size=4)
    with running(settings, workers=0) as handle:
        events = EventLog(handle.url)
        worker = start_worker(settings, handle.url)
        second = None
        try:
            for i in range(4):
                text_image(settings.shared_dir / f"s{i}.png", f"Graceful stop {i}", seed=40 + i)
            wait_until(lambda: any(e["status"] == "processing" for e in events.items), 120, "a batch in hand")
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(120) == 0
            in_hand = {e["id"] for e in events.items if e["status"] == "processing"}
            finished = wait_until(
                lambda: {e["id"] for e in events.items if e["status"] == "done"} >= in_hand and in_hand,
                60,
                "the batch in hand to finish",
            )
            assert finished
            rows = {r.id: r for r in store_of(settings).list()}
            assert all(rows[i].status == Status.DONE for i in in_hand)

            second, log = start_logged_worker(settings, handle.url)
            wait_until(lambda: len(events.final()) >= 4, 120, "the rest done by a new worker")
            # a big page keeps the worker busy long enough to be stopped in the middle of it
            shutil.copyfile(Path(__file__).parents[1] / "images" / "tall_phone.png", settings.shared_dir / "late.png")
            wait_until(
                lambda: any(e["status"] == "processing" and e["filename"] == "late.png" for e in events.items),
                60,
                "late.png in hand",
            )
            second.send_signal(signal.SIGTERM)
            # signals sent back to back reach Python as one: wait until the first was handled
            wait_until(lambda: log.has("finishing current work"), 60, "the first SIGTERM handled")
            second.send_signal(signal.SIGTERM)
            assert second.wait(60) == 128 + signal.SIGTERM  # stopped at once, not after the job
        finally:
            events.close()
            stop_process(worker)
            if second is not None:
                stop_process(second, signal.SIGKILL)
