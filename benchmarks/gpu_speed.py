"""The engine on a GPU: images/s, accuracy against the CPU path and peak GPU memory, per precision
and batch size, and the same for a 20-page scanned PDF. ``benchmarks/gpu.sh`` runs it on a fresh
clone; ``--device cpu`` runs the same steps on the CPU (the dry run that CI-less machines can do).

    python benchmarks/gpu_speed.py [--device cuda] [--dtypes fp32,fp16,bf16] [--batches 1,8,32]
                                   [--limit N] [--pages 20] [--budget SECONDS]

Steps, in one process:

1. The CPU path (the default engine on ``device = "cpu"``: ONNX Runtime, INT8 recogniser) reads
   the screenshots (``../shared/bench/data/screens``, ``--limit`` of them) and the scan
   (``benchmarks/searchable_pdf.py``'s maker: ``--pages`` pages of ``../shared/bench/data/real``
   as a 300 DPI scanned PDF); both are scored with ``../shared/bench/score.py``: the reference.
2. For each precision (``engine.backend = "torch"``, ``engine.device = --device``; fp32, or
   ``engine.half`` with ``half_dtype`` fp16 / bf16: autocast on CUDA) and each batch size (images
   per ``ocr_many`` call; detection batches same-shaped images up to ``gpu_det_batch_size``): one
   warm-up batch, then every image timed, images/s, score.py accuracy and the difference from the
   CPU path's in points, and ``torch.cuda.max_memory_allocated`` over the timed reads.
3. For each precision, the scan through ``read_document`` (``gpu_det_batch_size`` pages a batch,
   pages rendered ahead): pages/s, accuracy, difference, peak memory.

``--budget`` bounds the whole run: a step that would not fit in what is left (judged by the step
before it) is skipped and says so. Exit 0 when every accuracy is within ``--tolerance`` points
(0.5) of the CPU path's, 1 when one is not, 2 when there is no CUDA device (or data) to run on.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from searchable_pdf import BENCH, choose_rows, load_rows, make_scanned_pdf, write_subset

PRECISIONS = {
    "fp32": {"half": False},
    "fp16": {"half": True, "half_dtype": "fp16"},
    "bf16": {"half": True, "half_dtype": "bf16"},
}


@dataclasses.dataclass
class Figure:
    what: str  # "screens" | "pdf"
    path: str  # "cpu (reference)" | the precision
    batch: int
    items: int = 0
    seconds: float = 0.0
    accuracy: float | None = None
    peak_mib: float | None = None
    skipped: str = ""


class Budget:
    """Seconds left of ``total``; ``fits`` judges a step by the longest one so far."""

    def __init__(self, total: float) -> None:
        self.end = time.monotonic() + total
        self.longest = 0.0

    def fits(self) -> bool:
        return time.monotonic() + self.longest * 1.2 < self.end

    def timed(self, step: Callable[..., Figure], *args: Any) -> Figure:
        start = time.monotonic()
        figure = step(*args)
        self.longest = max(self.longest, time.monotonic() - start)
        return figure


def score(scorer: Path, dataset: Path, predictions: list[dict[str, Any]], out: Path) -> float:
    """score.py's ``all`` accuracy of ``predictions`` on ``dataset``."""
    path = out.with_suffix(".jsonl")
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in predictions), encoding="utf-8")
    summary = out.with_suffix(".score.json")
    cmd = [sys.executable, str(scorer), str(dataset), str(path), "--json", str(summary)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return float(json.loads(summary.read_text(encoding="utf-8"))["all"]["accuracy"])


def line_rows(page: Any, sx: float = 1.0, sy: float = 1.0) -> list[dict[str, Any]]:
    return [{"text": line.text, "points": [[x * sx, y * sy] for x, y in line.points]} for line in page.lines]


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mib(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    return float(torch.cuda.max_memory_allocated()) / 2**20


def read_screens(
    engine: Any, images: Sequence[tuple[str, bytes]], batch: int, device: str
) -> tuple[float, list[dict[str, Any]]]:
    """(seconds, predictions) of every image, ``batch`` per ``ocr_many`` call, after one warm-up batch."""
    engine.ocr_many([data for _, data in images[:batch]], [name for name, _ in images[:batch]])
    reset_peak(device)
    predictions: list[dict[str, Any]] = []
    start = time.perf_counter()
    for k in range(0, len(images), batch):
        chunk = images[k : k + batch]
        for (name, _), page in zip(chunk, engine.ocr_many([d for _, d in chunk], [n for n, _ in chunk])):
            lines = [] if isinstance(page, Exception) else line_rows(page)
            predictions.append({"image": name, "lines": lines})
    sync(device)
    return time.perf_counter() - start, predictions


def read_scan(
    engine: Any, data: bytes, rows: Sequence[dict[str, Any]], batch: int, device: str
) -> tuple[float, list[dict[str, Any]]]:
    """(seconds, predictions) of the scan's pages, boxes scaled back into each source image's pixels."""
    reset_peak(device)
    start = time.perf_counter()
    document = engine.open_document(data, "scan.pdf")
    if document is None:
        raise SystemExit("the scan is not read as a document")
    predictions = []
    for number, page in engine.read_document(document, batch):
        row = rows[number - 1]
        lines = (
            []
            if isinstance(page, Exception)
            else line_rows(page, row["width"] / page.width, row["height"] / page.height)
        )
        predictions.append({"image": row["image"], "lines": lines})
    sync(device)
    return time.perf_counter() - start, predictions


def print_table(figures: Sequence[Figure], reference: dict[str, float | None], tolerance: float) -> bool:
    """The table; True when every accuracy measured is within ``tolerance`` points of the CPU path's."""
    ok = True
    print("\n| input | path | batch | items | seconds | items/s | accuracy | vs CPU (points) | peak GPU MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f in figures:
        if f.skipped:
            print(f"| {f.what} | {f.path} | {f.batch} | - | - | - | - | - | {f.skipped} |")
            continue
        ref = reference.get(f.what)
        diff = (f.accuracy - ref) * 100 if f.accuracy is not None and ref is not None else None
        if diff is not None and f.path != "cpu (reference)" and abs(diff) > tolerance:
            ok = False
        peak = f"{f.peak_mib:.0f}" if f.peak_mib is not None else "-"
        print(
            f"| {f.what} | {f.path} | {f.batch} | {f.items} | {f.seconds:.2f} | {f.items / f.seconds:.2f} | "
            f"{f.accuracy:.4f} | {diff:+.2f} | {peak} |"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--dtypes", default="fp32,fp16,bf16", help="of fp32, fp16, bf16 (16-bit on CUDA only)")
    parser.add_argument("--batches", default="1,8,32", help="images per ocr_many call")
    parser.add_argument("--limit", type=int, default=0, help="only the first N screenshots (0: all)")
    parser.add_argument("--pages", type=int, default=20, help="pages of the scanned PDF")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for the whole run")
    parser.add_argument("--tolerance", type=float, default=0.5, help="points of accuracy from the CPU path's")
    parser.add_argument("--threads", type=int, default=0, help="engine.threads (0: every core)")
    parser.add_argument("--scorer", type=Path, default=BENCH / "score.py")
    parser.add_argument("--out", type=Path, default=None, help="keep predictions here (default: a temporary folder)")
    args = parser.parse_args(argv)
    budget = Budget(args.budget)
    dtypes = args.dtypes.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    if any(d not in PRECISIONS for d in dtypes) or any(b < 1 for b in batches):
        parser.error("--dtypes are fp32, fp16, bf16; --batches are 1 or more")
    if args.device == "cpu" and dtypes != ["fp32"]:
        parser.error("on the CPU only fp32 runs (the engine asks for 16-bit on CUDA only)")

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            f"no CUDA device: torch {torch.__version__} (CUDA build: {torch.version.cuda}) sees none", file=sys.stderr
        )
        return 2
    screens, real = BENCH / "data" / "screens", BENCH / "data" / "real"
    if not (screens / "labels.jsonl").is_file() or not (real / "labels.jsonl").is_file() or not args.scorer.is_file():
        print(f"the bench data or scorer is missing under {BENCH}", file=sys.stderr)
        return 2

    from config.settings import load_settings
    from engine.pipeline import build_engine

    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else "none (dry run on the CPU)"
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device: {gpu}", flush=True)
    base = dataclasses.replace(load_settings().engine, threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="teamocr-gpu-") as folder:
        out = args.out or Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        screen_rows = load_rows(screens)[: args.limit or None]
        screen_set = write_subset(screen_rows, screens, out / "screens") if args.limit else screens
        images = [(row["image"], (screens / row["image"]).read_bytes()) for row in screen_rows]
        page_rows = choose_rows(load_rows(real), args.pages)
        page_set = write_subset(page_rows, real, out / "pages")
        make_scanned_pdf(page_rows, real, out / "scan.pdf")
        scan = (out / "scan.pdf").read_bytes()
        print(f"{len(images)} screenshots, a {len(page_rows)}-page scan; budget {args.budget:.0f} s", flush=True)

        figures: list[Figure] = []

        def screens_step(engine: Any, path: str, batch: int, device: str) -> Figure:
            seconds, predictions = read_screens(engine, images, batch, device)
            accuracy = score(args.scorer, screen_set, predictions, out / f"screens-{path.split()[0]}-{batch}")
            return Figure("screens", path, batch, len(images), seconds, accuracy, peak_mib(device))

        def scan_step(engine: Any, path: str, batch: int, device: str) -> Figure:
            seconds, predictions = read_scan(engine, scan, page_rows, batch, device)
            accuracy = score(args.scorer, page_set, predictions, out / f"pdf-{path.split()[0]}")
            return Figure("pdf", path, batch, len(page_rows), seconds, accuracy, peak_mib(device))

        cpu = build_engine(dataclasses.replace(base, device="cpu"))
        ref_batch = load_settings().daemon.batch_size
        for step in (screens_step, scan_step):
            figures.append(budget.timed(step, cpu, "cpu (reference)", ref_batch, "cpu"))
            print(json.dumps(dataclasses.asdict(figures[-1])), flush=True)
        reference = {f.what: f.accuracy for f in figures}
        del cpu
        for dtype in dtypes:
            if not budget.fits():
                figures += [
                    Figure(w, dtype, b, skipped="skipped: time budget") for w in ("screens", "pdf") for b in batches[:1]
                ]
                continue
            settings = dataclasses.replace(base, backend="torch", device=args.device, **PRECISIONS[dtype])  # type: ignore[arg-type]
            engine = build_engine(settings)
            for batch in batches:
                if budget.fits():
                    figures.append(budget.timed(screens_step, engine, dtype, batch, args.device))
                else:
                    figures.append(Figure("screens", dtype, batch, skipped="skipped: time budget"))
                print(json.dumps(dataclasses.asdict(figures[-1])), flush=True)
            pages_batch = settings.gpu_det_batch_size if args.device == "cuda" else settings.det_batch_size
            if budget.fits():
                figures.append(budget.timed(scan_step, engine, dtype, pages_batch, args.device))
            else:
                figures.append(Figure("pdf", dtype, pages_batch, skipped="skipped: time budget"))
            print(json.dumps(dataclasses.asdict(figures[-1])), flush=True)
            del engine
            if args.device == "cuda":
                torch.cuda.empty_cache()
        ok = print_table(figures, reference, args.tolerance)
    print(f"\nevery accuracy within {args.tolerance} points of the CPU path's: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
