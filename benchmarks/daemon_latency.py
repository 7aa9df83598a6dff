"""Drop-to-stored latency and burst throughput of the teamocr daemon, in one run.

    python benchmarks/daemon_latency.py [--singles N] [--burst N] [--workers 1,2,4]
                                        [--stable-seconds S] [--images DIR] [--timeout S]

Each phase starts its own service (``daemon.service.serve`` in a thread: embedded Redis,
recorder, watcher and the worker processes) on a fresh temporary shared folder and data folder,
with the loaded settings (``config/default.toml``, ``TEAMOCR_CONFIG``, ``TEAMOCR_*``) except the
folders, the embedded Redis and, with ``--stable-seconds``, ``daemon.stable_seconds``. It waits
for every worker's heartbeat and for one warm-up image per worker before timing anything.

Files are dropped atomically: written to a hidden ``.NAME.tmp`` in the shared folder (skipped by
the watcher as clutter), then renamed to ``NAME``; the clock starts at the rename. A Redis
subscriber on the Socket.IO channel notes when each ``result`` event arrives.

1. Singles (1 worker): N screenshots, one at a time; each waits for its ``done`` event before the
   next. Latency = rename -> ``done`` event received, and rename -> row ``done`` in the SQLite
   store (polled every 10 ms). Target: p50 of the first <= 1.5 s.
2. Burst (each ``--workers`` count): N distinct files (screenshots re-encoded with one pixel
   changed, so every MD5 differs and the text does not) renamed in at once; throughput =
   N / (first rename -> N-th final event).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import redis
from service_process import wait_for

from cli.service import worker_command
from config.settings import Settings, apply_overrides, load_settings
from daemon.queue.redisconn import RedisHandle
from daemon.queue.streams import HEARTBEATS
from daemon.records import Status
from daemon.results.events import SOCKETIO_CHANNEL
from daemon.results.store import STORE_NAME, SqliteStore
from daemon.service import serve

log = logging.getLogger("benchmarks.daemon_latency")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "bench" / "data" / "screens" / "images"
FALLBACK_IMAGES = REPO / "tests" / "images"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
TARGET_P50 = 1.5  # seconds, rename -> done event, single drops, 1 worker
FINAL = ("done", "duplicate", "failed")
STORE_POLL = 0.01  # seconds between store reads while waiting for a row
START_TIMEOUT = 300.0  # service start, worker heartbeats and warm-up together


@dataclass(frozen=True)
class Drop:
    """One file to drop: its final name and bytes."""

    name: str
    data: bytes

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()


@dataclass(frozen=True)
class Single:
    """Timings of one single drop, in seconds from the rename."""

    name: str
    event: float
    stored: float
    queued: float  # created_at - rename: watcher event, stability wait, MD5, intake
    ocr: float  # the engine's own total for this image


# -- images ------------------------------------------------------------------------------


def find_images(folder: Path | None) -> list[Path]:
    """Images of ``folder`` (default: the shared screens set, else tests/images/*.png), sorted."""
    if folder is None:
        folder = DEFAULT_IMAGES
        if not folder.is_dir():
            log.warning("%s is missing; using %s/*.png", folder, FALLBACK_IMAGES)
            return sorted(FALLBACK_IMAGES.glob("*.png"))
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not paths:
        raise ValueError(f"{folder}: no images")
    return paths


def variant(source: Path, rng: np.random.Generator) -> bytes:
    """``source`` re-encoded in its own format with one pixel near a corner nudged.

    Appending bytes would break the file; one changed pixel changes the MD5 and not the text.
    """
    image = cv2.imdecode(np.fromfile(source, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{source}: cannot decode")
    y, x = int(rng.integers(0, min(8, image.shape[0]))), int(rng.integers(0, min(8, image.shape[1])))
    image[y, x] = (image[y, x].astype(np.int16) + rng.integers(1, 64)) % 256
    ok, encoded = cv2.imencode(source.suffix, image)
    if not ok:
        raise ValueError(f"{source}: cannot re-encode as {source.suffix}")
    return encoded.tobytes()


def distinct_variants(sources: list[Path], count: int, prefix: str, seen: set[str], seed: int) -> list[Drop]:
    """``count`` drops cycling over ``sources``, each with an MD5 not in ``seen`` (updated)."""
    rng = np.random.default_rng(seed)
    drops = []
    for i in range(count):
        source = sources[i % len(sources)]
        for _ in range(20):  # a lossy format may quantise a small change away; try another
            drop = Drop(f"{prefix}{i:04d}-{source.stem}{source.suffix}", variant(source, rng))
            if drop.md5 not in seen:
                break
        else:
            raise ValueError(f"{source}: 20 re-encodings gave no new MD5")
        seen.add(drop.md5)
        drops.append(drop)
    return drops


def single_drops(sources: list[Path], count: int, seen: set[str]) -> list[Drop]:
    """The originals first (as people drop them), re-encoded variants beyond their number."""
    drops = [Drop(p.name, p.read_bytes()) for p in sources[:count]]
    seen.update(d.md5 for d in drops)
    return drops + distinct_variants(sources, count - len(drops), "again-", seen, seed=1)


def stage(share: Path, drop: Drop) -> Path:
    """Write ``drop`` under a hidden temporary name in ``share``; return that path."""
    tmp = share / f".{drop.name}.tmp"
    tmp.write_bytes(drop.data)
    return tmp


# -- the service and its events -----------------------------------------------------------


class Subscriber:
    """Notes the arrival time (perf_counter) of every ``result`` event, by file name."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, decode_responses=True)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(SOCKETIO_CHANNEL)
        self._final: dict[str, tuple[float, dict[str, Any]]] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            arrived = time.perf_counter()
            if not message or message["type"] != "message":
                continue
            data = json.loads(message["data"])
            if data.get("method") != "emit" or data.get("event") != "result":
                continue
            item = data["data"][0] if isinstance(data["data"], list) else data["data"]
            if item.get("status") in FINAL:
                with self._cond:
                    self._final.setdefault(item["filename"], (arrived, item))
                    self._cond.notify_all()

    def wait_final(self, names: list[str], deadline: float) -> dict[str, tuple[float, dict[str, Any]]]:
        """Arrival time and item of the final event of each of ``names``; TimeoutError at ``deadline``."""
        with self._cond:
            while True:
                missing = [n for n in names if n not in self._final]
                if not missing:
                    return {n: self._final[n] for n in names}
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    raise TimeoutError(f"no final event for {len(missing)} of {len(names)} files, e.g. {missing[0]}")
                self._cond.wait(min(left, 1.0))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pubsub.close()
        self._client.close()


@contextlib.contextmanager
def service(settings: Settings, workers: int) -> Iterator[RedisHandle]:
    """``serve()`` in a thread until the block ends; yields once Redis and the recorder are up."""
    stop = threading.Event()
    ready: list[RedisHandle] = []
    thread = threading.Thread(
        target=serve,
        args=(settings,),
        name="serve",
        kwargs={
            "workers": workers,
            "stop": stop,
            "ready": ready.append,
            "worker_command": worker_command("--follow-parent"),
        },
        daemon=True,
    )
    thread.start()
    try:
        wait_for(lambda: ready or not thread.is_alive(), time.monotonic() + 60, "the service to start")
        if not ready:
            raise RuntimeError("the service stopped while starting; see the log above")
        yield ready[0]
    finally:
        stop.set()
        thread.join(120)
        if thread.is_alive():
            log.warning("the service did not stop within 120 s")


def make_settings(base: Settings, root: Path, stable_seconds: float | None, verbose: bool) -> Settings:
    values: dict[str, Any] = {
        "shared_dir": str(root / "share"),
        "data_dir": str(root / "data"),
        "redis_url": "",
        "log_level": "INFO" if verbose else "WARNING",
    }
    if stable_seconds is not None:
        values["daemon.stable_seconds"] = stable_seconds
    return apply_overrides(base, values, "daemon_latency.py")


@contextlib.contextmanager
def warm_service(
    base: Settings, args: argparse.Namespace, workers: int, warmups: list[Drop]
) -> Iterator[tuple[Settings, Subscriber]]:
    """A service on fresh folders with ``workers`` workers that have beaten and OCRed a warm-up each."""
    root = Path(tempfile.mkdtemp(prefix="teamocr-latency-"))
    settings = make_settings(base, root, args.stable_seconds, args.verbose)
    settings.shared_dir.mkdir(parents=True)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        with service(settings, workers) as handle:
            events = Subscriber(handle.url)
            try:
                log.info("%d worker(s) loading the engine", workers)
                wait_for(lambda: handle.client.hlen(HEARTBEATS) >= workers, deadline, "worker heartbeats", 0.2)
                tmps = [stage(settings.shared_dir, d) for d in warmups[:workers]]
                for tmp, drop in zip(tmps, warmups):
                    os.rename(tmp, settings.shared_dir / drop.name)
                events.wait_final([d.name for d in warmups[:workers]], deadline)
                log.info("warm: %d worker(s), shared folder %s", workers, settings.shared_dir)
                yield settings, events
            finally:
                events.close()
    finally:
        if args.keep:
            log.info("kept %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)


# -- the two measurements -----------------------------------------------------------------


def run_singles(base: Settings, args: argparse.Namespace, drops: list[Drop], warmups: list[Drop]) -> list[Single]:
    """Drop each file alone and time it to its done event and to its stored row."""
    results = []
    with warm_service(base, args, 1, warmups) as (settings, events):
        store = SqliteStore(settings.data_dir / STORE_NAME)
        try:
            for i, drop in enumerate(drops, 1):
                tmp = stage(settings.shared_dir, drop)
                deadline = time.monotonic() + args.timeout
                start, wall = time.perf_counter(), time.time()
                os.rename(tmp, settings.shared_dir / drop.name)

                def stored(md5: str = drop.md5) -> bool:
                    row = store.by_md5(md5)
                    return row is not None and row.status is not Status.QUEUED and row.status is not Status.PROCESSING

                wait_for(stored, deadline, f"{drop.name} in the store", STORE_POLL)
                stored_at = time.perf_counter()
                arrived, item = events.wait_final([drop.name], deadline)[drop.name]
                if item["status"] != "done":
                    raise RuntimeError(f"{drop.name}: {item['status']} ({item.get('error')})")
                results.append(
                    Single(
                        drop.name,
                        arrived - start,
                        stored_at - start,
                        item["created_at"] - wall,
                        float((item.get("timings") or {}).get("total", math.nan)),
                    )
                )
                log.info(
                    "single %d/%d %s: done event %.3f s, stored %.3f s",
                    i,
                    len(drops),
                    drop.name,
                    results[-1].event,
                    results[-1].stored,
                )
        finally:
            store.close()
    return results


@dataclass(frozen=True)
class Burst:
    workers: int
    threads: int
    files: int
    seconds: float
    statuses: dict[str, int]

    @property
    def rate(self) -> float:
        return self.files / self.seconds


def run_burst(base: Settings, args: argparse.Namespace, workers: int, drops: list[Drop], warmups: list[Drop]) -> Burst:
    """Rename all ``drops`` in at once; time the first rename to the last final event."""
    with warm_service(base, args, workers, warmups) as (settings, events):
        tmps = [stage(settings.shared_dir, d) for d in drops]
        deadline = time.monotonic() + args.timeout + 10.0 * len(drops)  # ~3 s/file on 2 cores; lenient
        log.info("burst: renaming %d files in with %d worker(s)", len(drops), workers)
        start = time.perf_counter()
        for tmp, drop in zip(tmps, drops):
            os.rename(tmp, settings.shared_dir / drop.name)
        final = events.wait_final([d.name for d in drops], deadline)
    last = max(arrived for arrived, _ in final.values())
    statuses: dict[str, int] = {}
    for _, item in final.values():
        statuses[item["status"]] = statuses.get(item["status"], 0) + 1
    threads = base.engine.threads or max(1, (os.cpu_count() or 1) // workers)  # as serve() sets it
    result = Burst(workers, threads, len(drops), last - start, statuses)
    log.info(
        "burst with %d worker(s): %d files in %.1f s (%.3f files/s)", workers, len(drops), result.seconds, result.rate
    )
    return result


# -- report -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def report(
    args: argparse.Namespace,
    base: Settings,
    images: list[Path],
    singles: list[Single],
    bursts: list[Burst],
    stable: float,
    stable_from: str,
) -> bool:
    """Print the table and the target check; True when the target is met."""
    cpus = os.cpu_count() or 1
    print(
        f"teamocr daemon latency and throughput: {cpus} CPUs, {platform.processor() or platform.machine()}, "
        f"engine {base.engine.model_set}/{base.engine.backend}/{base.engine.device}, "
        f"batch_size {base.daemon.batch_size}, stable_seconds {stable:g} ({stable_from})"
    )
    print(f"images: {images[0].parent} ({len(images)} files)")
    print()
    print(f"single drops, one at a time: {len(singles)} files, 1 worker, {base.engine.threads or cpus} engine threads")
    print(f"{'seconds from rename to':<34}{'p50':>8}{'p95':>8}{'min':>8}{'max':>8}")
    rows = [
        ("done event received", [s.event for s in singles]),
        ("row done in the store", [s.stored for s in singles]),
        ("  queued (watch + stability + MD5)", [s.queued for s in singles]),
        ("  engine total (in the worker)", [s.ocr for s in singles]),
    ]
    for label, values in rows:
        print(
            f"{label:<34}{percentile(values, 50):>8.3f}{percentile(values, 95):>8.3f}"
            f"{min(values):>8.3f}{max(values):>8.3f}"
        )
    p50 = percentile([s.event for s in singles], 50)
    passed = p50 <= TARGET_P50
    print()
    print(f"burst: {args.burst} distinct files renamed in at once, first rename -> last final event")
    print(f"{'workers':>7}{'threads/worker':>16}{'files':>7}{'seconds':>9}{'files/s':>9}  outcomes")
    for b in bursts:
        outcomes = ", ".join(f"{n} {s}" for s, n in sorted(b.statuses.items()))
        print(f"{b.workers:>7}{b.threads:>16}{b.files:>7}{b.seconds:>9.1f}{b.rate:>9.3f}  {outcomes}")
    print()
    print(
        f"target: p50 rename -> done event {p50:.3f} s <= {TARGET_P50} s on this {cpus}-core machine: "
        f"{'PASS' if passed else 'FAIL'}"
    )
    return passed


def worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,2, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be 1 or more, got {text!r}")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--singles", type=int, default=20, metavar="N", help="single drops, one at a time")
    parser.add_argument("--burst", type=int, default=200, metavar="N", help="files in each burst")
    parser.add_argument(
        "--workers", type=worker_counts, default=[1, 2, 4], metavar="1,2,4", help="worker process counts for the burst"
    )
    parser.add_argument(
        "--stable-seconds",
        type=float,
        metavar="S",
        help="daemon.stable_seconds (default: from the loaded settings, 1.0 in default.toml)",
    )
    parser.add_argument(
        "--images",
        type=Path,
        metavar="DIR",
        help="source images (default ../shared/bench/data/screens/images, else tests/images)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="longest wait for one single drop; bursts get this plus 10 s per file",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (store, Redis)")
    parser.add_argument("--verbose", action="store_true", help="the daemon's INFO logs too")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log.setLevel(logging.INFO)
    if args.singles < 1 or args.burst < 1 or args.timeout <= 0:
        raise ValueError("--singles and --burst must be 1 or more, --timeout above 0")
    if args.stable_seconds is not None and args.stable_seconds < 0:
        raise ValueError("--stable-seconds must be 0 or more")
    base = load_settings()
    stable = base.daemon.stable_seconds if args.stable_seconds is None else args.stable_seconds
    stable_from = "config default" if args.stable_seconds is None else "--stable-seconds"
    if args.stable_seconds is None and stable != 1.0:
        stable_from = "loaded settings (TEAMOCR_CONFIG / TEAMOCR_DAEMON__STABLE_SECONDS)"
    images = find_images(args.images)
    log.info("preparing files from %d images in %s", len(images), images[0].parent)
    seen: set[str] = set()
    singles = single_drops(images, args.singles, seen)
    warmups = distinct_variants(images, max(args.workers + [1]), "warmup-", seen, seed=2)
    burst = distinct_variants(images, args.burst, "burst-", seen, seed=3)
    log.info("singles: %d drops, 1 worker, stable_seconds %g (%s)", len(singles), stable, stable_from)
    single_results = run_singles(base, args, singles, warmups)
    bursts = [run_burst(base, args, n, burst, warmups) for n in args.workers]
    passed = report(args, base, images, single_results, bursts, stable, stable_from)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
