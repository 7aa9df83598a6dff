"""Reading order by blocks (engine.layout, engine.reading): pages drawn as boxes, no models, and one
rendered two-column page read by the real engine."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from daemon.results.fulltext import page_text
from engine.layout import page_blocks
from engine.orientation import to_source
from engine.pipeline import OcrEngine
from engine.reading import arrange
from engine.types import PageResult, TextLine

H = 20  # a line's height in these pages


def line(text: str, x: float, y: float, width: float | None = None, height: float = H, conf: float = 0.9) -> TextLine:
    w = width if width is not None else 10.0 * len(text)
    points = ((x, y), (x + w, y), (x + w, y + height), (x, y + height))
    return TextLine(text, points, conf, source="pdf")  # exact boxes: no detector margin


def page(lines: list[TextLine], width: int = 1000, height: int = 1000, rotation: int = 0) -> PageResult:
    ordered, blocks = arrange(lines, width, height, rotation)
    return PageResult(ordered, width, height, rotation=rotation, blocks=blocks)


def two_columns() -> list[TextLine]:
    """A title over two columns of prose whose lines share baselines, drawn row by row."""
    lines = [line("Title of the article", 40, 20, height=36)]
    for k in range(6):
        y = 90 + 30 * k
        lines.append(line(f"left column line {k}", 40, y, width=400))
        lines.append(line(f"right column line {k}", 500, y, width=400))
    return lines


def test_a_two_column_page_reads_column_by_column() -> None:
    got = page(two_columns())
    texts = [ln.text for ln in got.lines]
    assert texts == ["Title of the article"] + [f"left column line {k}" for k in range(6)] + [
        f"right column line {k}" for k in range(6)
    ]
    assert [b.kind for b in got.page_blocks()] == ["heading", "paragraph", "paragraph"]
    assert got.text.split("\n\n") == [
        "Title of the article",
        "\n".join(f"left column line {k}" for k in range(6)),
        "\n".join(f"right column line {k}" for k in range(6)),
    ]
    # the old order is still there: rows across the page
    assert got.row_text.splitlines()[1] == "left column line 0 right column line 0"


def test_a_sidebar_beside_a_longer_article_comes_after_it() -> None:
    lines = [line(f"article line {k}", 40, 40 + 30 * k, width=700) for k in range(12)]
    lines += [line(f"link {k}", 800, 40 + 30 * k, width=120) for k in range(4)]
    texts = [ln.text for ln in page(lines).lines]
    assert texts == [f"article line {k}" for k in range(12)] + [f"link {k}" for k in range(4)]


def test_a_form_and_a_table_read_row_by_row() -> None:
    form = []
    for k in range(5):
        form += [line(f"Label {k}:", 40, 40 + 50 * k), line(f"value {k}", 400, 40 + 50 * k)]
    assert [ln.text for ln in page(form).lines] == [ln.text for ln in form]
    table = [line("Name", 40, 20), line("Size", 300, 20), line("State", 500, 20)]
    for k in range(6):
        y = 50 + 26 * k
        table += [line(f"file{k}.png", 40, y), line(f"{k} KB", 300, y), line("done", 500, y)]
    got = page(table)
    assert [ln.text for ln in got.lines] == [ln.text for ln in table]
    assert [b.kind for b in got.page_blocks()] == ["table"]
    assert got.text.splitlines()[:2] == ["Name Size State", "file0.png 0 KB done"]


def test_a_list_and_a_heading_are_named() -> None:
    lines = [line("Steps", 40, 20, height=34), line("Read the page first and then", 40, 70, width=600)]
    lines += [line(f"{k}. step number {k}", 60, 130 + 28 * k, width=300) for k in range(1, 4)]
    kinds = [b.kind for b in page(lines).page_blocks()]
    assert kinds == ["heading", "paragraph", "list"]


def test_a_title_split_in_two_is_merged_with_the_confidence_of_its_parts() -> None:
    parts = [line("Quarterly", 40, 20, width=90, conf=0.9), line("report", 136, 21, width=60, conf=0.6)]
    body = [line("The figures of the quarter", 40, 70, width=400)]
    got = page(parts + body)
    assert [ln.text for ln in got.lines] == ["Quarterly report", "The figures of the quarter"]
    merged = got.lines[0]
    assert merged.confidence == pytest.approx((0.9 * 9 + 0.6 * 6) / 15)
    assert merged.points[0] == (40, 20) and merged.points[2] == (196, 41)
    # Chinese pieces join without a space
    zh = page([line("年度", 40, 20, width=40), line("报告", 86, 20, width=40)])
    assert [ln.text for ln in zh.lines] == ["年度报告"]


def test_cells_of_a_row_stay_apart() -> None:
    row = [line("Name", 40, 20, width=40), line("Size", 120, 20, width=40), line("State", 200, 20, width=50)]
    assert len(page(row).lines) == 3


def test_vertical_chinese_reads_columns_top_to_bottom_right_to_left() -> None:
    columns = [("第一列文字内容", 800), ("第二列文字", 740), ("第三列的文字内容很长", 680)]
    lines = [
        TextLine(text, ((x, 40), (x + 30, 40), (x + 30, 40 + 33 * len(text)), (x, 40 + 33 * len(text))), 0.9, "pdf")
        for text, x in reversed(columns)
    ]
    got = page(lines)
    assert [ln.text for ln in got.lines] == [text for text, _ in columns]


def test_a_turned_page_is_laid_out_upright() -> None:
    upright = two_columns()
    turned = [
        TextLine(ln.text, tuple(map(tuple, to_source(np.asarray(ln.points), 90, 1000, 1000))), ln.confidence, "pdf")  # type: ignore[arg-type]
        for ln in upright
    ]
    assert [ln.text for ln in page(turned, rotation=90).lines] == [ln.text for ln in page(upright).lines]


def test_the_result_carries_its_blocks_and_a_rebuilt_text_matches() -> None:
    got = page(two_columns())
    data = got.to_dict()
    assert [b["kind"] for b in data["blocks"]] == ["heading", "paragraph", "paragraph"]
    assert data["blocks"][1]["lines"] == [1, 2, 3, 4, 5, 6] and data["blocks"][1]["bbox"] == [40, 90, 440, 260]
    assert page_text(data["lines"]) == data["text"] == got.text
    # a page made by hand, with no blocks, finds them when asked
    assert PageResult(got.lines, 1000, 1000).text == got.text


def test_every_line_is_in_exactly_one_block() -> None:
    rng = np.random.default_rng(3)
    quads = []
    for _ in range(120):
        x, y = rng.uniform(0, 900), rng.uniform(0, 900)
        w, h = rng.uniform(10, 200), rng.uniform(8, 30)
        quads.append(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]))
    blocks = page_blocks(quads, ["x"] * len(quads))
    assert sorted(i for b in blocks for i in b.lines) == list(range(len(quads)))
    assert page_blocks([], []) == []


def test_the_engine_reads_a_rendered_two_column_page_column_by_column(ort_engine: OcrEngine) -> None:
    image = np.full((420, 1000, 3), 255, np.uint8)
    left = ["alpha the shared folder is read", "bravo as soon as files arrive", "charlie every image is kept"]
    right = ["delta results land in the store", "echo with the lines and boxes", "foxtrot and their confidences"]
    for k, (a, b) in enumerate(zip(left, right)):
        y = 80 + 40 * k  # both columns on the same baselines, as CSS columns draw them
        cv2.putText(image, a, (30, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.putText(image, b, (530, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
    got = ort_engine(image)
    words = " ".join(ln.text for ln in got.lines).lower().split()
    order = [words.index(w) for w in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")]
    assert order == sorted(order), words
    for block in got.page_blocks():  # no block holds lines of both columns
        assert len({got.lines[i].points[0][0] < 500 for i in block.lines}) == 1
    assert got.timings["layout"] < 0.1
