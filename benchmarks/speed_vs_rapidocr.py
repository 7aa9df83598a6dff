"""Throughput, latency, accuracy and memory of teamocr against RapidOCR 3.10, in one run.

    python benchmarks/speed_vs_rapidocr.py [--dataset DIR] [--limit N] [--threads N] [--out DIR]

Each system runs in its own subprocess (this script with ``--worker NAME``) on the CPU with the
same thread budget: teamocr with ``EngineSettings(threads=N, device="cpu")`` on top of the loaded
settings, RapidOCR (PP-OCRv6 small, its defaults) with ONNX Runtime ``intra_op_num_threads=N``.
A worker loads its models, warms up on the first image (not counted), then times only the loop
over the images, and writes ``<name>.jsonl`` (the scorer's predictions format) and
``<name>.json`` (wall time, seconds per image, peak RSS) under ``--out``. The parent scores
both with the shared ``score.py``, measures one real ``teamocr ocr`` process and prints a table
and a verdict against the targets.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("benchmarks.speed_vs_rapidocr")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO.parent / "shared" / "bench" / "data" / "screens"
DEFAULT_SCORER = REPO.parent / "shared" / "bench" / "score.py"
SYSTEMS = ("teamocr", "rapidocr")
MIN_RATIO = 1.3  # teamocr images/s over RapidOCR's
MAX_RSS_MIB = 1.5 * 1024  # 1.5 GiB, for the bench process and the CLI process alike

Lines = list[dict[str, Any]]


def load_labels(dataset: Path, limit: int | None) -> list[dict[str, Any]]:
    """The first ``limit`` rows of ``labels.jsonl`` (all when ``limit`` is None)."""
    text = (dataset / "labels.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def teamocr_reader(threads: int) -> Callable[[str], Lines]:
    """Build the teamocr engine once; return image path -> scorer lines."""
    from config.settings import load_settings
    from engine.pipeline import build_engine

    settings = dataclasses.replace(load_settings().engine, threads=threads, device="cpu")
    log.info("teamocr engine settings: %s", settings)
    engine = build_engine(settings)

    def read(path: str) -> Lines:
        page = engine.ocr(path)
        return [{"text": ln.text, "points": [list(p) for p in ln.points]} for ln in page.lines]

    return read


def rapidocr_reader(threads: int) -> Callable[[str], Lines]:
    """Build RapidOCR (its defaults, ``threads`` intra-op threads); return path -> scorer lines."""
    from rapidocr import RapidOCR

    ocr = RapidOCR(params={"EngineConfig.onnxruntime.intra_op_num_threads": threads,
                           "EngineConfig.onnxruntime.inter_op_num_threads": 1})

    def read(path: str) -> Lines:
        result = ocr(path)
        boxes, txts = getattr(result, "boxes", None), getattr(result, "txts", None)
        if boxes is None or txts is None:
            return []
        return [{"text": t, "points": [[float(x), float(y)] for x, y in b]} for b, t in zip(boxes, txts)]

    return read


def run_worker(name: str, dataset: Path, limit: int | None, threads: int, out: Path) -> None:
    """Load one system, time it over the dataset and write its predictions and summary."""
    labels = load_labels(dataset, limit)
    if not labels:
        raise ValueError(f"{dataset / 'labels.jsonl'}: no images")
    start = time.perf_counter()
    read = teamocr_reader(threads) if name == "teamocr" else rapidocr_reader(threads)
    read(str(dataset / labels[0]["image"]))  # warm-up: lazy model loads, first-call allocations
    load_seconds = time.perf_counter() - start
    rows, seconds = [], []
    loop_start = time.perf_counter()
    for label in labels:
        t0 = time.perf_counter()
        lines = read(str(dataset / label["image"]))
        seconds.append(time.perf_counter() - t0)
        rows.append({"image": label["image"], "lines": lines, "seconds": round(seconds[-1], 4)})
    wall = time.perf_counter() - loop_start
    with open(out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    summary = {"system": name, "images": len(rows), "threads": threads, "wall_seconds": wall,
               "load_and_warmup_seconds": load_seconds, "seconds": seconds,
               "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    (out / f"{name}.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    log.info("%s: %d images in %.1f s", name, len(rows), wall)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def spawn_worker(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--dataset", str(args.dataset),
           "--threads", str(args.threads), "--out", str(args.out)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    log.info("running %s in its own process", name)
    subprocess.run(cmd, cwd=REPO, check=True)
    return json.loads((args.out / f"{name}.json").read_text(encoding="utf-8"))


def score(scorer: Path, labels_dir: Path, predictions: Path) -> dict[str, Any]:
    """Run score.py and return its ``--json`` summary."""
    out = predictions.with_suffix(".score.json")
    subprocess.run([sys.executable, str(scorer), str(labels_dir), str(predictions), "--json", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text(encoding="utf-8"))


def cli_peak_rss_mib(images: list[Path], threads: int, out: Path) -> float:
    """Peak RSS of one real ``teamocr ocr`` process over ``images``.

    ``os.wait4`` returns the rusage of exactly that child: the figure ``/usr/bin/time -v``
    prints as "Maximum resident set size", without other children mixed in.
    """
    exe = shutil.which("teamocr", path=str(Path(sys.executable).parent)) or shutil.which("teamocr")
    cmd = [exe] if exe else [sys.executable, "-m", "daemon.cli"]
    cmd += ["ocr", *map(str, images), "--jsonl", str(out / "cli.jsonl")]
    env = {**os.environ, "TEAMOCR_ENGINE__THREADS": str(threads), "TEAMOCR_ENGINE__DEVICE": "cpu"}
    log.info("measuring one teamocr ocr process over %d images", len(images))
    with open(out / "cli.log", "w", encoding="utf-8") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}; see {out / 'cli.log'}")
    return usage.ru_maxrss / 1024


def report(args: argparse.Namespace, summaries: dict[str, dict[str, Any]],
           scores: dict[str, dict[str, Any]], cli_rss: float, cli_images: int) -> bool:
    """Print the table and the verdict; True when every target is met."""
    n = summaries["teamocr"]["images"]
    print(f"dataset {args.dataset} ({n} images), threads {args.threads} per system, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, out {args.out}")
    print(f"{'system':<10}{'img/s':>8}{'p50 s':>8}{'p95 s':>8}{'acc all':>9}{'acc line':>10}"
          f"{'peak RSS MiB':>14}{'load s':>8}")
    ips, rss = {}, {}
    for name in SYSTEMS:
        s, sc = summaries[name], scores[name]
        ips[name] = s["images"] / s["wall_seconds"]
        rss[name] = s["peak_rss_kib"] / 1024
        print(f"{name:<10}{ips[name]:>8.3f}{percentile(s['seconds'], 50):>8.3f}"
              f"{percentile(s['seconds'], 95):>8.3f}{sc['all']['accuracy']:>9.4f}"
              f"{sc['line_labelled']['accuracy']:>10.4f}{rss[name]:>14.0f}"
              f"{s['load_and_warmup_seconds']:>8.1f}")
    ratio = ips["teamocr"] / ips["rapidocr"]
    print(f"ratio teamocr/rapidocr images/s: {ratio:.3f}")
    print(f"teamocr ocr CLI process over {cli_images} images: peak RSS {cli_rss:.0f} MiB")
    acc_ok = all(scores["teamocr"][k]["accuracy"] >= scores["rapidocr"][k]["accuracy"]
                 for k in ("all", "line_labelled"))
    team_rss = max(rss["teamocr"], cli_rss)
    checks = {f"speed ratio {ratio:.2f} >= {MIN_RATIO}": ratio >= MIN_RATIO,
              "teamocr accuracy >= RapidOCR (all and line-labelled)": acc_ok,
              f"teamocr peak RSS {team_rss:.0f} MiB <= {MAX_RSS_MIB:.0f} MiB": team_rss <= MAX_RSS_MIB}
    passed = all(checks.values())
    print("verdict: " + ("PASS" if passed else "FAIL") + " - "
          + "; ".join(f"{text}: {'yes' if ok else 'NO'}" for text, ok in checks.items()))
    return passed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET,
                        help="folder with labels.jsonl and images/ (default: the screens set)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N images")
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="CPU threads per system")
    parser.add_argument("--out", type=Path, help="keep outputs here (default benchmarks/out/<time>)")
    parser.add_argument("--scorer", type=Path, default=DEFAULT_SCORER, help="path to score.py")
    parser.add_argument("--cli-images", type=int, default=3, metavar="N",
                        help="images for the teamocr ocr peak-RSS check")
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.dataset = args.dataset.resolve()
    if args.threads < 1 or (args.limit is not None and args.limit < 1):
        raise ValueError("--threads and --limit must be 1 or more")
    if args.worker:
        run_worker(args.worker, args.dataset, args.limit, args.threads, args.out)
        return 0
    args.out = (args.out or REPO / "benchmarks" / "out" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    labels = load_labels(args.dataset, args.limit)
    # score.py reads only labels.jsonl from its dataset folder: a subset file scores --limit runs.
    (args.out / "labels.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in labels), encoding="utf-8")
    summaries = {name: spawn_worker(name, args) for name in SYSTEMS}
    scores = {name: score(args.scorer, args.out, args.out / f"{name}.jsonl") for name in SYSTEMS}
    cli_images = [args.dataset / row["image"] for row in labels[:args.cli_images]]
    cli_rss = cli_peak_rss_mib(cli_images, args.threads, args.out)
    passed = report(args, summaries, scores, cli_rss, len(cli_images))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
