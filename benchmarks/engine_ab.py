"""teamocr against itself: engine settings variants read the same images, interleaved, in one process.

    python benchmarks/engine_ab.py [--dataset DIR ...] [--limit N] [--threads N] [--batch N]
                                   [--variant NAME:key=value,key=value ...] [--out DIR]

Each variant is the loaded engine settings (``threads=N, device="cpu"``) with its changes; variant
``base`` (no changes) always runs. The images are read ``--batch`` per ``ocr_many`` call (the
daemon's batch size), every batch by every variant in turn, the order turning round from batch to
batch, so a slow spell of a shared host falls on all alike. Per dataset and variant it prints
images/s (seconds inside ``ocr_many``), its ratio to ``base``, score.py's accuracy ("all" and
"line-labelled"), and the crops the recogniser was given and how many of them it did not read
(blank or a repeat, ``engine.recognition.skip``).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO.parent / "shared" / "bench"
DEFAULT_DATASETS = [BENCH / "data" / "screens", BENCH / "data" / "real"]
DEFAULT_SCORER = BENCH / "score.py"

log = logging.getLogger("benchmarks.engine_ab")


class SkipCounter(logging.Handler):
    """Adds up the recogniser's debug record of each call: crops, blank, repeats."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts = [0, 0, 0]

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple) and len(record.args) == 3:
            for k, value in enumerate(record.args):
                self.counts[k] += int(value)  # type: ignore[call-overload]


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, body = text.partition(":")
    changes = dict(part.split("=", 1) for part in body.split(",") if part.strip())
    if not name or any(not key for key in changes):
        raise argparse.ArgumentTypeError(f"expected NAME:key=value,..., got {text!r}")
    return name, changes


def build(changes: dict[str, str], threads: int) -> Any:
    """The engine of the loaded settings with ``changes`` (values read as JSON, else as text)."""
    from config.settings import apply_overrides, load_settings
    from engine.pipeline import build_engine

    values: dict[str, Any] = {"engine.threads": threads, "engine.device": "cpu"}
    for key, text in changes.items():
        try:
            values[f"engine.{key}"] = json.loads(text)
        except json.JSONDecodeError:
            values[f"engine.{key}"] = text
    return build_engine(apply_overrides(load_settings(), values, "--variant").engine)


def run_dataset(dataset: Path, engines: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    text = (dataset / "labels.jsonl").read_text(encoding="utf-8")
    labels = [json.loads(line) for line in text.splitlines() if line.strip()][: args.limit or None]
    out = args.out / dataset.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "labels.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labels), "utf-8")
    counter = SkipCounter()
    rec_log = logging.getLogger("engine.recognition.predictor")
    rec_log.addHandler(counter)
    rec_log.setLevel(logging.DEBUG)
    rec_log.propagate = False  # counted, not printed
    names = list(engines)
    seconds = dict.fromkeys(names, 0.0)
    counts = {name: [0, 0, 0] for name in names}
    rows: dict[str, list[str]] = {name: [] for name in names}
    batches = [labels[i : i + args.batch] for i in range(0, len(labels), args.batch)]
    for b, chunk in enumerate(batches):
        paths = [str(dataset / row["image"]) for row in chunk]
        for name in names[b % len(names) :] + names[: b % len(names)]:
            counter.counts = [0, 0, 0]
            start = time.perf_counter()
            pages = engines[name].ocr_many(paths)
            seconds[name] += time.perf_counter() - start
            counts[name] = [a + c for a, c in zip(counts[name], counter.counts)]
            for row, page in zip(chunk, pages):
                lines = [] if isinstance(page, Exception) else page.lines
                found = [{"text": ln.text, "points": [list(p) for p in ln.points]} for ln in lines]
                rows[name].append(json.dumps({"image": row["image"], "lines": found}, ensure_ascii=False) + "\n")
    rec_log.removeHandler(counter)
    rec_log.propagate = True
    results = []
    for name in names:
        predictions = out / f"{name}.jsonl"
        predictions.write_text("".join(rows[name]), encoding="utf-8")
        scored = out / f"{name}.score.json"
        subprocess.run(
            [sys.executable, str(args.scorer), str(out), str(predictions), "--json", str(scored)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        score = json.loads(scored.read_text(encoding="utf-8"))
        crops, blank, repeats = counts[name]
        results.append(
            {
                "dataset": dataset.name,
                "variant": name,
                "images": len(labels),
                "seconds": seconds[name],
                "all": score["all"]["accuracy"],
                "line": score["line_labelled"]["accuracy"],
                "crops": crops,
                "blank": blank,
                "repeats": repeats,
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, action="append", help="bench set folder (default: screens, real)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N images of each set")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4, help="images per ocr_many call")
    parser.add_argument("--variant", type=parse_variant, action="append", default=[], metavar="NAME:key=value,...")
    parser.add_argument("--out", type=Path, help="default benchmarks/out/ab-<time>")
    parser.add_argument("--scorer", type=Path, default=DEFAULT_SCORER)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.out = (args.out or REPO / "benchmarks" / "out" / time.strftime("ab-%Y%m%d-%H%M%S")).resolve()
    engines = {"base": build({}, args.threads)}
    for name, changes in args.variant:
        engines[name] = build(changes, args.threads)
    datasets = [path.resolve() for path in args.dataset or DEFAULT_DATASETS]
    first = json.loads((datasets[0] / "labels.jsonl").read_text(encoding="utf-8").splitlines()[0])
    for engine in engines.values():  # warm-up: first-call allocations are not timed
        engine.ocr_many([str(datasets[0] / first["image"])])
    results = [r for dataset in datasets for r in run_dataset(dataset, engines, args)]
    print(f"threads {args.threads}, batch {args.batch}, variants {dict(args.variant)}, out {args.out}")
    print(
        f"{'set':<9}{'variant':<12}{'images':>7}{'img/s':>8}{'x base':>8}{'acc all':>9}{'acc line':>10}"
        f"{'crops':>8}{'blank':>7}{'repeats':>8}{'skipped':>8}"
    )
    for r in results:
        base = next(b for b in results if b["dataset"] == r["dataset"] and b["variant"] == "base")
        ips = r["images"] / r["seconds"]
        skipped = (r["blank"] + r["repeats"]) / max(1, r["crops"])
        print(
            f"{r['dataset']:<9}{r['variant']:<12}{r['images']:>7}{ips:>8.3f}{base['seconds'] / r['seconds']:>8.3f}"
            f"{r['all']:>9.4f}{r['line']:>10.4f}{r['crops']:>8}{r['blank']:>7}{r['repeats']:>8}{skipped:>8.2%}"
        )
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
