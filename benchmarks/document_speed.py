"""Pages per second through the engine's document path: pages rendered ahead, or one after another.

    python benchmarks/document_speed.py [--pages 20] [--threads 2] [--repeat 2] [--modes serial,ahead]

The document is the searchable-PDF benchmark's 20-page scan (``benchmarks/searchable_pdf.py``:
pages of the real set spread over its kinds and languages, each a JPEG sized as a 300 DPI scan).
One engine (``engine.threads`` = ``--threads``, on the CPU, the configured backend otherwise) reads
it whole with ``read_document`` (``daemon.batch_size`` pages per batch, as a worker reads) in each
mode, the modes taking turns, ``--repeat`` rounds after a warm-up read of the first batch:

- ``serial``: ``engine.prefetch_pages = 0``, each page rendered when the reader asks for it;
- ``ahead``: ``engine.prefetch_pages = 2`` (the default), PDFium rendering the next pages in a
  thread while the networks read the batch in hand;
- ``ahead1``, ``ahead4``: one and four pages ahead; ``batch1``: ahead, one page per batch.

Prints each round's seconds and pages/s, the best round of each mode, the ratio of each mode's
best to ``serial``'s, the seconds spent rendering (the pages' ``decode`` timing: the most that
reading ahead can hide), how many cores the process kept busy (its CPU seconds over the wall
clock, best round), and whether every mode read the same text (it must: only the order of
work changes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from searchable_pdf import BENCH, choose_rows, load_rows, make_scanned_pdf

MODES: dict[str, dict[str, int]] = {
    "serial": {"prefetch_pages": 0},
    "ahead": {"prefetch_pages": 2},
    "ahead1": {"prefetch_pages": 1},
    "ahead4": {"prefetch_pages": 4},
    "batch1": {"prefetch_pages": 2, "batch": 1},
}


def cpu_seconds() -> float:
    """CPU seconds this process has used (every thread, user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def read_once(engine: Any, data: bytes, batch: int) -> tuple[float, float, float, list[str]]:
    """(wall seconds, CPU seconds, seconds rendering, each page's text) of one whole read."""
    from engine.types import PageResult

    cpu = cpu_seconds()
    start = time.perf_counter()
    document = engine.open_document(data, "scan.pdf")
    if document is None:
        raise SystemExit("the scan is not read as a document")
    texts: list[str] = []
    rendering = 0.0
    for number, page in engine.read_document(document, batch):
        if not isinstance(page, PageResult):
            raise SystemExit(f"page {number} failed: {page}")
        rendering += page.timings.get("decode", 0.0)
        texts.append(page.text)
    return time.perf_counter() - start, cpu_seconds() - cpu, rendering, texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--modes", default="serial,ahead", help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--dataset", type=Path, default=BENCH / "data" / "real")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown or args.pages < 1 or args.repeat < 1:
        parser.error(f"unknown modes {unknown}" if unknown else "--pages and --repeat must be 1 or more")

    from config.settings import load_settings
    from engine.pipeline import build_engine

    settings = load_settings()
    batch = settings.daemon.batch_size
    rows = choose_rows(load_rows(args.dataset), args.pages)
    with tempfile.TemporaryDirectory(prefix="teamocr-docspeed-") as folder:
        pdf = Path(folder) / "scan.pdf"
        make_scanned_pdf(rows, args.dataset, pdf)
        data = pdf.read_bytes()
        make_scanned_pdf(rows[:batch], args.dataset, pdf)
        warmup = pdf.read_bytes()
    engine = build_engine(dataclasses.replace(settings.engine, threads=args.threads, device="cpu"))
    engines = {m: engine.tuned({"prefetch_pages": MODES[m]["prefetch_pages"]}) for m in modes}
    print(f"{len(rows)} pages, {len(data) / 1e6:.1f} MB; {engine.backend}, {args.threads} threads, batch {batch}")
    read_once(engines[modes[0]], warmup, batch)  # warm-up on one batch of the pages: the arena, the caches
    rounds: dict[str, list[float]] = {m: [] for m in modes}
    rendering: dict[str, float] = {}
    busy: dict[str, list[float]] = {m: [] for m in modes}
    texts: dict[str, list[str]] = {}
    for r in range(args.repeat):
        for m in modes if r % 2 == 0 else modes[::-1]:
            seconds, cpu, rendered, texts[m] = read_once(engines[m], data, MODES[m].get("batch", batch))
            rounds[m].append(seconds)
            busy[m].append(cpu / seconds)
            rendering[m] = rendered
            print(
                json.dumps(
                    {
                        "round": r + 1,
                        "mode": m,
                        "seconds": round(seconds, 2),
                        "pages/s": round(len(rows) / seconds, 3),
                        "cores busy": round(cpu / seconds, 2),
                    }
                ),
                flush=True,
            )
    base = min(rounds[modes[0]])
    print(
        f"\n| mode | prefetch_pages | batch | best seconds | pages/s | vs {modes[0]} | seconds rendering | cores busy |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for m in modes:
        best = min(rounds[m])
        print(
            f"| {m} | {MODES[m]['prefetch_pages']} | {MODES[m].get('batch', batch)} | {best:.2f} | "
            f"{len(rows) / best:.3f} | {base / best:.2f}x | {rendering[m]:.2f} | {max(busy[m]):.2f} |"
        )
    same = all(texts[m] == texts[modes[0]] for m in modes)
    print(f"\nsame text in every mode: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
