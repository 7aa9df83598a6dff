"""Pages turned 90, 180 and 270 degrees: accuracy against the upright reading, and the cost.

    python benchmarks/orientation.py [--datasets screens,real] [--limit N] [--threads 2] [--out DIR]
                                     [--readings off:0,auto:0,auto:90,auto:180,auto:270]

For each labelled set under ``../shared/bench/data`` the script reads every image upright with
``engine.orientation = "off"`` (today's reading) and with ``"auto"``, then each image turned 90,
180 and 270 degrees (``cv2.rotate``) with ``"auto"``. The boxes of a turned image's reading are
mapped back into the upright image's pixels, so one score.py run per reading scores it against
the same labels. It prints, per set and reading: accuracy (score.py, ``all``), the share of pages
the classifier turned, and the classifier's milliseconds per page (the engine's ``orient`` timing).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO.parent / "shared" / "bench"
# the test's turn (clockwise degrees) and the cv2 code that makes it
TURNS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def back_to_upright(points: list[list[float]], turned: int, width: int, height: int) -> list[list[float]]:
    """Points on the image turned ``turned`` degrees clockwise, in the upright image's pixels
    (``width`` x ``height`` of the upright image)."""
    from engine.orientation import to_source

    return to_source(np.asarray(points, dtype=np.float64), turned, width, height).tolist()


def read_set(engine: Any, dataset: Path, rows: list[dict[str, Any]], turned: int, out: Path) -> dict[str, Any]:
    """Read every image of ``rows`` turned ``turned`` degrees; write score.py's predictions to ``out``."""
    orient_ms: list[float] = []
    rotated = 0
    start = time.perf_counter()
    with out.open("w", encoding="utf-8") as sink:
        for row in rows:
            image = cv2.imread(str(dataset / row["image"]), cv2.IMREAD_COLOR)
            h, w = image.shape[:2]
            shown = image if turned == 0 else cv2.rotate(image, TURNS[turned])
            page = engine(shown)
            rotated += page.rotation != 0
            if "orient" in page.timings:
                orient_ms.append(1000 * page.timings["orient"])
            lines = [
                {"text": line.text, "points": back_to_upright([list(p) for p in line.points], turned, w, h)}
                for line in page.lines
            ]
            sink.write(json.dumps({"image": row["image"], "lines": lines}, ensure_ascii=False) + "\n")
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "turned_share": round(rotated / max(1, len(rows)), 3),
        "orient_ms": round(float(np.mean(orient_ms)), 2) if orient_ms else None,
    }


def score(dataset: Path, predictions: Path) -> float:
    out = predictions.with_suffix(".score.json")
    subprocess.run(
        [sys.executable, str(BENCH / "score.py"), str(dataset), str(predictions), "--json", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return float(json.loads(out.read_text(encoding="utf-8"))["all"]["accuracy"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="screens,real")
    parser.add_argument("--limit", type=int, default=0, help="first N images of each set (0: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--readings", default="off:0,auto:0,auto:90,auto:180,auto:270", help="orientation:turn pairs to read"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / f"orientation-{int(time.time())}")
    args = parser.parse_args(argv)

    from config.settings import load_settings
    from engine.pipeline import build_engine

    base = load_settings().engine
    engines = {
        mode: build_engine(dataclasses.replace(base, orientation=mode, threads=args.threads, device="cpu"))
        for mode in ("off", "auto")
    }
    args.out.mkdir(parents=True, exist_ok=True)
    table = []
    for name in args.datasets.split(","):
        dataset = BENCH / "data" / name
        rows = [json.loads(line) for line in (dataset / "labels.jsonl").read_text("utf-8").splitlines() if line]
        rows = rows[: args.limit] if args.limit else rows
        if args.limit:  # score.py reads labels.jsonl of its folder: a subset folder for a subset
            subset = args.out / f"{name}-labels"
            subset.mkdir(exist_ok=True)
            (subset / "labels.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            (subset / "images").unlink(missing_ok=True)
            (subset / "images").symlink_to(dataset / "images")
            scored = subset
        else:
            scored = dataset
        for mode, turned in ((m, int(t)) for m, t in (r.split(":") for r in args.readings.split(","))):
            predictions = args.out / f"{name}-{mode}-{turned}.jsonl"
            figures = read_set(engines[mode], dataset, rows, turned, predictions)
            figures.update(dataset=name, images=len(rows), orientation=mode, turned=turned)
            figures["accuracy"] = round(score(scored, predictions), 4)
            table.append(figures)
            print(json.dumps(figures), flush=True)
    (args.out / "figures.json").write_text(json.dumps(table, indent=1))
    print("\n| set | images | orientation | page turned | accuracy | pages the classifier turned | orient ms/page |")
    print("|---|---|---|---|---|---|---|")
    for f in table:
        print(
            f"| {f['dataset']} | {f['images']} | {f['orientation']} | {f['turned']} | {f['accuracy']:.4f} | "
            f"{100 * f['turned_share']:.1f}% | {f['orient_ms'] if f['orient_ms'] is not None else '-'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
