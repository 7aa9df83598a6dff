"""Which resolution to render PDF pages at for OCR: accuracy per pixel spent.

    python benchmarks/pdf_dpi.py [--dataset real] [--limit N] [--dpis 100,150,200,250,300] [--threads 2]

Each image of a bench set becomes a one-page scanned PDF (the image as a JPEG covering the page,
the page sized as if scanned at 300 DPI, as office scanners do), written with pypdfium2. Each page
is rendered at each DPI through the engine's own document path (``engine.pdf_dpi``; the
``det_max_pixels`` bound still applies), read, and its boxes scaled back into the image's pixels,
so score.py scores every DPI against the same labels. Prints accuracy (score.py ``all`` and
``line_labelled``), megapixels per page and seconds per page for each DPI.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
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
SCAN_DPI = 300.0


def scanned_pdf(image: np.ndarray) -> bytes:
    """One page holding ``image`` as a JPEG, sized as a scan at SCAN_DPI."""
    import pypdfium2 as pdfium

    h, w = image.shape[:2]
    width, height = w * 72 / SCAN_DPI, h * 72 / SCAN_DPI
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(width, height)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    obj = pdfium.PdfImage.new(pdf)
    obj.load_jpeg(io.BytesIO(jpeg.tobytes()), inline=True)
    obj.set_matrix(pdfium.PdfMatrix().scale(width, height))
    page.insert_obj(obj)
    page.gen_content()
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def score(dataset: Path, predictions: Path) -> dict[str, float]:
    out = predictions.with_suffix(".score.json")
    subprocess.run(
        [sys.executable, str(BENCH / "score.py"), str(dataset), str(predictions), "--json", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    summary = json.loads(out.read_text(encoding="utf-8"))
    return {"all": summary["all"]["accuracy"], "line_labelled": summary["line_labelled"]["accuracy"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="real")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--dpis", default="100,150,200,250,300")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / f"pdf-dpi-{int(time.time())}")
    args = parser.parse_args(argv)

    from config.settings import load_settings
    from engine.pipeline import build_engine
    from engine.types import PageResult

    dataset = BENCH / "data" / args.dataset
    rows = [json.loads(line) for line in (dataset / "labels.jsonl").read_text("utf-8").splitlines() if line]
    rows = rows[: args.limit] if args.limit else rows
    args.out.mkdir(parents=True, exist_ok=True)
    scored = dataset
    if args.limit:  # score.py reads labels.jsonl of its folder: a subset folder for a subset
        scored = args.out / "labels"
        scored.mkdir(exist_ok=True)
        (scored / "labels.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    pdfs = [(row, scanned_pdf(cv2.imread(str(dataset / row["image"]), cv2.IMREAD_COLOR))) for row in rows]
    table: list[dict[str, Any]] = []
    base = load_settings().engine
    for dpi in (float(d) for d in args.dpis.split(",")):
        engine = build_engine(dataclasses.replace(base, pdf_dpi=dpi, threads=args.threads, device="cpu"))
        predictions = args.out / f"dpi-{int(dpi)}.jsonl"
        pixels: list[int] = []
        start = time.perf_counter()
        with predictions.open("w", encoding="utf-8") as sink:
            for row, data in pdfs:
                document = engine.open_document(data, row["image"])
                assert document is not None
                ((_, page),) = list(engine.read_document(document))
                assert isinstance(page, PageResult), page
                pixels.append(page.width * page.height)
                h, w = cv2.imread(str(dataset / row["image"]), cv2.IMREAD_GRAYSCALE).shape
                sx, sy = w / page.width, h / page.height
                lines = [
                    {"text": line.text, "points": [[x * sx, y * sy] for x, y in line.points]} for line in page.lines
                ]
                sink.write(json.dumps({"image": row["image"], "lines": lines}, ensure_ascii=False) + "\n")
        seconds = (time.perf_counter() - start) / len(pdfs)
        figures = {"dpi": dpi, "megapixels": round(float(np.mean(pixels)) / 1e6, 2), "seconds": round(seconds, 3)}
        figures.update({k: round(v, 4) for k, v in score(scored, predictions).items()})
        table.append(figures)
        print(json.dumps(figures), flush=True)
    print(f"\n{args.dataset}, {len(pdfs)} pages scanned at {SCAN_DPI:.0f} DPI")
    print("| render DPI | megapixels per page | seconds per page | accuracy (all) | accuracy (line-labelled) |")
    print("|---|---|---|---|---|")
    for f in table:
        print(f"| {f['dpi']:.0f} | {f['megapixels']} | {f['seconds']} | {f['all']:.4f} | {f['line_labelled']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
