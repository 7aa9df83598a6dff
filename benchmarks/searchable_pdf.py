"""Searchable PDF out (issue 14): teamocr against OCRmyPDF on one 20-page scanned PDF.

    python benchmarks/searchable_pdf.py [--pages 20] [--threads 2] [--repeat 2] [--keep DIR]
                                        [--tools teamocr,ocrmypdf] [--dataset DIR] [--scorer FILE]

OCRmyPDF is the peer, installed for this benchmark only (Debian)::

    apt-get install -y -q ocrmypdf tesseract-ocr-chi-sim tesseract-ocr-eng

What it does, in one run on one machine:

1. Chooses ``--pages`` images of the real set (``../shared/bench/data/real``), spread over its
   (kind, lang) groups: every group gets a share in turn, the smallest first, and each group's
   share is taken evenly spaced from its rows sorted by image name. Deterministic; both Chinese
   and English pages.
2. Makes one scanned PDF of them: each page is the image alone, sized as a scan at 300 DPI
   (points = pixels * 72 / 300), a JPEG embedded as it is (a PNG is encoded to JPEG quality 92
   first, as a scanner would), written with pypdfium2.
3. Turns it into a searchable PDF with each tool as one whole process, timed by wall clock
   (pages/s = pages / seconds), the tools taking turns, ``--repeat`` times; both get the same
   thread budget: ``teamocr ocr --pdf OUT IN --workers 1`` with ``engine.threads`` = the budget
   on the CPU; ``ocrmypdf --jobs N`` with ``OMP_THREAD_LIMIT=1`` (one tesseract thread per job,
   what OCRmyPDF itself picks for a document of more pages than jobs), ``-l chi_sim+eng
   --output-type pdf --optimize 0`` (no PDF/A conversion, no optimisation, no ``--deskew`` or
   ``--clean``).
4. Reads the text layer of every output with the same extractor (pypdfium2: the text page's
   character boxes, joined into runs and lines, in the page image's pixels), writes score.py's
   predictions and scores them against the chosen pages' labels (a subset dataset folder).
   Also the plain text's CER, position ignored: the page's whole text as a copy from the PDF
   gives it (``get_text_range``) against the labels read row by row.
5. Prints a table (seconds, pages/s, score.py accuracy ``all`` and ``line_labelled``, line
   recall and precision, bag-of-characters F1, plain-text CER, output KB), the ratio of
   teamocr's pages/s to OCRmyPDF's in each round, each page's accuracy and plain-text CER, and
   the commands.

The two ``document`` pages are labelled with page text alone and hold about half of the chosen
pages' characters, so they weigh heavily in ``all``; score.py reads their predictions row by row
across the page, which interleaves their columns (about 0.22 for any tool): ``line_labelled``
leaves them out, and the plain-text CER takes the PDF's own reading order instead.

Exit code 0 when teamocr is faster in every round and more accurate on both slices (the target),
1 when not, 2 when a tool is missing or fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO.parent / "shared" / "bench"
SCAN_DPI = 300.0
POINTS_PER_INCH = 72.0
JPEG_QUALITY = 92
LANGUAGES = "chi_sim+eng"
APT_COMMAND = "apt-get install -y -q ocrmypdf tesseract-ocr-chi-sim tesseract-ocr-eng"
# characters of one line: a gap wider than this many character heights starts a new run
RUN_GAP = 1.0
# PDFium gives a hyphen that ends a text line as U+FFFE (it takes it for a soft hyphen)
SOFT_HYPHEN = "\ufffe"

Row = dict[str, Any]
Line = dict[str, Any]


class BenchError(Exception):
    """A tool is missing or failed; the message names it and the cause."""


@dataclasses.dataclass(frozen=True)
class Reading:
    """One tool's run: its output PDF and how long the whole process took."""

    tool: str
    round: int
    pdf: Path
    seconds: float


# -- the scanned input --------------------------------------------------------------------------


def load_rows(dataset: Path) -> list[Row]:
    """The rows of the set's labels.jsonl."""
    labels = dataset / "labels.jsonl"
    try:
        text = labels.read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"cannot read {labels}: {exc.strerror or exc}") from exc
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def choose_rows(rows: Sequence[Row], pages: int) -> list[Row]:
    """``pages`` rows spread over the (kind, lang) groups: shares dealt one at a time to each
    group, smallest group first, then evenly spaced rows of each group (sorted by image)."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["image"]):
        groups[(row.get("kind", "?"), row.get("lang", "?"))].append(row)
    order = sorted(groups, key=lambda g: (len(groups[g]), g))
    shares = dict.fromkeys(order, 0)
    while sum(shares.values()) < min(pages, len(rows)):
        for group in order:
            if shares[group] < len(groups[group]) and sum(shares.values()) < pages:
                shares[group] += 1
    chosen = []
    for group in sorted(groups):
        members, share = groups[group], shares[group]
        chosen += [members[int((i + 0.5) * len(members) / share)] for i in range(share)]
    return chosen


def page_jpeg(path: Path) -> bytes:
    """The image as JPEG bytes: a JPEG file as it is, anything else encoded at JPEG_QUALITY."""
    data = path.read_bytes()
    if data[:3] == b"\xff\xd8\xff":
        return data
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise BenchError(f"cannot decode {path}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise BenchError(f"cannot encode {path} as JPEG")
    return jpeg.tobytes()


def make_scanned_pdf(rows: Sequence[Row], dataset: Path, out: Path) -> None:
    """One image-only page per row, each sized as a scan of the image at SCAN_DPI."""
    import io

    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for row in rows:
        width, height = (row[k] * POINTS_PER_INCH / SCAN_DPI for k in ("width", "height"))
        page = pdf.new_page(width, height)
        image = pdfium.PdfImage.new(pdf)
        image.load_jpeg(io.BytesIO(page_jpeg(dataset / row["image"])), inline=False)
        image.set_matrix(pdfium.PdfMatrix().scale(width, height))
        page.insert_obj(image)
        page.gen_content()
    pdf.save(str(out))


def write_subset(rows: Sequence[Row], dataset: Path, folder: Path) -> Path:
    """A dataset folder for score.py: labels.jsonl of ``rows`` and ``images`` linked to the set's."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    (folder / "images").unlink(missing_ok=True)
    (folder / "images").symlink_to((dataset / "images").resolve())
    return folder


# -- the tools ----------------------------------------------------------------------------------


def teamocr_command(pdf_in: Path, pdf_out: Path) -> list[str]:
    """One teamocr process (one worker) that writes the searchable PDF."""
    return [str(REPO / ".venv" / "bin" / "teamocr"), "ocr", "--workers", "1", "--pdf", str(pdf_out), str(pdf_in)]


def teamocr_env(threads: int) -> dict[str, str]:
    """Settings for teamocr's process: ``threads`` engine threads, on the CPU."""
    return {"TEAMOCR_ENGINE__THREADS": str(threads), "TEAMOCR_ENGINE__DEVICE": "cpu", "TEAMOCR_LOG_LEVEL": "WARNING"}


def ocrmypdf_command(pdf_in: Path, pdf_out: Path, threads: int) -> list[str]:
    """OCRmyPDF with ``threads`` jobs, Chinese and English, a plain PDF out, no optimisation."""
    return [
        "ocrmypdf",
        "--jobs",
        str(threads),
        "-l",
        LANGUAGES,
        "--output-type",
        "pdf",
        "--optimize",
        "0",
        "--quiet",
        str(pdf_in),
        str(pdf_out),
    ]


def ocrmypdf_env(threads: int) -> dict[str, str]:
    """One tesseract thread per job, so the jobs are the whole budget."""
    return {"OMP_THREAD_LIMIT": "1"}


def check_teamocr() -> None:
    """Raise BenchError unless ``teamocr ocr`` takes ``--pdf``."""
    command = [str(REPO / ".venv" / "bin" / "teamocr"), "ocr", "--help"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BenchError(f"cannot run {command[0]}: {exc.strerror or exc} (pip install -e . in the venv)") from exc
    if "--pdf" not in done.stdout:
        raise BenchError("teamocr ocr has no --pdf option yet (issue 14); run with --tools ocrmypdf")


def check_ocrmypdf() -> None:
    """Raise BenchError, naming the apt command, unless ocrmypdf and tesseract's chi_sim are here."""
    if shutil.which("ocrmypdf") is None or shutil.which("tesseract") is None:
        raise BenchError(f"ocrmypdf or tesseract is not installed; as root: {APT_COMMAND}")
    done = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=False)
    missing = set(LANGUAGES.split("+")) - set(done.stdout.split())
    if missing:
        raise BenchError(f"tesseract has no {', '.join(sorted(missing))} language data; as root: {APT_COMMAND}")


def run_timed(command: Sequence[str], env: dict[str, str], log: Path) -> float:
    """Run ``command`` to its end with ``env`` added; its wall-clock seconds. Output goes to ``log``."""
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as sink:
        try:
            done = subprocess.run(command, env={**os.environ, **env}, stdout=sink, stderr=sink, check=False)
        except OSError as exc:
            raise BenchError(f"cannot run {command[0]}: {exc.strerror or exc}") from exc
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise BenchError(f"{Path(command[0]).name} exited with {done.returncode}; its output ends:\n{tail}")
    return seconds


def run_teamocr(pdf_in: Path, pdf_out: Path, threads: int) -> float:
    """``teamocr ocr --pdf pdf_out pdf_in`` on the CPU with ``threads`` engine threads; seconds."""
    return run_timed(teamocr_command(pdf_in, pdf_out), teamocr_env(threads), pdf_out.with_suffix(".log"))


def run_ocrmypdf(pdf_in: Path, pdf_out: Path, threads: int) -> float:
    """OCRmyPDF with ``threads`` jobs of one tesseract thread each; seconds."""
    return run_timed(ocrmypdf_command(pdf_in, pdf_out, threads), ocrmypdf_env(threads), pdf_out.with_suffix(".log"))


TOOLS: dict[str, Callable[[Path, Path, int], float]] = {"teamocr": run_teamocr, "ocrmypdf": run_ocrmypdf}
COMMANDS: dict[str, Callable[[Path, Path, int], tuple[dict[str, str], list[str]]]] = {
    "teamocr": lambda i, o, n: (teamocr_env(n), teamocr_command(i, o)),
    "ocrmypdf": lambda i, o, n: (ocrmypdf_env(n), ocrmypdf_command(i, o, n)),
}


# -- the text layer -----------------------------------------------------------------------------


def char_boxes(textpage: Any) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Each character of the text page with its loose box (left, bottom, right, top) in points;
    the spaces and line breaks PDFium makes up, and characters with no box, are left out."""
    chars = []
    for i in range(textpage.count_chars()):
        text = textpage.get_text_range(i, 1).replace(SOFT_HYPHEN, "-")
        if not text.strip():
            continue
        left, bottom, right, top = textpage.get_charbox(i, loose=True)
        if right > left and top > bottom:
            chars.append((text, (left, bottom, right, top)))
    return chars


def same_run(box: tuple[float, float, float, float], run: list[float]) -> bool:
    """Whether a character continues ``run`` [left, bottom, right, top]: it overlaps the run's
    height by half the smaller of the two and starts at most RUN_GAP heights after its end."""
    height = min(box[3] - box[1], run[3] - run[1])
    overlap = min(box[3], run[3]) - max(box[1], run[1])
    return overlap >= 0.5 * height and -height <= box[0] - run[2] <= RUN_GAP * (run[3] - run[1])


def text_runs(chars: Iterable[tuple[str, tuple[float, float, float, float]]]) -> list[tuple[str, list[float]]]:
    """Characters, in the text page's order, joined into runs: side by side on one line."""
    runs: list[tuple[str, list[float]]] = []
    for text, box in chars:
        if runs and same_run(box, runs[-1][1]):
            run = runs[-1][1]
            gap = box[0] - run[2] > 0.25 * (run[3] - run[1])
            runs[-1] = (runs[-1][0] + (" " if gap else "") + text, run)
            run[:] = [min(run[0], box[0]), min(run[1], box[1]), max(run[2], box[2]), max(run[3], box[3])]
        else:
            runs.append((text, list(box)))
    return runs


def page_lines(page: Any, width: int, height: int) -> tuple[list[Line], str]:
    """The text layer of ``page`` as score.py lines in the page image's pixels (``width`` x
    ``height``), and the page's whole text as a copy from the PDF gives it."""
    left, bottom, right, top = page.get_mediabox()
    sx, sy = width / (right - left), height / (top - bottom)
    textpage = page.get_textpage()
    try:
        runs = text_runs(char_boxes(textpage))
        text = textpage.get_text_range().replace(SOFT_HYPHEN, "-")
    finally:
        textpage.close()
    lines = []
    for run_text, (x0, y0, x1, y1) in runs:
        px0, px1 = (x0 - left) * sx, (x1 - left) * sx
        py0, py1 = (top - y1) * sy, (top - y0) * sy
        lines.append({"text": run_text, "points": [[px0, py0], [px1, py0], [px1, py1], [px0, py1]]})
    return lines, text


def read_text_layer(pdf_path: Path, rows: Sequence[Row]) -> list[tuple[list[Line], str]]:
    """Each page's lines and plain text; the PDF must have one page per row."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(pdf_path))
    except (OSError, pdfium.PdfiumError) as exc:
        raise BenchError(f"cannot open {pdf_path}: {exc}") from exc
    try:
        if len(pdf) != len(rows):
            raise BenchError(f"{pdf_path} has {len(pdf)} pages, the input had {len(rows)}")
        return [page_lines(pdf[i], row["width"], row["height"]) for i, row in enumerate(rows)]
    finally:
        pdf.close()


# -- scoring ------------------------------------------------------------------------------------


def load_scorer(path: Path) -> ModuleType:
    """score.py as a module, for its per-page functions (the summary comes from running it)."""
    spec = importlib.util.spec_from_file_location("bench_score", path)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load the scorer {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_predictions(rows: Sequence[Row], pages: Sequence[tuple[list[Line], str]], path: Path) -> None:
    """score.py's predictions: one row per page, named by its label image."""
    with path.open("w", encoding="utf-8") as sink:
        for row, (lines, _) in zip(rows, pages, strict=True):
            sink.write(json.dumps({"image": row["image"], "lines": lines}, ensure_ascii=False) + "\n")


def run_scorer(scorer: Path, subset: Path, predictions: Path) -> dict[str, Any]:
    """score.py's summary of ``predictions`` against the subset's labels."""
    out = predictions.with_suffix(".score.json")
    command = [sys.executable, str(scorer), str(subset), str(predictions), "--json", str(out)]
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{scorer} exited with {done.returncode} on {predictions}: {done.stderr[-2000:]}")
    return dict(json.loads(out.read_text(encoding="utf-8")))


def label_text(score: ModuleType, row: Row) -> str:
    """The labels of a page as one text, read row by row (score.py's order and normalisation)."""
    if not row.get("lines"):
        return str(score.norm(row.get("page_text", "")))
    fold = row.get("casefold", False)
    items = [
        (score.rect(line["points"]), score.norm(line["text"], fold))
        for line in row["lines"]
        if not line.get("ignore") and line.get("text") != "###"
    ]
    return str(score.reading_order(items))


def plain_text_edits(score: ModuleType, row: Row, text: str) -> tuple[int, int]:
    """Edits from a page's labels to its whole PDF text, position ignored (order kept), and the
    labels' characters."""
    truth = label_text(score, row)
    return int(score.edit_distance(truth, score.norm(text, row.get("casefold", False)))), len(truth)


def page_accuracy(score: ModuleType, row: Row, lines: list[Line]) -> float:
    """score.py's accuracy of one page."""
    if row.get("lines"):
        figures = score.score_image(row["lines"], lines, row.get("ignore_regions"), row.get("casefold", False))
    else:
        figures = score.score_page(row.get("page_text", ""), lines)
    return max(0.0, 1 - figures["edits"] / max(1, figures["gt_chars"]))


# -- the run ------------------------------------------------------------------------------------


def figures_of(reading: Reading, rows: Sequence[Row], subset: Path, scorer: Path, score: ModuleType) -> dict[str, Any]:
    """What one reading measured: speed, score.py's summary, plain-text CER, size, and each page."""
    pages = read_text_layer(reading.pdf, rows)
    predictions = reading.pdf.with_suffix(".jsonl")
    write_predictions(rows, pages, predictions)
    scored = run_scorer(scorer, subset, predictions)
    summary = scored["all"]
    plain = [plain_text_edits(score, row, text) for row, (_, text) in zip(rows, pages, strict=True)]
    return {
        "tool": reading.tool,
        "round": reading.round,
        "seconds": round(reading.seconds, 2),
        "pages_per_second": round(len(rows) / reading.seconds, 3),
        "accuracy": summary["accuracy"],
        "line_labelled": scored["line_labelled"]["accuracy"],
        "line_recall": summary["line_recall"],
        "line_precision": summary["line_precision"],
        "bag_f1": summary["bag_f1"],
        "plain_cer": round(sum(e for e, _ in plain) / max(1, sum(c for _, c in plain)), 4),
        "kb": round(reading.pdf.stat().st_size / 1024, 1),
        "pages": [round(page_accuracy(score, row, lines), 4) for row, (lines, _) in zip(rows, pages, strict=True)],
        "pages_plain_cer": [round(e / max(1, c), 4) for e, c in plain],
    }


def run_rounds(tools: Sequence[str], pdf_in: Path, work: Path, threads: int, repeat: int) -> list[Reading]:
    """Each tool once per round, taking turns."""
    readings = []
    for round_ in range(1, repeat + 1):
        for tool in tools:
            pdf_out = work / f"{tool}-{round_}.pdf"
            print(f"round {round_}: {tool} ...", file=sys.stderr, flush=True)
            readings.append(Reading(tool, round_, pdf_out, TOOLS[tool](pdf_in, pdf_out, threads)))
    return readings


def tool_version(tool: str) -> str:
    """The version of a tool as its own command line (or the package metadata) gives it."""
    if tool == "teamocr":
        import importlib.metadata

        return f"teamocr {importlib.metadata.version('teamocr')}"
    versions = []
    for command in (["ocrmypdf", "--version"], ["tesseract", "--version"]):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        first = (done.stdout or done.stderr).strip().splitlines()
        versions.append(f"{command[0]} {first[0].split()[-1] if first else '?'}")
    return ", ".join(versions)


def ratios(table: Sequence[dict[str, Any]]) -> dict[int, float]:
    """teamocr's pages/s over OCRmyPDF's, per round where both ran."""
    by_round: dict[int, dict[str, float]] = defaultdict(dict)
    for f in table:
        by_round[f["round"]][f["tool"]] = f["pages_per_second"]
    return {r: t["teamocr"] / t["ocrmypdf"] for r, t in sorted(by_round.items()) if {"teamocr", "ocrmypdf"} <= t.keys()}


def print_table(table: Sequence[dict[str, Any]]) -> None:
    """One row per reading, then the speed ratio of each round."""
    print(
        "| tool | round | seconds | pages/s | accuracy (all) | accuracy (line-labelled) | line recall | "
        "line precision | bag F1 | plain CER | KB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for f in table:
        print(
            f"| {f['tool']} | {f['round']} | {f['seconds']:.1f} | {f['pages_per_second']:.3f} | "
            f"{f['accuracy']:.4f} | {f['line_labelled']:.4f} | {f['line_recall']:.4f} | {f['line_precision']:.4f} | "
            f"{f['bag_f1']:.4f} | {f['plain_cer']:.4f} | {f['kb']:.0f} |"
        )
    for round_, ratio in ratios(table).items():
        print(f"round {round_}: teamocr / OCRmyPDF pages/s = {ratio:.2f}")


def print_pages(table: Sequence[dict[str, Any]], rows: Sequence[Row]) -> None:
    """Each page's score.py accuracy and plain-text CER per tool (its first round)."""
    firsts: dict[str, dict[str, Any]] = {}
    for f in table:
        firsts.setdefault(f["tool"], f)
    print("\n| page | image | kind | lang | " + " | ".join(f"{t} accuracy / plain CER" for t in firsts) + " |")
    print("|---|---|---|---|" + "---|" * len(firsts))
    for i, row in enumerate(rows):
        cells = " | ".join(f"{f['pages'][i]:.4f} / {f['pages_plain_cer'][i]:.4f}" for f in firsts.values())
        print(f"| {i + 1} | {Path(row['image']).name} | {row.get('kind')} | {row.get('lang')} | {cells} |")


def print_commands(tools: Sequence[str], pdf_in: Path, work: Path, threads: int) -> None:
    """The command lines timed, with the environment each was given."""
    print("\ncommands (OCRmyPDF: no PDF/A conversion, no optimisation, no --deskew or --clean):")
    for tool in tools:
        env, command = COMMANDS[tool](pdf_in, work / f"{tool}-ROUND.pdf", threads)
        print("  " + " ".join([f"{k}={v}" for k, v in env.items()] + command))


def verdict(table: Sequence[dict[str, Any]]) -> bool | None:
    """Whether teamocr was faster in every round and more accurate on both slices (all and
    line-labelled, first rounds); None when only one tool ran."""
    speed = ratios(table)
    if not speed:
        return None
    firsts: dict[str, dict[str, Any]] = {}
    for f in table:
        firsts.setdefault(f["tool"], f)
    team, peer = firsts["teamocr"], firsts["ocrmypdf"]
    more_accurate = all(team[k] > peer[k] for k in ("accuracy", "line_labelled"))
    return min(speed.values()) > 1 and more_accurate


def benchmark(args: argparse.Namespace, work: Path) -> int:
    """Make the scanned PDF, run the tools, score them and print the figures; the exit code."""
    tools = args.tools.split(",")
    unknown = set(tools) - TOOLS.keys()
    if unknown:
        raise BenchError(f"unknown tools {', '.join(sorted(unknown))}; known: {', '.join(TOOLS)}")
    if "ocrmypdf" in tools:
        check_ocrmypdf()
    if "teamocr" in tools:
        check_teamocr()
    rows = choose_rows(load_rows(args.dataset), args.pages)
    pdf_in = work / "scanned.pdf"
    make_scanned_pdf(rows, args.dataset, pdf_in)
    subset = write_subset(rows, args.dataset, work / "labels")
    readings = run_rounds(tools, pdf_in, work, args.threads, args.repeat)
    score = load_scorer(args.scorer)
    table = [figures_of(r, rows, subset, args.scorer, score) for r in readings]
    (work / "figures.json").write_text(json.dumps(table, indent=1), encoding="utf-8")
    kb = pdf_in.stat().st_size / 1024
    print(f"\n{len(rows)} pages scanned at {SCAN_DPI:.0f} DPI ({kb:.0f} KB), {args.threads} threads each")
    print("; ".join(tool_version(t) for t in tools))
    print_table(table)
    print_pages(table, rows)
    print_commands(tools, pdf_in, work, args.threads)
    passed = verdict(table)
    if passed is not None:
        outcome = "PASS" if passed else "FAIL"
        print(f"\ntarget (teamocr faster in every round, more accurate on both slices): {outcome}")
    if args.keep is not None:
        print(f"kept in {work}")
    return 0 if passed is not False else 1


def main(argv: list[str] | None = None) -> int:
    """The command line; work in ``--keep DIR`` or a temporary folder removed at the end."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=20, help="pages of the scanned PDF")
    parser.add_argument("--threads", type=int, default=2, help="CPU thread budget of each tool")
    parser.add_argument("--repeat", type=int, default=2, help="rounds, each running every tool once")
    parser.add_argument("--tools", default="teamocr,ocrmypdf", help="comma-separated: teamocr, ocrmypdf")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the PDFs, predictions and scores here")
    parser.add_argument("--dataset", type=Path, default=BENCH / "data" / "real")
    parser.add_argument("--scorer", type=Path, default=BENCH / "score.py")
    args = parser.parse_args(argv)
    try:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            return benchmark(args, args.keep)
        with tempfile.TemporaryDirectory(prefix="searchable-pdf-") as work:
            return benchmark(args, Path(work))
    except BenchError as exc:
        print(f"searchable_pdf: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
