"""Reading order: page text in order against the known order, today's row order, the block order
and RapidOCR 3.10's order on the same images.

    python benchmarks/reading_order.py [--sets screens,rendered] [--limit N] [--threads 2]
                                       [--cache DIR] [--no-rapidocr] [--out DIR]

Sets: ``screens`` (``../shared/bench/data/screens``; its label lines come in the page's DOM order,
a good proxy for reading order) and ``rendered`` (multi-column articles, sidebars, forms, tables,
lists and vertical Chinese pages that ``benchmarks/layout_pages.py`` draws with their order known).

The order score of a page: the truth is its label lines' texts in label order, the prediction its
lines' texts in the predicted order, both concatenated and normalised as score.py does (NFKC,
whitespace removed); score = 1 - edits / truth characters over the whole set (score.py's
``edit_distance``; predicted lines mostly inside an ignored region are left out, as score.py
leaves them out). Printed per set:

- teamocr's lines in the old row order (``PageResult.row_text``: rows across the whole page) and in
  the block order (``PageResult.text``), on the same lines; RapidOCR 3.10's lines in the order it
  returns them;
- "perfect boxes": the label boxes and texts ordered by each method (rows, blocks), which
  separates ordering from recognition;
- line accuracy (score.py, order-tolerant) of each system's lines;
- the layout's cost: milliseconds per page of ``engine.reading.arrange`` (merge + blocks), beside
  the engine's whole time per page (its ``total`` timing, when the pages were read in this run).

teamocr's readings are cached (``--cache DIR``, JSONL of lines with points and confidences before
the layout): a second run with the same cache lays the pages out anew without reading them again.
RapidOCR (``pip install 'rapidocr==3.10.0'``, the ``bench`` extra) is read in this process, one
image per call, with its defaults; ``--no-rapidocr`` leaves it out.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO.parent / "shared" / "bench"
Page = dict[str, Any]


def load_score() -> ModuleType:
    """The shared scorer (``../shared/bench/score.py``) as a module: its ``norm``, ``rect``,
    ``inter``, ``area``, ``edit_distance`` and ``score_image``."""
    spec = importlib.util.spec_from_file_location("bench_score", BENCH / "score.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(BENCH / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def labelled_set(name: str, out: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The folder and label rows of set ``name`` (``rendered`` is drawn into ``out`` first)."""
    if name == "rendered":
        sys.path.insert(0, str(REPO / "benchmarks"))
        from layout_pages import write_set

        folder = out / "rendered"
        write_set(folder)
    else:
        folder = BENCH / "data" / name
    rows = [json.loads(line) for line in (folder / "labels.jsonl").read_text("utf-8").splitlines() if line.strip()]
    return folder, rows


def read_teamocr(folder: Path, rows: list[dict[str, Any]], threads: int, cache: Path) -> list[Page]:
    """teamocr's raw readings of ``rows`` (lines before the layout), from ``cache`` when it holds them."""
    if cache.exists():
        got = {p["image"]: p for p in map(json.loads, cache.read_text("utf-8").splitlines()) if p}
        if all(r["image"] in got for r in rows):
            return [got[r["image"]] for r in rows]
    from config.settings import load_settings
    from engine import pipeline

    captured: list[Page] = []
    real = pipeline.arrange

    def keep(lines: Any, width: int, height: int, rotation: int = 0) -> Any:
        captured.append(
            {
                "width": width,
                "height": height,
                "rotation": rotation,
                "lines": [
                    {"text": ln.text, "points": [list(p) for p in ln.points], "confidence": ln.confidence}
                    for ln in lines
                ],
            }
        )
        return real(lines, width, height, rotation)

    engine = pipeline.build_engine(dataclasses.replace(load_settings().engine, threads=threads, device="cpu"))
    pipeline.arrange = keep  # type: ignore[assignment]  # the benchmark keeps the lines the layout is given
    pages = []
    try:
        for row in rows:
            captured.clear()
            page = engine.ocr(folder / row["image"])
            raw = next(c for c in captured if c["rotation"] == page.rotation)  # the reading the engine kept
            pages.append({"image": row["image"], **raw, "engine_seconds": page.timings["total"]})
    finally:
        pipeline.arrange = real  # type: ignore[assignment]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pages), "utf-8")
    return pages


def read_rapidocr(folder: Path, rows: list[dict[str, Any]], threads: int, cache: Path) -> list[Page]:
    """RapidOCR 3.10's lines, in the order it returns them (cached like teamocr's)."""
    if cache.exists():
        got = {p["image"]: p for p in map(json.loads, cache.read_text("utf-8").splitlines()) if p}
        if all(r["image"] in got for r in rows):
            return [got[r["image"]] for r in rows]
    from rapidocr import RapidOCR

    ocr = RapidOCR(
        params={
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )
    pages = []
    for row in rows:
        result = ocr(str(folder / row["image"]))
        boxes, txts = getattr(result, "boxes", None), getattr(result, "txts", None)
        lines = (
            []
            if boxes is None or txts is None
            else [{"text": t, "points": [[float(x), float(y)] for x, y in b]} for b, t in zip(boxes, txts)]
        )
        pages.append({"image": row["image"], "lines": lines})
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pages), "utf-8")
    return pages


def lay_out(raw: Page) -> tuple[Any, float]:
    """The PageResult the engine makes of a raw reading, and the layout's seconds."""
    from engine.reading import arrange
    from engine.types import PageResult, TextLine

    lines = [TextLine(ln["text"], tuple(map(tuple, ln["points"])), ln.get("confidence", 1.0)) for ln in raw["lines"]]  # type: ignore[arg-type]
    start = time.perf_counter()
    ordered, blocks = arrange(lines, raw["width"], raw["height"], raw.get("rotation", 0))
    seconds = time.perf_counter() - start
    return PageResult(ordered, raw["width"], raw["height"], rotation=raw.get("rotation", 0), blocks=blocks), seconds


class OrderScore:
    """Edits and truth characters summed over pages (1 - CER of the page text in order)."""

    def __init__(self, score: ModuleType) -> None:
        self.score = score
        self.edits = 0
        self.chars = 0

    def add(self, label: dict[str, Any], texts: list[str], boxes: list[Any] | None = None) -> float:
        s = self.score
        truth = "".join(s.norm(ln["text"]) for ln in label["lines"] if not ln.get("ignore") and ln.get("text") != "###")
        if boxes is not None:  # predictions mostly inside an ignored region are left out, as score.py does
            ignores = [s.rect(r["points"]) for r in label.get("ignore_regions") or ()]
            ignores += [s.rect(ln["points"]) for ln in label["lines"] if ln.get("ignore")]
            kept = []
            for text, points in zip(texts, boxes):
                r = s.rect(points)
                if not any(s.inter(r, ir) >= 0.5 * max(s.area(r), 1e-6) for ir in ignores):
                    kept.append(text)
            texts = kept
        pred = "".join(s.norm(t) for t in texts)
        edits = s.edit_distance(truth, pred)
        self.edits += edits
        self.chars += len(truth)
        return 1 - edits / max(1, len(truth))

    @property
    def accuracy(self) -> float:
        return max(0.0, 1 - self.edits / max(1, self.chars))


def line_accuracy(score: ModuleType, labels: list[dict[str, Any]], pages: list[list[dict[str, Any]]]) -> float:
    """score.py's order-tolerant accuracy of ``pages``' lines (its ``score_image``, summed)."""
    edits = chars = 0
    for label, lines in zip(labels, pages):
        r = score.score_image(label["lines"], lines, label.get("ignore_regions"), label.get("casefold", False))
        edits, chars = edits + r["edits"], chars + r["gt_chars"]
    return max(0.0, 1 - edits / max(1, chars))


def perfect(label: dict[str, Any]) -> Any:
    """The label's own lines as a page (perfect boxes and texts), in a shuffled order."""
    from engine.types import PageResult, TextLine

    lines = [ln for ln in label["lines"] if not ln.get("ignore") and ln.get("text") != "###"]
    order = np.random.default_rng(0).permutation(len(lines))
    return PageResult(
        # exact boxes ("pdf": no detector margin to take off)
        tuple(TextLine(lines[i]["text"], tuple(map(tuple, lines[i]["points"])), 1.0, "pdf") for i in order),  # type: ignore[arg-type]
        int(label.get("width", 0)),
        int(label.get("height", 0)),
    )


def ordered_texts(page: Any, method: str) -> list[str]:
    """The page's line texts in the order of ``method``: ``rows`` (old) or ``blocks`` (new)."""
    from engine.layout import group_rows

    if method == "rows":
        return [page.lines[i].text for row in group_rows(page._upright()) for i in row]
    return [page.lines[i].text for block in page.page_blocks() for i in block.lines]


def run_set(name: str, args: argparse.Namespace, score: ModuleType) -> dict[str, Any]:
    from engine.layout import group_rows

    folder, labels = labelled_set(name, args.out)
    labels = labels[: args.limit] if args.limit else labels
    cache = args.cache or args.out
    raw = read_teamocr(folder, labels, args.threads, cache / f"{name}-teamocr.jsonl")
    figures: dict[str, Any] = {"set": name, "images": len(labels)}
    scores = {k: OrderScore(score) for k in ("rows", "blocks", "rapidocr", "perfect rows", "perfect blocks")}
    by_kind: dict[str, dict[str, OrderScore]] = {}
    layout_ms = []
    laid_out = []
    per_page = []
    for label, reading in zip(labels, raw):
        page, seconds = lay_out(reading)
        layout_ms.append(1000 * seconds)
        laid_out.append([{"text": ln.text, "points": [list(p) for p in ln.points]} for ln in page.lines])
        boxes = [ln.points for ln in page.lines]
        rows_texts = ordered_texts(page, "rows")
        rows_boxes = [page.lines[i].points for row in group_rows(page._upright()) for i in row]
        r = scores["rows"].add(label, rows_texts, rows_boxes)
        b = scores["blocks"].add(label, [ln.text for ln in page.lines], boxes)
        kind = by_kind.setdefault(label.get("kind", "?"), {"rows": OrderScore(score), "blocks": OrderScore(score)})
        kind["rows"].add(label, rows_texts, rows_boxes)
        kind["blocks"].add(label, [ln.text for ln in page.lines], boxes)
        truth = perfect(label)
        pr = scores["perfect rows"].add(label, ordered_texts(truth, "rows"))
        pb = scores["perfect blocks"].add(label, ordered_texts(truth, "blocks"))
        per_page.append(
            {
                "image": label["image"],
                "rows": round(r, 4),
                "blocks": round(b, 4),
                "perfect rows": round(pr, 4),
                "perfect blocks": round(pb, 4),
            }
        )
    figures["line accuracy teamocr"] = round(line_accuracy(score, labels, laid_out), 4)
    figures["line accuracy teamocr before merge"] = round(line_accuracy(score, labels, [p["lines"] for p in raw]), 4)
    if not args.no_rapidocr:
        rapid = read_rapidocr(folder, labels, args.threads, cache / f"{name}-rapidocr.jsonl")
        for label, page in zip(labels, rapid):
            scores["rapidocr"].add(label, [ln["text"] for ln in page["lines"]], [ln["points"] for ln in page["lines"]])
        figures["line accuracy rapidocr"] = round(line_accuracy(score, labels, [p["lines"] for p in rapid]), 4)
    for key, value in scores.items():
        if value.chars:
            figures[f"order {key}"] = round(value.accuracy, 4)
    figures["order by kind (rows -> blocks)"] = {
        k: f"{v['rows'].accuracy:.3f} -> {v['blocks'].accuracy:.3f}" for k, v in sorted(by_kind.items())
    }
    engine_ms = [1000 * p["engine_seconds"] for p in raw if "engine_seconds" in p]
    if engine_ms:
        figures["engine ms/page (all stages)"] = round(float(np.mean(engine_ms)), 1)
    figures["layout ms/page"] = round(float(np.mean(layout_ms)), 2)
    figures["layout ms/page p95"] = round(float(np.percentile(layout_ms, 95)), 2)
    (args.out / f"{name}-pages.json").write_text(json.dumps(per_page, indent=1, ensure_ascii=False), "utf-8")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="screens,rendered")
    parser.add_argument("--limit", type=int, default=0, help="first N images of each set (0: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=None, help="folder of cached readings (default: --out)")
    parser.add_argument("--no-rapidocr", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / f"reading-order-{int(time.time())}")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    score = load_score()
    table = []
    for name in args.sets.split(","):
        figures = run_set(name, args, score)
        table.append(figures)
        print(json.dumps(figures, ensure_ascii=False), flush=True)
    (args.out / "figures.json").write_text(json.dumps(table, indent=1), "utf-8")
    heads = (
        "set",
        "images",
        "rows (today)",
        "blocks (new)",
        "RapidOCR 3.10",
        "perfect boxes: rows",
        "perfect boxes: blocks",
        "line acc. before / after",
        "RapidOCR line acc.",
        "layout ms/page (p95)",
    )
    print("\n| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    nan = float("nan")
    for f in table:
        cells = (
            f["set"],
            str(f["images"]),
            f"{f['order rows']:.4f}",
            f"{f['order blocks']:.4f}",
            f"{f.get('order rapidocr', nan):.4f}",
            f"{f['order perfect rows']:.4f}",
            f"{f['order perfect blocks']:.4f}",
            f"{f['line accuracy teamocr before merge']:.4f} / {f['line accuracy teamocr']:.4f}",
            f"{f.get('line accuracy rapidocr', nan):.4f}",
            f"{f['layout ms/page']:.1f} ({f['layout ms/page p95']:.1f})",
        )
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
