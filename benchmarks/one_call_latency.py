"""One-call OCR latency (``POST /api/v1/ocr``) on an idle service and while a folder burst is queued.

    python benchmarks/one_call_latency.py [--calls N] [--burst N] [--images DIR] [--keep DIR]

Starts the real service (``.venv/bin/teamocr run``: embedded Redis, watcher, the default number of
workers, the web) on fresh shared and data folders with ``TEAMOCR_ENGINE__THREADS=2`` and a free
port, makes a user (``teamocr user add``) and an API key (``teamocr key add``), waits for /healthz
to show every worker alive, and warms the worker up with one call. Then:

1. Idle: N calls one after another; each sends a screenshot never sent before (one pixel near a
   corner changed, re-encoded as PNG: a new MD5, the same text and reading time).
2. Burst: B distinct files renamed into the shared folder's root at once (as a team drops a
   folder); once the store holds them all, N calls one after another (the same screenshots as the
   idle calls, another pixel changed), then the burst's drain time.

Prints p50/p95/max of the client's latency and of the server's ``total_time`` per condition, the
ratio of the burst p50 to the idle p50, and how many burst files were still queued when the last
call answered. Before each call it notes how many files were being read (the worker's batch in
hand) and queued, to explain a slow call.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests
from service_process import TEAMOCR, free_port, running_service, service_env, tail, teamocr, wait_for

from config.settings import Settings, load_settings

log = logging.getLogger("benchmarks.one_call_latency")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "bench" / "data" / "screens" / "images"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
ENGINE_THREADS = 2
USER, TEAM = "bench", "bench"
CALL_WAIT = 120  # ?wait= of each call: the most the API allows
START_TIMEOUT = 300.0  # the service's start, the workers' heartbeats and the warm-up call
INTAKE_TIMEOUT = 120.0  # the burst's files to reach the store
POLL = 0.1
CLAIM_FACTOR = 1.5  # "about the time of one image": at most this many times the image's own reading


@dataclass(frozen=True)
class Upload:
    """One file to send or drop: its name and bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Call:
    """One ``POST /api/v1/ocr``: seconds measured by the client, by the server (``total_time``) and
    the engine's own total for the image; the files being read and queued just before it was sent."""

    client: float
    server: float
    engine: float
    processing_before: int
    queued_before: int


@dataclass(frozen=True)
class Wait:
    """What one call met in the worker: the batch in hand when it was queued (its size, seconds
    from that batch's start to the call's queueing and on to the batch's end) and the call's own
    batch (size, seconds)."""

    in_hand: int
    into_batch: float  # nan when the batch's start is unknown (no batch before it)
    in_hand_left: float
    own: int
    own_seconds: float


@dataclass(frozen=True)
class BurstFigures:
    """The burst: its files, seconds from the rename to all in the store, queued files when the
    last call answered, seconds from the rename to an empty queue."""

    files: int
    intake: float
    queued_after_calls: int
    drain: float
    waits: list[Wait]


# -- images -------------------------------------------------------------------------------


def source_images(folder: Path | None, scratch: Path) -> tuple[list[Path], str]:
    """Screenshots to send (sorted) and where they came from; drawn ones when the screens are missing."""
    if folder is None and not DEFAULT_IMAGES.is_dir():
        log.warning("%s is missing: drawing 20 text images with cv2.putText instead", DEFAULT_IMAGES)
        return drawn_images(scratch / "drawn", 20), "drawn with cv2.putText (the screens set is missing)"
    folder = folder or DEFAULT_IMAGES
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder of images")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not paths:
        raise ValueError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths, str(folder)


def drawn_images(folder: Path, count: int) -> list[Path]:
    """``count`` distinct 1280x720 PNGs of a few lines of text each."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = np.full((720, 1280, 3), 255, np.uint8)
        for row in range(8):
            text = f"Invoice {i:03d} line {row}: total {i * 37 + row * 11} EUR, due 2026-{row + 1:02d}-15"
            cv2.putText(image, text, (40, 80 + row * 80), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2, cv2.LINE_AA)
        path = folder / f"drawn-{i:03d}.png"
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise ValueError(f"{path}: cannot encode as PNG")
        path.write_bytes(encoded.tobytes())
        paths.append(path)
    return paths


def decode(path: Path) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot decode as an image")
    return image


def pixel_variant(image: np.ndarray, rng: np.random.Generator) -> bytes:
    """``image`` as PNG with one pixel near the top-left corner nudged: a new MD5, the same text."""
    changed = image.copy()
    y, x = int(rng.integers(0, min(8, image.shape[0]))), int(rng.integers(0, min(8, image.shape[1])))
    changed[y, x] = (changed[y, x].astype(np.int16) + int(rng.integers(1, 64))) % 256
    ok, encoded = cv2.imencode(".png", changed)
    if not ok:
        raise ValueError("cannot encode a variant as PNG")
    return encoded.tobytes()


class Variants:
    """Distinct PNG variants of the sources: no two uploads made here share an MD5."""

    def __init__(self, sources: list[Path], seed: int = 16) -> None:
        self._sources = sources
        self._decoded: dict[Path, np.ndarray] = {}
        self._seen: set[str] = set()
        self._rng = np.random.default_rng(seed)

    def make(self, prefix: str, count: int) -> list[Upload]:
        """``count`` uploads ``PREFIX-0000-STEM.png``..., cycling over the sources from the first."""
        uploads = []
        for i in range(count):
            source = self._sources[i % len(self._sources)]
            image = self._decoded.setdefault(source, decode(source))
            for _ in range(50):  # the same pixel and nudge may come up again; draw another
                data = pixel_variant(image, self._rng)
                md5 = hashlib.md5(data).hexdigest()
                if md5 not in self._seen:
                    break
            else:
                raise ValueError(f"{source}: 50 one-pixel changes gave no new MD5")
            self._seen.add(md5)
            uploads.append(Upload(f"{prefix}-{i:04d}-{source.stem}.png", data))
        return uploads


# -- the service --------------------------------------------------------------------------


def make_key(env: dict[str, str]) -> str:
    """A user of team ``bench`` (random password) and an API key acting as them."""
    teamocr(env, "user", "add", USER, "--team", TEAM, stdin=secrets.token_urlsafe(18) + "\n")
    key = teamocr(env, "key", "add", "bench", "--user", USER).strip()
    if not key or "\n" in key:
        raise RuntimeError(f"teamocr key add printed {key!r}, not one key")
    return key


class Api:
    """The calls this benchmark makes, as the user of the API key."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {key}"

    def healthz(self) -> dict[str, Any] | None:
        try:
            response = self._session.get(f"{self.url}/healthz", timeout=5)
        except requests.RequestException:
            return None
        return dict(response.json()) if response.status_code in (200, 503) else None

    def counts(self) -> dict[str, int]:
        """Results in each status (queued, processing, done...) in the user's team."""
        response = self._session.get(f"{self.url}/api/v1/results", params={"limit": 1}, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"GET /api/v1/results: {response.status_code} {response.text[:200]}")
        return {str(k): int(v) for k, v in response.json()["counts"].items()}

    def results(self) -> list[dict[str, Any]]:
        """Every result the user's team may see (all pages of the list)."""
        items: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            response = self._session.get(
                f"{self.url}/api/v1/results", params={"limit": 100, "offset": offset}, timeout=30
            )
            if response.status_code != 200:
                raise RuntimeError(f"GET /api/v1/results: {response.status_code} {response.text[:200]}")
            body = response.json()
            items.extend(body["items"])
            offset = body["next_offset"]
        return items

    def ocr(self, upload: Upload) -> tuple[float, dict[str, Any]]:
        """Client seconds and the answer of one ``POST /api/v1/ocr``; RuntimeError unless 200 and read."""
        files = {"file": (upload.name, upload.data, "image/png")}
        start = time.perf_counter()
        response = self._session.post(f"{self.url}/api/v1/ocr", files=files, params={"wait": CALL_WAIT}, timeout=300)
        seconds = time.perf_counter() - start
        body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
        if response.status_code != 200 or body.get("status") != "done":
            raise RuntimeError(f"{upload.name}: POST /api/v1/ocr answered {response.status_code} {str(body)[:300]}")
        if body.get("duplicate_of"):
            raise RuntimeError(f"{upload.name}: answered as a duplicate of {body['duplicate_of']}: content not new")
        return seconds, body

    def close(self) -> None:
        self._session.close()


def wait_ready(api: Api, proc: subprocess.Popen[bytes], workers: int, log_path: Path) -> None:
    """Until /healthz answers with ``workers`` workers alive; RuntimeError if the service exits."""

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"teamocr run exited {proc.returncode} while starting:\n{tail(log_path)}")
        health = api.healthz()
        return health is not None and health.get("status") == "ok" and int(health.get("workers_alive", 0)) >= workers

    wait_for(ready, time.monotonic() + START_TIMEOUT, f"/healthz to show {workers} worker(s) alive", 0.5)


# -- the measurements ---------------------------------------------------------------------


def batches(items: list[dict[str, Any]], gap: float = 0.3) -> list[list[dict[str, Any]]]:
    """Results grouped into the worker's batches: a batch's results are stored together, so
    finish times less than ``gap`` apart (one worker: batches take seconds) are one batch."""
    done = sorted((i for i in items if i.get("finished_at")), key=lambda i: float(i["finished_at"]))
    groups: list[list[dict[str, Any]]] = []
    for item in done:
        if groups and float(item["finished_at"]) - float(groups[-1][-1]["finished_at"]) < gap:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def waits(items: list[dict[str, Any]], names: set[str]) -> list[Wait]:
    """For each call named in ``names``: the batch it waited behind and its own batch."""
    groups = batches(items)
    found = []
    for n, group in enumerate(groups):
        for item in group:
            if item["filename"] not in names:
                continue
            queued_at = float(item["created_at"])
            before = groups[n - 1] if n > 0 else []
            started = bool(before) and float(before[-1]["finished_at"]) > queued_at  # that batch was in hand
            left = float(before[-1]["finished_at"]) - queued_at if started else 0.0
            # one worker takes its next batch as it stores the last one: that batch began there
            into = queued_at - float(groups[n - 2][-1]["finished_at"]) if started and n > 1 else math.nan
            own = float(group[-1]["finished_at"]) - max(queued_at, float(before[-1]["finished_at"]) if before else 0.0)
            found.append(Wait(len(before) if started else 0, into, left, len(group), own))
    return found


def make_calls(api: Api, uploads: list[Upload], label: str) -> list[Call]:
    """Send ``uploads`` one after another; note the store's processing/queued counts before each."""
    calls = []
    for i, upload in enumerate(uploads, 1):
        before = api.counts()
        seconds, body = api.ocr(upload)
        engine = float((body.get("timings") or {}).get("total", math.nan))
        calls.append(Call(seconds, float(body["total_time"]), engine, before["processing"], before["queued"]))
        log.info(
            "%s call %d/%d: %.3f s (server %.3f s, engine %.3f s; %d reading, %d queued before)",
            label,
            i,
            len(uploads),
            seconds,
            calls[-1].server,
            engine,
            before["processing"],
            before["queued"],
        )
    return calls


def drop_burst(share: Path, staging: Path, burst: list[Upload]) -> float:
    """Write ``burst`` to ``staging`` (same file system), then rename it all into ``share``'s root;
    returns the perf_counter time of the first rename."""
    staging.mkdir(parents=True, exist_ok=True)
    staged = []
    for upload in burst:
        path = staging / upload.name
        path.write_bytes(upload.data)
        staged.append(path)
    start = time.perf_counter()
    for path in staged:
        os.rename(path, share / path.name)
    return start


def waiting(counts: dict[str, int]) -> int:
    return counts["queued"] + counts["processing"]


def run_burst(
    api: Api, share: Path, staging: Path, burst: list[Upload], uploads: list[Upload]
) -> tuple[list[Call], BurstFigures]:
    """Drop ``burst``, wait until the store holds it, make the calls, then wait for the drain."""
    known = sum(api.counts().values())
    log.info("burst: renaming %d files into %s", len(burst), share)
    start = drop_burst(share, staging, burst)
    wait_for(
        lambda: sum(api.counts().values()) >= known + len(burst),
        time.monotonic() + INTAKE_TIMEOUT,
        f"the {len(burst)} burst files to reach the store",
        0.2,
    )
    intake = time.perf_counter() - start
    log.info("burst: all %d files in the store after %.1f s; %s", len(burst), intake, api.counts())
    calls = make_calls(api, uploads, "burst")
    queued_after = api.counts()["queued"]
    if queued_after == 0:
        log.warning("the burst had drained before the last call answered: the calls did not all meet a queue")
    log.info("burst: %d files still queued after the last call; waiting for the drain", queued_after)
    deadline = time.monotonic() + 30.0 * len(burst)
    wait_for(lambda: waiting(api.counts()) == 0, deadline, "the burst to drain", 0.5)
    drain = time.perf_counter() - start
    met = waits(api.results(), {u.name for u in uploads})
    return calls, BurstFigures(len(burst), intake, queued_after, drain, met)


# -- report -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f}/{five:.1f}/{fifteen:.1f} (1/5/15 min)"


def tally(values: Iterable[int]) -> str:
    """``4 x17, 3 x2, 0 x1``: how often each value came, the largest first."""
    return ", ".join(f"{value} x{n}" for value, n in sorted(Counter(values).items(), reverse=True))


def row(label: str, values: list[float]) -> str:
    return f"{label:<46}{len(values):>6}{percentile(values, 50):>8.3f}{percentile(values, 95):>8.3f}{max(values):>8.3f}"


def report(
    settings: Settings, origin: str, images: int, idle: list[Call], busy: list[Call], burst: BurstFigures, wall: float
) -> None:
    cpus = os.cpu_count() or 1
    workers, batch = settings.daemon.workers, settings.daemon.batch_size
    default_workers = load_settings(env={}).daemon.workers
    workers_from = "the default" if workers == default_workers else f"overridden; default {default_workers}"
    print(
        f"teamocr one-call latency, POST /api/v1/ocr: {cpus} CPUs, engine {settings.engine.model_set}/"
        f"{settings.engine.backend}/{settings.engine.device}, {ENGINE_THREADS} engine threads, "
        f"daemon.workers {workers} ({workers_from}), "
        f"daemon.batch_size {batch}, worker_nice {settings.daemon.worker_nice}, embedded Redis"
    )
    print(f"images: {origin} ({images} sources; every call a new MD5: one pixel changed, PNG)")
    print()
    print(f"{'condition (seconds)':<46}{'calls':>6}{'p50':>8}{'p95':>8}{'max':>8}")
    print(row("idle: client", [c.client for c in idle]))
    print(row("idle: server total_time", [c.server for c in idle]))
    print(row("idle: engine total of the image", [c.engine for c in idle]))
    print(row(f"burst of {burst.files} queued: client", [c.client for c in busy]))
    print(row(f"burst of {burst.files} queued: server total_time", [c.server for c in busy]))
    print(row(f"burst of {burst.files} queued: engine total", [c.engine for c in busy]))
    idle_p50, busy_p50 = percentile([c.client for c in idle], 50), percentile([c.client for c in busy], 50)
    print()
    print(f"ratio burst p50 / idle p50 (client): {busy_p50 / idle_p50:.2f}")
    one_image = percentile([c.engine for c in busy], 50)
    holds = busy_p50 <= CLAIM_FACTOR * one_image
    print(
        f"claim 'one call while {burst.files} files are queued answers in about the time of one image' "
        f"(within {CLAIM_FACTOR:g}x): burst p50 {busy_p50:.2f} s = {busy_p50 / one_image:.1f}x the engine "
        f"total of the call's own image (p50 {one_image:.2f} s): {'holds' if holds else 'does not hold'}"
    )
    into = [w.into_batch for w in burst.waits if w.in_hand and not math.isnan(w.into_batch)]
    if into:
        print(row("burst: queued after the batch in hand began", into))
    print(row("burst: left of the batch in hand", [w.in_hand_left for w in burst.waits]))
    print(row("burst: the call's own batch", [w.own_seconds for w in burst.waits]))
    sizes, own = tally(w.in_hand for w in burst.waits), tally(w.own for w in burst.waits)
    print(
        f"batch in hand when a call was queued, size x calls: {sizes} (from the store's finish times); the "
        f"call's own batch: {own}. One worker reads up to daemon.batch_size {batch} jobs as one "
        f"engine batch and stores them together: a priority call waits for the batch in hand to end."
    )
    print(
        f"burst: {burst.files} files in the store {burst.intake:.1f} s after the rename; "
        f"{burst.queued_after_calls} still queued when the last call answered; drained (with the "
        f"{len(busy)} calls) {burst.drain:.1f} s after the rename = {burst.drain / burst.files:.2f} s per file"
    )
    print(f"run time: {wall:.0f} s; load average now {load_average()} (other processes compete for the CPUs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, metavar="N", help="calls per condition (default 20)")
    parser.add_argument("--burst", type=int, default=200, metavar="N", help="files dropped at once (default 200)")
    parser.add_argument(
        "--images", type=Path, metavar="DIR", help="source screenshots (default ../shared/bench/data/screens/images)"
    )
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="run in DIR (made; must be empty) and keep it: folders, store, log"
    )
    return parser


def work_root(keep: Path | None) -> Path:
    if keep is None:
        return Path(tempfile.mkdtemp(prefix="teamocr-one-call-"))
    keep.mkdir(parents=True, exist_ok=True)
    if any(keep.iterdir()):
        raise ValueError(f"--keep {keep}: not empty")
    return keep.resolve()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    if args.calls < 1 or args.burst < 1:
        raise ValueError("--calls and --burst must be 1 or more")
    if not TEAMOCR.is_file():
        raise FileNotFoundError(f"{TEAMOCR}: no teamocr console script (pip install -e . in the venv)")
    started = time.perf_counter()
    log.info("load average at the start: %s", load_average())
    root = work_root(args.keep)
    try:
        images, origin = source_images(args.images, root)
        variants = Variants(images)
        warmup, idle_uploads = variants.make("warmup", 1), variants.make("idle", args.calls)
        busy_uploads, burst = variants.make("busy", args.calls), variants.make("burst", args.burst)
        env = service_env(root, free_port(), ENGINE_THREADS)
        settings = load_settings(env=env)
        (root / "share").mkdir(parents=True, exist_ok=True)
        key = make_key(env)
        api = Api(f"http://127.0.0.1:{env['TEAMOCR_PORT']}", key)
        log_path = root / "service.log"
        try:
            with running_service(env, log_path) as proc:
                log.info(
                    "teamocr run (pid %d) starting with %d worker(s); log %s",
                    proc.pid,
                    settings.daemon.workers,
                    log_path,
                )
                wait_ready(api, proc, settings.daemon.workers, log_path)
                make_calls(api, warmup, "warm-up")
                idle = make_calls(api, idle_uploads, "idle")
                busy, figures = run_burst(api, settings.shared_dir, root / "staging", burst, busy_uploads)
        except (RuntimeError, TimeoutError, requests.RequestException):
            log.error("service log tail (%s):\n%s", log_path, tail(log_path))
            raise
        finally:
            api.close()
        report(settings, origin, len(images), idle, busy, figures, time.perf_counter() - started)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log.info("kept %s", root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
