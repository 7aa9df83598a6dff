"""`teamocr ocr` end to end: the real command in a subprocess, the real engine, real images.

A drop folder holds two golden screenshots, one in a subfolder under a Chinese file name, a
text file saved as .png and an empty .jpg, as people leave them on a share. The command must
write one JSON row per image in path order, read the good ones, name the cause for the bad
ones, and exit 1 because some failed; with two worker processes the rows are the same.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import unicodedata
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "tests" / "images"
GOLDEN = json.loads((IMAGES / "golden.json").read_text(encoding="utf-8"))
CHINESE_NAME = os.path.join("sub", "截图 深色.png")
# name in the drop folder -> golden image it is a copy of (None: a bad file)
DROP = {
    "en.png": "golden_en.png",
    "zh.png": "golden_zh.png",
    CHINESE_NAME: "golden_dark.png",
    "corrupt.png": None,
    "empty.jpg": None,
}
# os.walk order, sorted as full paths: "sub/..." falls between "en.png" and "zh.png"
ORDER = ["corrupt.png", "empty.jpg", "en.png", CHINESE_NAME, "zh.png"]
ERRORS = {"corrupt.png": "not a supported image", "empty.jpg": "empty file"}


def normalise(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    for name, source in DROP.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source:
            shutil.copyfile(IMAGES / source, target)
    (folder / "corrupt.png").write_text("holiday rota: Alice, Bob\n", encoding="utf-8")
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def teamocr(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TEAMOCR_ENGINE__THREADS": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=240,
    )


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.timeout(300)
def test_ocr_folder_to_jsonl(drop: Path, tmp_path: Path) -> None:
    done = teamocr("ocr", "drop", "--jsonl", "out/one.jsonl", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # some images failed
    rows = read_rows(tmp_path / "out" / "one.jsonl")
    assert [row["image"] for row in rows] == [os.path.join("drop", name) for name in ORDER]
    for name, row in zip(ORDER, rows):
        assert row["seconds"] >= 0, name
        source = DROP[name]
        if source is None:
            assert ERRORS[name] in row["error"], row
            assert row["lines"] == [] and "text" not in row
            continue
        assert "error" not in row, row
        record = GOLDEN[source]
        assert (row["width"], row["height"]) == (record["width"], record["height"])
        assert len(row["lines"]) == len(record["lines"])
        assert all(line["text"] and 0 < line["confidence"] <= 1 for line in row["lines"])
        assert {"decode", "detect", "recognize", "total"} <= set(row["timings"])
        text = normalise(row["text"])
        missing = [exp["text"] for exp in record["lines"] if normalise(exp["text"]) not in text]
        assert not missing, (name, row["text"])

    done = teamocr("ocr", "drop", "--jsonl", "out/two.jsonl", "--workers", "2", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    again = read_rows(tmp_path / "out" / "two.jsonl")
    assert [(r["image"], r.get("text"), r.get("error")) for r in again] == [
        (r["image"], r.get("text"), r.get("error")) for r in rows
    ]


def test_ocr_help_of_the_installed_command() -> None:
    script = Path(sysconfig.get_path("scripts")) / ("teamocr.exe" if os.name == "nt" else "teamocr")
    assert script.is_file(), f"{script}: teamocr is not installed (pip install -e .)"
    done = subprocess.run([str(script), "ocr", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: teamocr ocr")
    assert "--jsonl" in done.stdout and "--workers" in done.stdout


@pytest.mark.timeout(300)
def test_ocr_documents_one_row_per_page(tmp_path: Path) -> None:
    """A PDF (a born-digital page, a scan) and a two-page TIFF in a folder, a truncated PDF named
    like an image, and a scan turned a quarter: rows per page with their number and count, in path
    order, and a clear error for the bad document. ``--pdf`` writes every good page, in order, its
    text (read back with PDFium) that of its row."""
    import cv2
    import pypdfium2 as pdfium

    from engine.searchable_pdf import extracted_text
    from tests.engine import docmakers

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a-mixed.pdf").write_bytes(docmakers.mixed_pdf())
    (folder / "b-pages.tif").write_bytes(docmakers.tiff_pages(tmp_path, ["golden_en.png", "golden_zh.png"]))
    (folder / "c-broken.png").write_bytes(docmakers.mixed_pdf()[:300])  # a PDF by its content
    (folder / "d-turned.pdf").write_bytes(docmakers.scanned_pdf(["golden_zh.png"], {0: cv2.ROTATE_90_CLOCKWISE}))
    (folder / "e-locked.pdf").write_bytes(docmakers.encrypted_pdf())
    done = teamocr("ocr", "docs", "--jsonl", "rows.jsonl", "--pdf", "out/all.pdf", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # the broken one failed
    rows = read_rows(tmp_path / "rows.jsonl")
    mixed, tiff, broken = (os.path.join("docs", n) for n in ("a-mixed.pdf", "b-pages.tif", "c-broken.png"))
    assert [(r["image"], r.get("page"), r.get("page_count")) for r in rows] == [
        (f"{mixed}#page=1", 1, 2),
        (f"{mixed}#page=2", 2, 2),
        (f"{tiff}#page=1", 1, 2),
        (f"{tiff}#page=2", 2, 2),
        (broken, None, None),
        (os.path.join("docs", "d-turned.pdf#page=1"), 1, 1),
        (os.path.join("docs", "e-locked.pdf"), None, None),
    ]
    assert "encrypted (password-protected) PDF" in rows[6]["error"]
    assert [line["source"] for line in rows[0]["lines"]] == ["pdf", "pdf"]
    assert "Quarterly report 2026" in rows[0]["text"]
    for row, name in zip(rows[1:4], ["golden_en.png", "golden_en.png", "golden_zh.png"]):
        missing = [e["text"] for e in GOLDEN[name]["lines"] if normalise(e["text"]) not in normalise(row["text"])]
        assert not missing and {line["source"] for line in row["lines"]} == {"ocr"}, (row["image"], missing)
    assert "truncated or corrupt PDF" in rows[4]["error"]
    pages = extracted_text((tmp_path / "out" / "all.pdf").read_bytes())
    read = [row for row in rows if "page" in row]
    assert len(pages) == len(read) == 5
    assert normalise(pages[0]) == normalise("Quarterly report 2026 Invoice total: 1284.50")  # its own text layer
    for page, row in zip(pages[1:], read[1:]):
        assert normalise(page) == normalise(row["text"]), row["image"]
    made = pdfium.PdfDocument(tmp_path / "out" / "all.pdf")
    try:
        assert read[4]["rotation"] == 270 and made[4].get_rotation() == 270  # the sideways scan opens upright
    finally:
        made.close()


@pytest.mark.timeout(300)
def test_ocr_reads_files_whose_names_are_not_utf8(tmp_path: Path) -> None:
    """A GBK name (old Windows tools and ZIPs) is read and shown decoded; a name that is neither
    UTF-8 nor GB18030 is read and shown with its odd bytes escaped. Neither stops the run."""
    folder = os.fsencode(tmp_path / "legacy")
    os.mkdir(folder)
    for raw in ("发票".encode("gbk") + b".png", b"scan \xff.png"):
        shutil.copyfile(IMAGES / "golden_en.png", os.path.join(folder, raw))
    done = teamocr("ocr", "legacy", "--jsonl", "rows.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = read_rows(tmp_path / "rows.jsonl")
    assert [row["image"] for row in rows] == [
        os.path.join("legacy", "scan \\xff.png"),
        os.path.join("legacy", "发票.png"),
    ]
    assert all("Quarterly" in row["text"] for row in rows)


def test_ocr_writes_the_tables_it_finds(tmp_path: Path) -> None:
    """``--tables DIR``: a ruled 3 x 4 table with a merged cell, drawn as a PNG and as page 2 of a
    scanned PDF, gives a CSV per table with the grid and an .xlsx per input whose merged cell is
    merged; the text-only page gives none."""
    import csv

    import cv2
    import openpyxl
    import pypdfium2 as pdfium

    from tests.engine import docmakers
    from tests.engine.test_tables import ruled_page

    texts = [
        ["Name", "Pages", "Size", "Status"],
        ["report.pdf", "12 pages merged", "", "done"],
        ["scan.png", "3", "410 KB", "queued"],
    ]
    page = ruled_page({(1, 2)}, texts)
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "sheet.png"), page)
    pdf = pdfium.PdfDocument.new()
    docmakers.image_page(pdf, docmakers.golden("golden_en.png"))
    docmakers.image_page(pdf, page)
    (folder / "report.pdf").write_bytes(docmakers.saved(pdf))
    done = teamocr("ocr", "in", "--jsonl", "rows.jsonl", "--tables", "tables", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "tables"
    assert sorted(p.name for p in out.iterdir()) == [
        "report-p2-table-1.csv",
        "report.xlsx",
        "sheet-table-1.csv",
        "sheet.xlsx",
    ]
    expected = [
        ["Name", "Pages", "Size", "Status"],
        ["report.pdf", "12 pages merged", "", "done"],
        ["scan.png", "3", "410 KB", "queued"],
    ]
    for name in ("sheet-table-1.csv", "report-p2-table-1.csv"):
        rows = list(csv.reader((out / name).read_text(encoding="utf-8-sig").splitlines()))
        assert rows == expected, name
    book = openpyxl.load_workbook(out / "report.xlsx")
    assert book.sheetnames == ["p2 t1"]
    sheet = book["p2 t1"]
    assert [str(r) for r in sheet.merged_cells.ranges] == ["B2:C2"] and sheet["B2"].value == "12 pages merged"
    assert sheet["B3"].value == 3  # a plain number is a number
    rows = read_rows(tmp_path / "rows.jsonl")
    assert [len(r["tables"]) for r in rows] == [0, 1, 1]  # report.pdf's pages, then sheet.png
