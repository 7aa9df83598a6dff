"""The team's dashboard corrections as a recognition training set (``teamocr corrections export``).

Each corrected line (its latest text) is cut from its source image with the line's stored points
(engine.recognition.crop.crop_quad, as the engine cut it) and written as ``crops/<id>_<line>.png``;
``train.txt`` and ``test.txt`` list ``crops/...png<TAB>text`` (the layout ``teamocr train rec``
reads). The split is by source image, so lines of one screenshot never sit on both sides, and is
deterministic: an image goes to the test split when the hash of its result id says so
(``test_fraction`` of the images, at least one when there are two or more).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from daemon.errors import DaemonError
from daemon.results.teams import ChannelScope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorrectedLine:
    result_id: str
    source: Path
    channel: str
    line_index: int
    text: str
    points: list[list[float]]


@dataclass
class ExportSummary:
    """What was written and what was left out (and why)."""

    folder: Path
    train: int = 0
    test: int = 0
    images: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "train": self.train,
            "test": self.test,
            "images": self.images,
            "skipped": dict(self.skipped),
        }


def corrected_lines(store_path: Path, scope: ChannelScope | None = None) -> list[CorrectedLine]:
    """Every line that has a correction, with its current text and points, oldest result first."""
    if not store_path.is_file():
        raise DaemonError(f"result store {store_path}: not found")
    where, params = scope.sql("r.channel") if scope else ("1", [])
    try:
        conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DaemonError(f"result store {store_path}: {exc}") from exc
    try:
        rows = conn.execute(
            "SELECT r.id, r.path, r.channel, r.lines, c.line_index FROM results r "
            "JOIN (SELECT DISTINCT result_id, line_index FROM corrections) c ON c.result_id = r.id "
            f"WHERE {where} ORDER BY r.seq, c.line_index",
            params,
        ).fetchall()
    except sqlite3.Error as exc:
        raise DaemonError(f"result store {store_path}: cannot read corrections ({exc})") from exc
    finally:
        conn.close()
    out = []
    for result_id, path, channel, lines_json, index in rows:
        lines = json.loads(lines_json or "[]")
        if not 0 <= index < len(lines):
            continue
        line = lines[index]
        out.append(
            CorrectedLine(result_id, Path(path), channel, index, str(line.get("text", "")), line.get("points") or [])
        )
    return out


def in_test_split(result_id: str, fraction: float) -> bool:
    digest = hashlib.sha256(result_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def export_corrections(
    store_path: Path,
    folder: Path,
    *,
    scope: ChannelScope | None = None,
    test_fraction: float = 0.1,
    max_pixels: int = 100_000_000,
    max_bytes: int = 200_000_000,
) -> ExportSummary:
    """Write the rec data set to ``folder``; lines whose source is gone or unreadable are skipped."""
    from engine.errors import ImageError
    from engine.preprocess import load_image
    from engine.recognition.crop import crop_quad

    if not 0.0 <= test_fraction < 1.0:
        raise DaemonError(f"test fraction must be in [0, 1), got {test_fraction}")
    lines = corrected_lines(store_path, scope)
    summary = ExportSummary(folder)
    try:
        (folder / "crops").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DaemonError(f"cannot create folder {folder}: {exc.strerror or exc}") from exc
    written: list[tuple[str, str]] = []  # (result id, label row)
    images: dict[Path, np.ndarray | None] = {}
    for line in lines:
        text = " ".join(line.text.split())  # tabs and newlines would break the label file
        if not text:
            summary.skip("empty text")
            continue
        if len(line.points) != 4:
            summary.skip("no box")
            continue
        if line.source not in images:
            try:
                images[line.source] = load_image(line.source, max_pixels=max_pixels, max_bytes=max_bytes)
            except ImageError as exc:
                log.warning("%s: %s; its corrected lines are skipped", line.source, exc.reason)
                images[line.source] = None
        image = images[line.source]
        if image is None:
            summary.skip("source image missing or unreadable")
            continue
        crop = crop_quad(image, np.asarray(line.points, dtype=np.float32))
        name = f"crops/{line.result_id}_{line.line_index}.png"
        if not cv2.imwrite(str(folder / name), crop):
            raise DaemonError(f"cannot write {folder / name}")
        written.append((line.result_id, f"{name}\t{text}"))
    ids = sorted({rid for rid, _ in written})
    test_ids = {i for i in ids if in_test_split(i, test_fraction)}
    if test_fraction > 0 and not test_ids and len(ids) >= 2:
        test_ids = {min(ids, key=lambda i: hashlib.sha256(i.encode("utf-8")).digest())}
    labels: dict[str, list[str]] = {"train": [], "test": []}
    for rid, row in written:
        labels["test" if rid in test_ids else "train"].append(row)
    for split, rows in labels.items():
        (folder / f"{split}.txt").write_text("".join(f"{row}\n" for row in rows), encoding="utf-8")
    summary.train, summary.test = len(labels["train"]), len(labels["test"])
    summary.images = sum(1 for image in images.values() if image is not None)
    return summary
