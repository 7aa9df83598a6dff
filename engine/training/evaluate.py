"""Accuracy as the team's benchmark measures it, and prediction files in its format.

Prediction files are JSON Lines, one object per image: ``{"image": "images/a.png", "lines":
[{"text": "...", "points": [[x, y] x 4]}], "seconds": 0.1}``; labelled sets (``--guard``) are
folders with ``labels.jsonl`` rows ``{"image", "lines": [{"text", "points", "ignore"}],
"ignore_regions", "casefold"}`` or ``{"image", "page_text"}`` and the images.

The metric: texts are NFKC-normalised with all whitespace removed (case-folded where a label
says so); each prediction is linked to every labelled line lying at least half inside its box,
or else to the one line that holds at least half of it; linked lines and predictions form groups
whose texts, read row by row and left to right, are compared by edit distance; unlinked lines
count as deleted, unlinked predictions as inserted (unless they fall in an ignored region).
accuracy = 1 - edits / labelled characters. Boxes are compared as axis-aligned rectangles.
"""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Rect = tuple[float, float, float, float]


@dataclass
class Tally:
    """Edits and characters summed over pages."""

    pages: int = 0
    chars: int = 0
    edits: int = 0
    groups: int = 0
    exact: int = 0

    def add(self, other: Tally) -> None:
        self.pages += other.pages
        self.chars += other.chars
        self.edits += other.edits
        self.groups += other.groups
        self.exact += other.exact

    def metrics(self) -> dict[str, float | int]:
        cer = self.edits / max(1, self.chars)
        return {
            "images": self.pages,
            "accuracy": round(max(0.0, 1.0 - cer), 4),
            "cer": round(cer, 4),
            "exact": round(self.exact / max(1, self.groups), 4),
        }


def normalise(text: str, casefold: bool = False) -> str:
    flat = "".join(unicodedata.normalize("NFKC", text or "").split())
    return flat.casefold() if casefold else flat


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one row at a time."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        diag, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (ca != cb))
    return row[-1]


def _rect(points: Any) -> Rect:
    arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 0].max()), float(arr[:, 1].max())


def _area(r: Rect) -> float:
    return max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])


def _overlap(a: Rect, b: Rect) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def read_in_order(items: Sequence[tuple[Rect, str]]) -> str:
    """Texts joined row by row (centres within half the smaller height), left to right."""
    rows: list[list[tuple[Rect, str]]] = []
    for item in sorted(items, key=lambda it: it[0][1] + it[0][3]):
        r = item[0]
        centre, height = (r[1] + r[3]) / 2, max(1.0, r[3] - r[1])
        if rows:
            row = rows[-1]
            row_centre = sum((x[0][1] + x[0][3]) / 2 for x in row) / len(row)
            row_height = max(max(1.0, x[0][3] - x[0][1]) for x in row)
            if abs(centre - row_centre) <= 0.5 * min(height, row_height):
                row.append(item)
                continue
        rows.append([item])
    return "".join(text for row in rows for _, text in sorted(row, key=lambda it: it[0][0]))


def score_lines(
    labels: Iterable[dict[str, Any]],
    predictions: Iterable[dict[str, Any]],
    ignore_regions: Iterable[Any] = (),
    casefold: bool = False,
) -> Tally:
    """One line-labelled page."""
    truth: list[tuple[Rect, str]] = []
    ignored = [_rect(r["points"]) for r in ignore_regions]
    for line in labels:
        text = normalise(line.get("text", ""), casefold)
        if line.get("ignore") or line.get("text") == "###":
            ignored.append(_rect(line["points"]))
        elif text:
            truth.append((_rect(line["points"]), text))
    preds = [(_rect(p["points"]), normalise(p.get("text", ""), casefold)) for p in predictions if p.get("points")]
    preds = [p for p in preds if p[1]]
    # groups by union-find over truth lines 0..T-1 and predictions T..T+P-1
    parent = list(range(len(truth) + len(preds)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    dropped = set()
    for pi, (box, _) in enumerate(preds):
        links = [ti for ti, (t, _) in enumerate(truth) if _overlap(box, t) >= 0.5 * max(_area(t), 1e-6)]
        if not links and truth:
            overlaps = [_overlap(box, t) for t, _ in truth]
            best = int(np.argmax(overlaps))
            if overlaps[best] > 0 and overlaps[best] >= 0.5 * max(_area(box), 1e-6):
                links = [best]
        for ti in links:
            parent[root(len(truth) + pi)] = root(ti)
        if not links and any(_overlap(box, r) >= 0.5 * max(_area(box), 1e-6) for r in ignored):
            dropped.add(pi)
    groups: dict[int, tuple[list, list]] = {}
    for ti, item in enumerate(truth):
        groups.setdefault(root(ti), ([], []))[0].append(item)
    for pi, item in enumerate(preds):
        if pi not in dropped:
            groups.setdefault(root(len(truth) + pi), ([], []))[1].append(item)
    tally = Tally(pages=1, chars=sum(len(t) for _, t in truth))
    for truth_items, pred_items in groups.values():
        want, got = read_in_order(truth_items), read_in_order(pred_items)
        tally.edits += edit_distance(want, got)
        if truth_items:
            tally.groups += 1
            tally.exact += want == got
    return tally


def score_page_text(page_text: str, predictions: Iterable[dict[str, Any]]) -> Tally:
    """A page labelled only with its text: compared with the predictions read in order."""
    want = normalise(page_text)
    got = read_in_order([(_rect(p["points"]), normalise(p.get("text", ""))) for p in predictions if p.get("points")])
    return Tally(pages=1, chars=len(want), edits=edit_distance(want, got), groups=1, exact=int(want == got))


def score_label(label: dict[str, Any], prediction: dict[str, Any] | None) -> Tally:
    lines = (prediction or {}).get("lines", [])
    if label.get("lines"):
        return score_lines(label["lines"], lines, label.get("ignore_regions") or (), bool(label.get("casefold")))
    if label.get("page_text"):
        return score_page_text(label["page_text"], lines)
    return Tally()


def prediction_row(image: str, lines: Iterable[tuple[str, Any]], seconds: float | None = None) -> dict[str, Any]:
    """A prediction file's row from (text, 4 points) pairs."""
    row: dict[str, Any] = {
        "image": image,
        "lines": [
            {
                "text": text,
                "points": [[round(float(x), 1), round(float(y), 1)] for x, y in np.asarray(pts).reshape(4, 2)],
            }
            for text, pts in lines
        ],
    }
    if seconds is not None:
        row["seconds"] = round(seconds, 4)
    return row


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_labels(dataset: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """A labelled set's ``labels.jsonl`` rows (the first ``limit``)."""
    path = Path(dataset) / "labels.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def run_pages(ocr: Any, dataset: Path, labels: list[dict[str, Any]], predictions: Path) -> dict[str, Any]:
    """OCR each labelled image with ``ocr`` (an OcrEngine), write the predictions file, score it."""
    tally = Tally()
    rows = []
    for label in labels:
        start = time.perf_counter()
        page = ocr.ocr(Path(dataset) / label["image"])
        row = prediction_row(
            label["image"], ((line.text, line.points) for line in page.lines), time.perf_counter() - start
        )
        rows.append(row)
        tally.add(score_label(label, row))
    write_jsonl(predictions, rows)
    return {**tally.metrics(), "predictions": str(predictions)}
