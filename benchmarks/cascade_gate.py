"""The tiny-then-small recognition cascade's gate, chosen offline from one reading of every line by both.

    python benchmarks/cascade_gate.py [--dataset DIR ...] [--limit N] [--threads N] [--batch N]
                                      [--gates 0.5,0.7,...] [--cache DIR] [--out DIR]

Per bench set (default: ``../shared/bench/data/screens`` and ``real``), each image is detected once
with the small set's detector (orientation is not run: the bench pages are upright), and every
line crop is recognised by both the tiny and the small recogniser (the engine's INT8 networks,
``--batch`` images' lines per call, which recogniser goes first turning round from batch to
batch), each call timed. Then, offline from those readings, for each gate signal (``mean``,
``min_char``, ``margin``: :class:`engine.recognition.ctc.Reading`) and each gate, the cascade's
output takes small's reading of every line whose tiny signal is below the gate and tiny's of the
rest; the pages are made as the engine makes them (``rec_min_confidence``, then
``engine.reading.arrange``) and scored with score.py. Printed per set, signal and gate:

- ``re-read``: the share of lines small reads again; ``cols``: their share of the input columns
  (what a line costs the recogniser is about its width);
- ``acc``: score.py's accuracy ("all"; the line-labelled slice in ``line``);
- ``cost``: the estimated recognition time relative to small alone, tiny's time + re-read share
  x small's time, over small's time (both measured in this run); ``cost cols`` the same with the
  column share.

Then tiny alone and small alone, and per signal the cheapest gate whose accuracy on every set is
at least small alone's (both rounded to 3 places), with its cost per set. The readings are kept
(``--cache DIR``: JSON per set) so another run scores other gates without reading again.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO.parent / "shared" / "bench"
DEFAULT_DATASETS = [BENCH / "data" / "screens", BENCH / "data" / "real"]
DEFAULT_GATES = "0.3,0.5,0.6,0.7,0.8,0.85,0.9,0.93,0.95,0.97,0.98,0.99,0.995"
SIGNALS = ("mean", "min_char", "margin")
FIELDS = ("text", "confidence", "min_char", "margin")  # a reading as stored: [text, mean, min_char, margin]

log = logging.getLogger("benchmarks.cascade_gate")

sys.path.insert(0, str(REPO / "benchmarks"))

import reading_order  # noqa: E402  (the shared scorer, loaded as tables.py loads it)


def build(threads: int) -> Any:
    """The small engine of the loaded settings, its recogniser a cascade (its first reader: tiny)."""
    from config.settings import apply_overrides, load_settings
    from engine.pipeline import build_engine

    values = {"engine.threads": threads, "engine.device": "cpu", "engine.rec_cascade": "tiny"}
    return build_engine(apply_overrides(load_settings(), values, "cascade_gate").engine)


def read_set(engine: Any, labels: list[dict[str, Any]], dataset: Path, batch: int) -> dict[str, Any]:
    """Detect each image once, read every crop with tiny and with small: boxes, widths, readings, seconds."""
    from engine.preprocess import load_image
    from engine.recognition.crop import crop_quad
    from engine.recognition.predictor import HEIGHT, STRIDE

    readers = {"tiny": engine.recognizer.first, "small": engine.recognizer.second}
    seconds = dict.fromkeys(readers, 0.0)
    images: list[dict[str, Any]] = []
    settings = engine.settings
    for b in range(0, len(labels), batch):
        chunk = labels[b : b + batch]
        decoded = [
            load_image(
                str(dataset / row["image"]), max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes
            )
            for row in chunk
        ]
        found = engine.detector.detect_many(decoded)
        crops, owner = [], []
        for k, (image, boxes) in enumerate(zip(decoded, found)):
            if isinstance(boxes, Exception):
                log.warning("%s: %s", chunk[k]["image"], boxes)
                boxes = []
            images.append({"image": chunk[k]["image"], "width": image.shape[1], "height": image.shape[0], "lines": []})
            for quad, _ in boxes:
                crop = crop_quad(image, quad)
                crops.append(crop)
                owner.append((len(images) - 1, quad))
        names = list(readers)
        order = names[(b // batch) % 2 :] + names[: (b // batch) % 2]
        read: dict[str, list[Any]] = {}
        for name in order:
            start = time.perf_counter()
            read[name] = readers[name].readings(crops)
            seconds[name] += time.perf_counter() - start
        for c, (crop, (i, quad)) in enumerate(zip(crops, owner)):
            h, w = crop.shape[:2]
            columns = min(3200, max(STRIDE, math.ceil(HEIGHT * w / max(h, 1))))
            images[i]["lines"].append(
                {
                    "points": [[float(x), float(y)] for x, y in quad],
                    "columns": columns,
                    **{name: [getattr(read[name][c], f) for f in FIELDS] for name in readers},
                }
            )
        log.info("%s: %d/%d images", dataset.name, min(b + batch, len(labels)), len(labels))
    return {"images": images, "seconds": seconds}


def pages(readings: dict[str, Any], choose: Any, min_confidence: float) -> list[dict[str, Any]]:
    """Prediction rows of score.py: each line's chosen reading, the page made as the engine makes it."""
    from engine.reading import arrange
    from engine.types import TextLine

    rows = []
    for image in readings["images"]:
        lines = []
        for line in image["lines"]:
            text, conf = choose(line)[:2]
            if text.strip() and conf >= min_confidence:
                lines.append(TextLine(text, tuple((x, y) for x, y in line["points"]), conf))  # type: ignore[arg-type]
        ordered, _ = arrange(lines, image["width"], image["height"])
        found = [{"text": ln.text, "points": [list(p) for p in ln.points]} for ln in ordered]
        rows.append({"image": image["image"], "lines": found})
    return rows


def score(score_module: ModuleType, rows: list[dict[str, Any]], out: Path, name: str) -> dict[str, Any]:
    """score.py's summary of ``rows`` against the labels of the images read (written to ``out``)."""
    predictions = out / f"{name}.jsonl"
    predictions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()):
        summary: dict[str, Any] = score_module.main([str(out), str(predictions)])
    return summary


def gated(signal: str, gate: float) -> Any:
    index = 1 + SIGNALS.index(signal)
    return lambda line: line["small"] if line["tiny"][index] < gate else line["tiny"]


def analyse(dataset: Path, readings: dict[str, Any], gates: list[float], out: Path, args: Any) -> dict[str, Any]:
    """Accuracy, re-read share and estimated cost of tiny, small and every (signal, gate) on one set."""
    score_module = reading_order.load_score()
    lines = [line for image in readings["images"] for line in image["lines"]]
    columns = sum(line["columns"] for line in lines) or 1
    tiny_s, small_s = readings["seconds"]["tiny"], readings["seconds"]["small"]
    result: dict[str, Any] = {"dataset": dataset.name, "lines": len(lines), "tiny_s": tiny_s, "small_s": small_s}
    for name in ("tiny", "small"):
        summary = score(score_module, pages(readings, lambda line, n=name: line[n], args.min_conf), out, name)
        result[name] = {"all": summary["all"]["accuracy"], "line": summary["line_labelled"]["accuracy"]}
    rows = []
    for signal in SIGNALS:
        index = 1 + SIGNALS.index(signal)
        for gate in gates:
            again = [line for line in lines if line["tiny"][index] < gate]
            share = len(again) / max(1, len(lines))
            col_share = sum(line["columns"] for line in again) / columns
            summary = score(score_module, pages(readings, gated(signal, gate), args.min_conf), out, f"{signal}-{gate}")
            rows.append(
                {
                    "signal": signal,
                    "gate": gate,
                    "reread": share,
                    "reread_cols": col_share,
                    "all": summary["all"]["accuracy"],
                    "line": summary["line_labelled"]["accuracy"],
                    "cost": (tiny_s + share * small_s) / small_s,
                    "cost_cols": (tiny_s + col_share * small_s) / small_s,
                }
            )
    result["gates"] = rows
    return result


def report(results: list[dict[str, Any]]) -> None:
    for r in results:
        print(
            f"\n{r['dataset']}: {r['lines']} lines; recognition seconds tiny {r['tiny_s']:.1f},"
            f" small {r['small_s']:.1f} (tiny {r['tiny_s'] / r['small_s']:.3f} of small)"
        )
        print(f"  tiny alone   acc {r['tiny']['all']:.4f} (line {r['tiny']['line']:.4f})")
        print(f"  small alone  acc {r['small']['all']:.4f} (line {r['small']['line']:.4f})")
        print(f"  {'signal':<9}{'gate':>6}{'re-read':>9}{'cols':>7}{'acc':>8}{'line':>8}{'cost':>7}{'cost cols':>10}")
        for g in r["gates"]:
            print(
                f"  {g['signal']:<9}{g['gate']:>6.3f}{g['reread']:>9.1%}{g['reread_cols']:>7.1%}{g['all']:>8.4f}"
                f"{g['line']:>8.4f}{g['cost']:>7.3f}{g['cost_cols']:>10.3f}"
            )
    print("\ncheapest gate per signal with accuracy >= small alone's on every set (3 places):")
    for signal in SIGNALS:
        gates = sorted({g["gate"] for g in results[0]["gates"] if g["signal"] == signal})
        chosen = None
        for gate in gates:  # a higher gate re-reads more: the first that holds is the cheapest
            rows = [next(g for g in r["gates"] if g["signal"] == signal and g["gate"] == gate) for r in results]
            if all(round(g["all"], 3) >= round(r["small"]["all"], 3) for g, r in zip(rows, results)):
                chosen = (gate, rows)
                break
        if chosen is None:
            print(f"  {signal:<9} none of the gates")
            continue
        gate, rows = chosen
        parts = ", ".join(
            f"{r['dataset']} acc {g['all']:.4f} vs {r['small']['all']:.4f}, re-read {g['reread']:.1%},"
            f" cost {g['cost']:.3f} (cols {g['cost_cols']:.3f})"
            for g, r in zip(rows, results)
        )
        faster = all(g["cost_cols"] < 1.0 and g["cost"] < 1.0 for g in rows)
        print(f"  {signal:<9} gate {gate}: {parts}; {'faster' if faster else 'not faster'} than small alone")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, action="append", help="bench set folder (default: screens, real)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N images of each set")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4, help="images whose lines are recognised in one call")
    parser.add_argument("--gates", default=DEFAULT_GATES, help="comma-separated gates, tried for every signal")
    parser.add_argument("--cache", type=Path, help="keep the readings here; a later run with it reads nothing")
    parser.add_argument("--out", type=Path, help="default benchmarks/out/cascade-<time>")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.out = (args.out or REPO / "benchmarks" / "out" / time.strftime("cascade-%Y%m%d-%H%M%S")).resolve()
    gates = [float(part) for part in args.gates.split(",") if part.strip()]
    from config.settings import load_settings

    args.min_conf = load_settings().engine.rec_min_confidence  # lines below are dropped, as the engine drops them
    engine = None
    results = []
    for dataset in [path.resolve() for path in args.dataset or DEFAULT_DATASETS]:
        text = (dataset / "labels.jsonl").read_text(encoding="utf-8")
        labels = [json.loads(line) for line in text.splitlines() if line.strip()][: args.limit or None]
        out = args.out / dataset.name
        out.mkdir(parents=True, exist_ok=True)
        (out / "labels.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labels), "utf-8")
        cached = args.cache / f"{dataset.name}-{len(labels)}.json" if args.cache else None
        if cached is not None and cached.is_file():
            readings = json.loads(cached.read_text(encoding="utf-8"))
        else:
            if engine is None:
                engine = build(args.threads)
                warm = [labels[0]]  # first-call allocations are not timed
                read_set(engine, warm, dataset, 1)
            readings = read_set(engine, labels, dataset, args.batch)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_text(json.dumps(readings, ensure_ascii=False), encoding="utf-8")
        results.append(analyse(dataset, readings, gates, out, args))
    print(f"threads {args.threads}, batch {args.batch}, limit {args.limit}, out {args.out}")
    report(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
