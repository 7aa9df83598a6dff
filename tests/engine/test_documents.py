"""Documents through the real engine: PDFs (scanned, born-digital, mixed, turned pages) and
multi-page TIFFs made by tests/engine/docmakers.py, and the hostile kinds, each a clear error."""

from __future__ import annotations

import dataclasses
import re
import threading
import weakref
from pathlib import Path
from typing import Any

import cv2
import pytest

from engine.documents import Document, document_kind, open_document
from engine.errors import ImageError
from engine.pipeline import OcrEngine
from engine.types import PageResult
from tests.engine import docmakers
from tests.engine.ocrcheck import char_error_rate, normalise
from tests.polling import wait_until

MAX_CER = 0.02


def pages_of(engine: OcrEngine, data: bytes) -> list[tuple[int, PageResult | Exception]]:
    document = engine.open_document(data, "doc.pdf")
    assert document is not None
    return list(engine.read_document(document, batch=2))


@pytest.fixture
def engine(ort_engine: OcrEngine) -> Any:
    """The session's engine, its settings put back after each test."""
    before = ort_engine.settings
    yield ort_engine
    ort_engine.settings = before


def expected(golden: dict[str, dict[str, Any]], name: str) -> str:
    return "".join(normalise(line["text"]) for line in golden[name]["lines"])


def test_a_scanned_pdf_is_read_page_by_page(engine: OcrEngine, golden: dict[str, dict[str, Any]]) -> None:
    names = ["golden_en.png", "golden_zh.png", "tall_phone.png"]
    pages = pages_of(engine, docmakers.scanned_pdf(names))
    assert [number for number, _ in pages] == [1, 2, 3]
    for (_, page), name in zip(pages, names):
        assert isinstance(page, PageResult)
        assert char_error_rate(expected(golden, name), normalise(page.text)) <= MAX_CER, page.text
        assert {line.source for line in page.lines} == {"ocr"}
        assert page.width * page.height <= engine.settings.det_max_pixels


def test_a_turned_page_of_a_pdf_is_read_upright(engine: OcrEngine, golden: dict[str, dict[str, Any]]) -> None:
    data = docmakers.scanned_pdf(["golden_en.png", "golden_en.png"], turns={1: cv2.ROTATE_180})
    (_, upright), (_, turned) = pages_of(engine, data)
    assert isinstance(upright, PageResult) and isinstance(turned, PageResult)
    assert (upright.rotation, turned.rotation) == (0, 180)
    assert char_error_rate(expected(golden, "golden_en.png"), normalise(turned.text)) <= MAX_CER


def test_a_born_digital_page_is_taken_from_its_text_layer_and_a_scan_is_ocrd(
    engine: OcrEngine, golden: dict[str, dict[str, Any]]
) -> None:
    (_, digital), (_, scan) = pages_of(engine, docmakers.mixed_pdf())
    assert isinstance(digital, PageResult) and isinstance(scan, PageResult)
    assert [line.text for line in digital.lines] == ["Quarterly report 2026", "Invoice total: 1284.50"]
    assert {line.source for line in digital.lines} == {"pdf"} and "recognize" not in digital.timings
    first = digital.lines[0].points  # 72 pt from the left, its baseline 100 pt from the top, at 200 DPI
    assert abs(first[0][0] - 72 * 200 / 72) < 5 and abs(first[3][1] - 100 * 200 / 72) < 12
    assert {line.source for line in scan.lines} == {"ocr"}
    assert char_error_rate(expected(golden, "golden_en.png"), normalise(scan.text)) <= MAX_CER
    assert [line["source"] for line in digital.to_dict()["lines"]] == ["pdf", "pdf"]


def test_a_multi_page_tiff_gives_every_page(engine: OcrEngine, tmp_path: Path) -> None:
    data = docmakers.tiff_pages(tmp_path, ["golden_en.png", "golden_zh.png"])
    assert document_kind(data) == "tiff"
    pages = pages_of(engine, data)
    assert [number for number, _ in pages] == [1, 2]
    assert all(isinstance(page, PageResult) and page.lines for _, page in pages)
    single = tmp_path / "one.tif"
    cv2.imwrite(str(single), docmakers.golden("golden_en.png"))
    assert engine.open_document(single) is None  # one page: an image, read as before


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (docmakers.encrypted_pdf, "encrypted (password-protected) PDF"),
        (lambda: docmakers.mixed_pdf()[:400], "truncated or corrupt PDF"),
        (lambda: b"%PDF-1.7\n" + bytes(range(256)) * 4, "truncated or corrupt PDF"),
    ],
    ids=["encrypted", "truncated", "garbage"],
)
def test_bad_pdfs_are_clear_errors_naming_the_file(engine: OcrEngine, make: Any, reason: str) -> None:
    with pytest.raises(ImageError, match=re.escape(reason)) as raised:
        engine.open_document(make(), "scan-0042.pdf")
    assert "scan-0042.pdf" in str(raised.value)


def test_a_document_over_max_pages_is_read_up_to_it_and_says_so(engine: OcrEngine) -> None:
    engine.settings = dataclasses.replace(engine.settings, max_pages=3)
    document = engine.open_document(docmakers.blank_pdf(7), "long.pdf")
    assert document is not None and (document.page_count, document.read_count, document.truncated) == (7, 3, True)
    assert [number for number, _ in engine.read_document(document)] == [1, 2, 3]


def test_absurd_and_tiny_pages_are_bounded_by_pixels(engine: OcrEngine) -> None:
    huge = open_document(
        docmakers.blank_pdf(1, 14_400, 14_400), "poster.pdf", dpi=200, max_pixels=4_000_000,
        max_image_pixels=100_000_000, max_pages=500,
    )  # fmt: skip
    assert huge is not None
    (page,) = list(huge.pages())
    assert page.image is not None and page.image.shape[0] * page.image.shape[1] <= 4_000_000
    tiny = engine.open_document(docmakers.blank_pdf(300, 1, 1), "dust.pdf")
    assert tiny is not None
    read = list(engine.read_document(tiny, batch=50))
    assert len(read) == 300 and all(isinstance(page, PageResult) and not page.lines for _, page in read)


def test_a_scan_is_rendered_at_its_own_resolution_when_that_is_higher(engine: OcrEngine) -> None:
    """golden_en.png (900 x 500) scanned at 300 DPI: rendered at 300, not at pdf_dpi's 200 (which
    would lose text), and the page's picture for the web has the same pixels as the boxes."""
    from engine.documents import render_page

    data = docmakers.scanned_pdf(["golden_en.png"], dpi=300)
    ((_, page),) = pages_of(engine, data)
    assert isinstance(page, PageResult) and (page.width, page.height) == (900, 500)
    settings = engine.settings
    picture = render_page(
        data, "scan.pdf", 1, dpi=settings.pdf_dpi, max_pixels=settings.det_max_pixels,
        max_image_pixels=settings.max_image_pixels,
    )  # fmt: skip
    assert picture.shape[:2] == (500, 900)
    low = docmakers.scanned_pdf(["golden_en.png"], dpi=100)  # a coarse scan: pdf_dpi (200) still applies
    ((_, coarse),) = pages_of(engine, low)
    assert isinstance(coarse, PageResult) and (coarse.width, coarse.height) == (1800, 1000)


def counting_pages(document: Document) -> tuple[Document, dict[str, int]]:
    """``document`` whose rendered page images are counted while they live (``live``, ``most``)."""
    counts = {"live": 0, "most": 0, "made": 0}
    lock = threading.Lock()

    def gone() -> None:
        with lock:
            counts["live"] -= 1

    def pages(skip: Any) -> Any:
        for page in document.pages(skip):
            if page.image is not None:
                with lock:
                    counts["live"] += 1
                    counts["made"] += 1
                    counts["most"] = max(counts["most"], counts["live"])
                weakref.finalize(page.image, gone)
            yield page
            del page  # this wrapper holds no page while the next is rendered

    return Document(document.kind, document.page_count, document.read_count, pages), counts


@pytest.mark.parametrize(("batch", "ahead"), [(1, 1), (2, 2), (4, 2)])
def test_a_long_document_never_holds_more_than_its_batch_and_the_pages_ahead(
    engine: OcrEngine, batch: int, ahead: int
) -> None:
    """Pages are rendered ahead in a thread (engine.prefetch_pages), but a bounded few: with 30
    pages, at most ``batch`` (being read) + ``ahead`` (waiting) + 1 (being rendered) at once."""
    engine.settings = dataclasses.replace(engine.settings, prefetch_pages=ahead)
    opened = engine.open_document(docmakers.blank_pdf(30, 300, 200), "long.pdf")
    assert opened is not None
    document, counts = counting_pages(opened)
    numbers = [number for number, page in engine.read_document(document, batch) if isinstance(page, PageResult)]
    assert numbers == list(range(1, 31))
    assert counts["made"] == 30
    assert counts["most"] <= batch + ahead + 1, counts
    assert counts["most"] > batch  # it did read ahead: the next pages were rendered while these were read


def test_reading_ahead_reads_the_same_pages_and_leaves_no_thread(engine: OcrEngine) -> None:
    data = docmakers.scanned_pdf(["golden_en.png", "golden_zh.png", "golden_en.png"])
    before = set(threading.enumerate())
    engine.settings = dataclasses.replace(engine.settings, prefetch_pages=0)
    serial = [(number, page.text) for number, page in pages_of(engine, data) if isinstance(page, PageResult)]
    engine.settings = dataclasses.replace(engine.settings, prefetch_pages=2)
    ahead = [(number, page.text) for number, page in pages_of(engine, data) if isinstance(page, PageResult)]
    assert ahead == serial and [number for number, _ in ahead] == [1, 2, 3]
    opened = engine.open_document(data, "doc.pdf")
    assert opened is not None
    reading = engine.read_document(opened, 1)
    next(reading)
    reading.close()  # type: ignore[attr-defined] - a reader that stops early (a worker told to stop)
    wait_until(lambda: not (set(threading.enumerate()) - before), 10.0, "the read-ahead thread to stop")
