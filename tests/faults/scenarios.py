"""Fault scenarios, written once with a size: CI runs them short, benchmarks/reliability.py long.

Each function drives a real `teamocr run` (see :mod:`tests.faults.stack`), asserts what must hold
afterwards and returns the figures it measured (the caller reports them). The load and soak
scenarios are in :mod:`tests.load.scenarios`.

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

import pytest
import redis

from daemon.queue.streams import DELAYED, JOBS, RECORDER_GROUP, RECORDS, WORKERS_GROUP
from daemon.records import Status
from tests.daemon.servicekit import RedisServer, write_slowly
from tests.faults.figures import report
from tests.faults.stack import (
    FINAL,
    Product,
    corpus,
    elapsed,
    final_events,
    kill,
    product,
    product_env,
    start_product,
    wait_for_workers,
)
from tests.polling import wait_until


def dropped_plan(originals: list[Path], drops: int, seed: int = 7) -> list[tuple[Path, str]]:
    """Each original once plus duplicates under new names, shuffled: (source, path in the share)."""
    rng = random.Random(seed)
    sources = originals + [rng.choice(originals) for _ in range(drops - len(originals))]
    rng.shuffle(sources)
    return [(src, f"{'finance/' if i % 3 == 1 else ''}d{i:04d}.png") for i, src in enumerate(sources)]


def drop_all(share: Path, plan: list[tuple[Path, str]], seconds: float, slow_every: int = 10) -> list[Path]:
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
    """Exactly one stored result per distinct content and team (dedup is scoped by team); every other
    copy a duplicate of its own team's result."""
    rows = running.rows()
    assert sorted(r.path for r in rows) == sorted(str(p) for p in dropped), "every drop stored exactly once"
    primaries = [r for r in rows if r.status != Status.DUPLICATE]
    by_md5 = Counter((r.scope, r.md5) for r in primaries)
    assert len({md5 for _, md5 in by_md5}) == distinct and set(by_md5.values()) == {1}, (
        f"one result per content and team: {by_md5.most_common(3)}"
    )
    ids = {r.id: r for r in rows}
    for row in rows:
        if row.status == Status.DUPLICATE:
            primary = ids[row.duplicate_of]
            assert primary.md5 == row.md5 and primary.scope == row.scope and primary.status != Status.DUPLICATE
    counts = Counter(r.status.value for r in rows)
    assert counts["queued"] == counts["processing"] == 0, counts
    return {"stored": len(rows), "done": counts["done"], "duplicates": counts["duplicate"], "failed": counts["failed"]}


def check_events(client: Any, running: Product, channels: set[str] | None = None) -> dict[str, int]:
    """One final event per stored result (of ``channels``), with the stored status; repeats counted."""
    rows = [r for r in running.rows() if channels is None or r.channel in channels]
    try:
        wait_until(lambda: set(final_events(client)) >= {r.id for r in rows}, 60, "every final event", interval=0.2)
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
    figures = {
        "events": len(client.results),
        "final_events": sum(map(len, finals.values())),
        "missing_events": len(missing),
        "repeated_final": len(repeated),
        "wrong_status": len(wrong),
        "stray_events": len(stray),
        "events_after_final": after,
        "retaken": sum(1 for n in processing.values() if n > 1),
    }
    assert not missing and not repeated and not wrong and not stray and not after, figures
    return figures


def message(line: str, tmp: Path, width: int = 150) -> str:
    """A log line without its time, level and logger (the format is "time LEVEL logger: message"),
    folders under ``tmp`` named relative to it."""
    return line.strip().split(": ", 1)[-1].replace(f"{tmp}/", "")[:width]


def busy_pids(url: str) -> set[int]:
    """PIDs of the workers holding jobs right now (consumer names end in "-<pid>")."""
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=2)
    try:
        pending = client.xpending_range(JOBS, WORKERS_GROUP, min="-", max="+", count=100)
        return {int(p["consumer"].rsplit("-", 1)[-1]) for p in pending if p["consumer"].rsplit("-", 1)[-1].isdigit()}
    except redis.RedisError:
        return set()
    finally:
        client.close()


def check_queues(url: str) -> int:
    """Jobs still pending, delayed or unrecorded in Redis (0 when nothing is stuck)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return (
            int(client.xpending(JOBS, WORKERS_GROUP)["pending"])
            + int(client.zcard(DELAYED))
            + int(client.xpending(RECORDS, RECORDER_GROUP)["pending"])
        )
    finally:
        client.close()


# -- chaos: worker processes SIGKILLed, Redis restarted, while files keep coming ----------------


@dataclass(frozen=True)
class ChaosSize:
    drops: int  # files dropped, originals and duplicates under new names
    distinct: int  # distinct contents among them
    kills: int  # worker processes SIGKILLed, one every ``kill_every`` seconds
    kill_every: float
    drop_seconds: float  # the drops are spread over this long; Redis restarts half-way
    workers: int = 2


# Each scenario's test runs "short" in CI and "long" (marker ``long``) for benchmarks/reliability.py.
SIZES = [
    pytest.param("short", id="short"),
    pytest.param("long", id="long", marks=[pytest.mark.long, pytest.mark.timeout(3600)]),
]

CHAOS = {
    "short": ChaosSize(drops=60, distinct=20, kills=2, kill_every=4.0, drop_seconds=10.0),
    "long": ChaosSize(drops=1000, distinct=250, kills=60, kill_every=4.0, drop_seconds=240.0),
}


def chaos(tmp: Path, size: ChaosSize, label: str = "chaos") -> dict[str, Any]:
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
                        busy = [w for w in workers if w.pid in busy_pids(server.url)]
                        victim = rng.choice(busy or workers) if workers else None
                        if victim is not None and kill(victim):
                            kills.append(victim.pid)
                        next_kill = now + size.kill_every
                    time.sleep(0.1)

            chaos_thread = threading.Thread(target=havoc, name="havoc", daemon=True)
            chaos_thread.start()
            dropped = drop_all(running.shared_dir, plan, size.drop_seconds)
            chaos_thread.join(size.kills * size.kill_every + size.drop_seconds + 60)
            assert not chaos_thread.is_alive(), "the kills did not finish"
            wait_until(lambda: running.settled(size.drops), 120 + size.drops, "every drop stored", interval=0.5)
            figures: dict[str, Any] = {
                "drops": size.drops,
                "distinct": size.distinct,
                **check_results(running, dropped, size.distinct),
                "stuck": check_queues(server.url),
                "sigkills": len(kills),
                "redis_restarts": len(restarts),
            }
            figures.update(check_events(alice, running))
            figures["seconds"] = elapsed(start)
            lines = running.log.lines
    finally:
        server.stop()
    figures["takeovers"] = sum("took over" in line and "jobs" in line for line in lines)  # kills that hit a batch
    report(label, figures)  # before the checks, so that a failure still leaves its figures
    assert figures["stuck"] == 0 and figures["failed"] == 0, figures
    assert len(kills) == size.kills and len(restarts) == 1, figures
    return figures


# -- the daemon stopped (SIGTERM) in the middle of a burst, files dropped while down, started again --

BURST = {"short": 20, "long": 200}


def stop_mid_burst(tmp: Path, files: int, label: str = "stop mid-burst") -> dict[str, Any]:
    from tests.daemon.servicekit import text_image

    env = product_env(tmp)
    staging = tmp / "staging"
    burst = [text_image(staging / f"burst{i:04d}.png", f"Burst item {i} paid", seed=i) for i in range(files)]
    late = [text_image(staging / f"down{i}.png", f"Dropped while down {i}", seed=900 + i) for i in range(3)]
    start = time.monotonic()
    first = start_product(env, workers=1)
    try:
        wait_for_workers(first, 1)
        dropped = drop_all(first.shared_dir, [(src, src.name) for src in burst], 1.0, slow_every=0)
        wait_until(
            lambda: sum(r.status == Status.DONE for r in first.rows()) >= 2, 120, "the burst under way", interval=0.1
        )
    finally:
        code = first.stop()  # SIGTERM: the batch in hand is finished, then it exits
    at_stop = Counter(r.status.value for r in first.rows())
    stop_lines = [line.strip() for line in first.log.lines if "SIGTERM" in line]
    dropped += drop_all(first.shared_dir, [(src, f"later/{src.name}") for src in late], 0.0, slow_every=0)
    with product(env, workers=1) as second:
        wait_until(lambda: second.settled(files + len(late)), 120 + 2 * files, "the rest after the start", interval=0.5)
        figures: dict[str, Any] = {
            "files": files + len(late),
            "done_at_stop": at_stop["done"],
            "exit_code": code,
            **check_results(second, dropped, files + len(late)),
        }
        resume = [line.strip() for line in second.log.lines if "resuming" in line]
    figures["seconds"] = elapsed(start)
    figures["log"] = message(resume[0], tmp) if resume else "no resuming line"
    report(label, figures)  # before the checks, so that a failure still leaves its figures
    assert code == 0 and stop_lines, (code, first.log.lines[-20:])
    assert figures["done"] == files + len(late), figures
    assert resume, second.log.lines[-30:]
    return figures


# -- mounts: a full data disk, the shared folder unmounted and mounted again ----------------------


def mount(*args: str) -> str | None:
    """Run mount/umount; None when it worked, else why not (not root, no permission in a container)."""
    import os
    import subprocess

    if os.geteuid() != 0:
        return "mounting needs root"
    done = subprocess.run(list(args), capture_output=True, text=True)
    return None if done.returncode == 0 else f"{' '.join(args[:3])} failed: {done.stderr.strip()}"


DISK = {"short": 10, "long": 100}


def disk_full(tmp: Path, files: int, label: str = "disk full") -> dict[str, Any]:
    """The data folder on a small tmpfs that fills up: writes fail with a clear log line, the service
    stays up, and once space is freed every file dropped meanwhile is recorded."""
    data = tmp / "data"
    data.mkdir(parents=True)
    reason = mount("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(data))
    if reason:
        report(label, {"skipped": reason})
        return {"skipped": reason}
    from tests.daemon.servicekit import text_image

    start = time.monotonic()
    try:
        env = product_env(tmp)
        originals = [
            text_image(tmp / "staging" / f"full{i:03d}.png", f"Disk full case {i}", seed=i) for i in range(files)
        ]
        with product(env, workers=1) as running:
            wait_for_workers(running, 1)
            drop_all(running.shared_dir, [(originals[0], "before.png")], 0.0, slow_every=0)
            wait_until(lambda: running.settled(1), 120, "a result before the disk fills", interval=0.2)
            filler = data / "filler.bin"
            with open(filler, "wb") as handle:  # fill the disk to the last block
                try:
                    while True:
                        handle.write(b"\0" * (1 << 20))
                        handle.flush()
                except OSError:
                    pass
            mark = len(running.log.lines)
            dropped = drop_all(running.shared_dir, [(src, src.name) for src in originals[1:]], 2.0, slow_every=0)
            full = ("No space left", "disk is full", "MISCONF")
            wait_until(
                lambda: any(any(f in line for f in full) for line in running.log.lines[mark:]),
                60,
                "a log line about the full disk",
                interval=0.2,
            )
            full_lines = [line.strip() for line in running.log.lines[mark:] if any(f in line for f in full)]
            healthy_while_full = requests_ok(running.url + "/healthz")
            filler.unlink()  # space again
            wait_until(
                lambda: running.settled(files),
                120 + 3 * files,
                "everything recorded after space is freed",
                interval=0.5,
            )
            figures: dict[str, Any] = {
                "files": files,
                **check_results(running, [running.shared_dir / "before.png", *dropped], files),
                "service_up": running.proc.poll() is None,
                "healthz_while_full": healthy_while_full,
                "log": message(full_lines[0], tmp),
            }
    finally:
        mount("umount", "-l", str(data))
    figures["seconds"] = elapsed(start)
    report(label, figures)  # before the checks, so that a failure still leaves its figures
    assert figures["done"] == files and figures["service_up"], figures
    return figures


def requests_ok(url: str) -> int:
    import requests

    try:
        return requests.get(url, timeout=10).status_code
    except requests.RequestException:
        return 0


UNMOUNT = {"short": 6, "long": 60}


SHARE_AWAY_S = 10.0  # longer than the retry schedule (2 s, then 4 s): waiting must not spend attempts


def unmount(tmp: Path, files: int, label: str = "unmount") -> dict[str, Any]:
    """The shared folder is a bind mount of the file server's folder; it goes away for longer than
    the retry schedule and comes back. Files dropped before (half at the share's root, where the
    empty mount point is left), during (on the server) and after are all done; the logs say so."""
    server = tmp / "fileserver"
    share = tmp / "share"
    server.mkdir(parents=True)
    share.mkdir(parents=True)
    reason = mount("mount", "--bind", str(server), str(share))
    if reason:
        report(label, {"skipped": reason})
        return {"skipped": reason}
    from tests.daemon.servicekit import text_image

    # the first third larger (slower to read), so that some still wait for the worker at the unmount
    originals = [text_image(tmp / "staging" / f"mnt{i:04d}.png", f"Mounted share {i}", seed=i) for i in range(files)]
    originals += corpus(tmp / "staging", 2 * files, prefix="mnt")[files:] + corpus(tmp / "staging2", files, "x")
    start = time.monotonic()
    mounted = True
    try:
        # the default retry schedule (2 s, then 4 s): a job whose folder is away is retried meanwhile
        with product(product_env(tmp, daemon__retry_backoff="2.0"), workers=1) as running:
            wait_for_workers(running, 1)
            before = drop_all(
                share,
                [(src, f"before/{src.name}" if i % 2 else src.name) for i, src in enumerate(originals[:files])],
                0.0,
                slow_every=0,
            )
            # unmounted as soon as they are all queued, while most of them still wait for the worker
            wait_until(lambda: len(running.rows()) >= files, 120, "files before the unmount queued", interval=0.05)
            mark = len(running.log.lines)
            mount("umount", "-l", str(share))
            mounted = False
            away_from = time.monotonic()
            wait_until(
                lambda: any(
                    "watched folder" in line and ("gone" in line or "replaced" in line)
                    for line in running.log.lines[mark:]
                ),
                60,
                "the watcher noticing",
                interval=0.2,
            )
            gone = [
                line.strip()
                for line in running.log.lines[mark:]
                if "watched folder" in line and ("gone" in line or "replaced" in line)
            ]
            # meanwhile people keep saving files on the file server
            during = drop_all(
                server, [(src, f"during/{src.name}") for src in originals[files : 2 * files]], 1.0, slow_every=0
            )
            time.sleep(max(0.0, away_from + SHARE_AWAY_S - time.monotonic()))
            mark = len(running.log.lines)
            assert mount("mount", "--bind", str(server), str(share)) is None
            mounted = True
            wait_until(
                lambda: any(
                    str(share) in line and ("back" in line or "replaced" in line) for line in running.log.lines[mark:]
                ),
                60,
                "the watcher noticing the return",
                interval=0.2,
            )
            back = [
                line.strip()
                for line in running.log.lines[mark:]
                if "watched folder" in line and ("back" in line or "replaced" in line)
            ]
            after = drop_all(share, [(src, f"after/{src.name}") for src in originals[2 * files :]], 1.0, slow_every=0)
            wait_until(lambda: running.settled(3 * files), 120 + 3 * files, "every file recorded", interval=0.5)
            expected = [share / p.relative_to(server) for p in during] + before + after
            figures: dict[str, Any] = {
                "files": 3 * files,
                **check_results(running, expected, 3 * files),
                "away_seconds": SHARE_AWAY_S,
                "waited_for_share": sum("waiting for it to come back" in line for line in running.log.lines),
                "log_gone": message(gone[0], tmp),
                "log_back": message(back[0], tmp),
            }
    finally:
        if mounted:
            mount("umount", "-l", str(share))
    figures["seconds"] = elapsed(start)
    report(label, figures)  # before the checks, so that a failure still leaves its figures
    assert figures["done"] == 3 * files, figures
    return figures
