"""Fault and load scenarios, written once with a size: CI runs them short, benchmarks/reliability.py long.

Each function drives a real `teamocr run` (see :mod:`tests.faults.stack`), asserts what must hold
afterwards and returns the figures it measured (the caller reports them).

What "every event delivered once" means here: a Socket.IO client that stayed connected to the web
receives, for every stored result of its team, exactly one *final* event (``done``, ``duplicate``
or ``failed``) whose status is the stored one, and nothing for that result after it. Earlier
events (``queued``, ``processing``) are state changes and may repeat when a job is retried or
taken over from a killed worker; those repeats are counted, not refused.
"""
from __future__ import annotations

import random
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from daemon.model import Status
from daemon.streams import DELAYED, JOBS, RECORDER_GROUP, RECORDS, WORKERS_GROUP
from tests.daemon.servicekit import RedisServer, wait_until, write_slowly
from tests.faults.stack import (FINAL, Product, corpus, elapsed, final_events, kill, product, product_env,
                                start_product, wait_for_workers)


def dropped_plan(originals: list[Path], drops: int, seed: int = 7) -> list[tuple[Path, str]]:
    """Each original once plus duplicates under new names, shuffled: (source, path in the share)."""
    rng = random.Random(seed)
    sources = originals + [rng.choice(originals) for _ in range(drops - len(originals))]
    rng.shuffle(sources)
    return [(src, f"{'finance/' if i % 3 == 1 else ''}d{i:04d}.png") for i, src in enumerate(sources)]


def drop_all(share: Path, plan: list[tuple[Path, str]], seconds: float, slow_every: int = 10,
             pause: threading.Event | None = None) -> list[Path]:
    """Copy the plan into the share over ``seconds``; every ``slow_every``-th file written slowly."""
    writers = []
    start = time.monotonic()
    out = []
    for i, (src, rel) in enumerate(plan):
        dest = share / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if slow_every and i % slow_every == 0:
            writers.append(write_slowly(dest, src.read_bytes(), chunks=6, pause=0.1))
        else:
            shutil.copyfile(src, dest)
        out.append(dest)
        due = start + seconds * (i + 1) / len(plan)  # a steady pace, not a wait for a condition
        time.sleep(max(0.0, due - time.monotonic()))
    for writer in writers:
        writer.join()
    return out


def check_results(running: Product, dropped: list[Path], distinct: int) -> dict[str, int]:
    """Exactly one stored result per distinct content; every other copy a duplicate of it."""
    rows = running.rows()
    assert sorted(r.path for r in rows) == sorted(str(p) for p in dropped), "every drop stored exactly once"
    primaries = [r for r in rows if r.status != Status.DUPLICATE]
    by_md5 = Counter(r.md5 for r in primaries)
    assert len(by_md5) == distinct and set(by_md5.values()) == {1}, f"one result per content: {by_md5.most_common(3)}"
    ids = {r.id: r for r in rows}
    for row in rows:
        if row.status == Status.DUPLICATE:
            assert ids[row.duplicate_of].md5 == row.md5 and ids[row.duplicate_of].status != Status.DUPLICATE
    counts = Counter(r.status.value for r in rows)
    assert counts["queued"] == counts["processing"] == 0, counts
    return {"stored": len(rows), "done": counts["done"], "duplicates": counts["duplicate"],
            "failed": counts["failed"]}


def check_events(client: Any, running: Product, channels: set[str] | None = None) -> dict[str, int]:
    """One final event per stored result (of ``channels``), with the stored status; repeats counted."""
    rows = [r for r in running.rows() if channels is None or r.channel in channels]
    try:
        wait_until(lambda: set(final_events(client)) >= {r.id for r in rows}, 30, "every final event", interval=0.2)
    except AssertionError:
        pass  # counted as missing below
    finals = final_events(client)
    status = {r.id: r.status.value for r in rows}
    missing = [rid for rid in status if rid not in finals]
    repeated = [rid for rid, items in finals.items() if len(items) > 1]
    wrong = [rid for rid, items in finals.items() if rid in status and items[0]["status"] != status[rid]]
    stray = [rid for rid in finals if rid not in status]
    after = 0
    seen_final: set[str] = set()
    processing = Counter()
    for item in list(client.results):
        if item["id"] in seen_final:
            after += 1
        if item["status"] in FINAL:
            seen_final.add(item["id"])
        elif item["status"] == "processing":
            processing[item["id"]] += 1
    figures = {"events": len(client.results), "final_events": sum(map(len, finals.values())),
               "missing_events": len(missing), "repeated_final": len(repeated), "wrong_status": len(wrong),
               "stray_events": len(stray), "events_after_final": after,
               "retaken": sum(1 for n in processing.values() if n > 1)}
    assert not missing and not repeated and not wrong and not stray and not after, figures
    return figures


def check_queues(url: str) -> int:
    """Jobs still pending, delayed or unrecorded in Redis (0 when nothing is stuck)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return (int(client.xpending(JOBS, WORKERS_GROUP)["pending"]) + int(client.zcard(DELAYED))
                + int(client.xpending(RECORDS, RECORDER_GROUP)["pending"]))
    finally:
        client.close()


# -- chaos: worker processes SIGKILLed, Redis restarted, while files keep coming ----------------

@dataclass(frozen=True)
class ChaosSize:
    drops: int          # files dropped, originals and duplicates under new names
    distinct: int       # distinct contents among them
    kills: int          # worker processes SIGKILLed, one every ``kill_every`` seconds
    kill_every: float
    drop_seconds: float  # the drops are spread over this long; Redis restarts half-way
    workers: int = 2


CHAOS = {"short": ChaosSize(drops=60, distinct=20, kills=2, kill_every=4.0, drop_seconds=10.0),
         "long": ChaosSize(drops=1000, distinct=250, kills=60, kill_every=4.0, drop_seconds=240.0)}


def chaos(tmp: Path, size: ChaosSize) -> dict[str, Any]:
    server = RedisServer(tmp / "redis")
    server.start()
    env = product_env(tmp, redis_url=server.url)
    originals = corpus(tmp / "staging", size.distinct)
    plan = dropped_plan(originals, size.drops)
    kills: list[int] = []
    restarts: list[float] = []
    start = time.monotonic()
    try:
        with product(env, workers=size.workers) as running:
            wait_for_workers(running, size.workers)
            alice = running.socket("alice")
            done_dropping = threading.Event()

            def havoc() -> None:
                """SIGKILL a worker every ``kill_every`` s; stop and start Redis once, half-way through the drops."""
                rng = random.Random(11)
                t0 = time.monotonic()
                next_kill = t0 + size.kill_every
                while len(kills) < size.kills or not restarts:
                    now = time.monotonic()
                    if not restarts and now - t0 >= size.drop_seconds / 2:
                        server.stop()  # SIGTERM: Redis writes its append-only file and exits
                        time.sleep(1.0)  # an outage of a second, while files keep coming
                        server.start()
                        restarts.append(round(time.monotonic() - t0, 1))
                    if len(kills) < size.kills and now >= next_kill:
                        workers = running.workers()
                        if workers and kill(rng.choice(workers)):
                            kills.append(workers[0].pid)
                        next_kill = now + size.kill_every
                    time.sleep(0.1)

            chaos_thread = threading.Thread(target=havoc, name="havoc", daemon=True)
            chaos_thread.start()
            dropped = drop_all(running.shared_dir, plan, size.drop_seconds)
            done_dropping.set()
            chaos_thread.join(size.kills * size.kill_every + size.drop_seconds + 60)
            assert not chaos_thread.is_alive(), "the kills did not finish"
            wait_until(lambda: running.settled(size.drops), 120 + size.drops, "every drop stored", interval=0.5)
            figures: dict[str, Any] = {"drops": size.drops, "distinct": size.distinct,
                                       **check_results(running, dropped, size.distinct),
                                       "stuck": check_queues(server.url), "sigkills": len(kills),
                                       "redis_restarts": len(restarts)}
            figures.update(check_events(alice, running))
            figures["seconds"] = elapsed(start)
            lines = running.log.lines
    finally:
        server.stop()
    assert figures["stuck"] == 0 and figures["failed"] == 0, figures
    assert any("took over" in line for line in lines), "no job was taken over from a killed worker"
    return figures
