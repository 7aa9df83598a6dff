"""Pages drawn with their reading order known: the ``rendered`` set of ``benchmarks/reading_order.py``.

    python benchmarks/layout_pages.py OUT_DIR

Writes ``OUT_DIR/images/*.png`` and ``OUT_DIR/labels.jsonl`` in the bench's format (score.py's),
each label line with its text and box, in the order a person reads the page: two- and
three-column articles under a title (their columns' lines on the same baselines, as CSS columns
draw them), a sidebar beside a longer article, a two-pane app (a list of items beside the open
one), a form (labels and values, row by row), a table (header and rows), a bulleted list between
paragraphs, and vertical Chinese (columns top to bottom, right to left). Texts are made up of a
fixed vocabulary with a seeded generator, so every run draws the same pages; fonts are the
system's DejaVu Sans and Droid Sans Fallback (for Chinese).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

LATIN = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
CJK = "/usr/share/ghostscript/10.00.0/Resource/CIDFSubst/DroidSansFallback.ttf"
WORDS = tuple(
    " ".join(
        (
            "the share holds scans and screenshots that the service reads as they arrive while the team",
            "searches corrected text exports results and trains its own models on what it fixed every page",
            "keeps its lines boxes and confidences with the time each stage took",
        )
    ).split()
)
HANZI = (
    "共享文件夹中的图片会被自动识别团队成员可以搜索修改导出结果并用更正后的文本训练自己的模型每一页都保留行框和置信度"
)
Line = dict[str, Any]


class Canvas:
    """A white page and the label lines drawn on it, in the order they were drawn."""

    def __init__(self, width: int, height: int) -> None:
        self.image = Image.new("RGB", (width, height), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.lines: list[Line] = []

    def text(self, x: float, y: float, text: str, size: int, cjk: bool = False) -> tuple[float, float]:
        """Draw ``text`` with its top-left at (x, y); label it; return its right and bottom."""
        font = ImageFont.truetype(CJK if cjk else LATIN, size)
        x0, y0, x1, y1 = self.draw.textbbox((x, y), text, font=font)
        self.draw.text((x, y), text, fill="black", font=font)
        self.lines.append({"text": text, "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]})
        return x1, y1

    def vertical(self, x: float, y: float, text: str, size: int) -> None:
        """A column of Chinese characters from (x, y) down, labelled as one line."""
        font = ImageFont.truetype(CJK, size)
        top = y
        for char in text:
            self.draw.text((x, y), char, fill="black", font=font)
            y += size * 1.1
        self.lines.append({"text": text, "points": [[x, top], [x + size, top], [x + size, y], [x, y]]})


def sentence(rng: random.Random, chars: int) -> str:
    out = ""
    while len(out) < chars:
        out += rng.choice(WORDS) + " "
    return out[:chars].strip()


def prose(canvas: Canvas, rng: random.Random, x: float, y: float, width: float, lines: int, size: int) -> float:
    """A paragraph of ``lines`` lines filling ``width`` (the last one shorter); returns its bottom."""
    font = ImageFont.truetype(LATIN, size)
    for k in range(lines):
        words: list[str] = []
        limit = width if k < lines - 1 else width / 2
        while canvas.draw.textlength(" ".join([*words, word := rng.choice(WORDS)]), font=font) <= limit:
            words.append(word)
        canvas.text(x, y, " ".join(words), size)
        y += size * 1.5
    return y


def columns(rng: random.Random, count: int) -> Canvas:
    c = Canvas(1200, 900)
    c.text(40, 30, sentence(rng, 30).title(), 30)
    width = (1120 - 40 * (count - 1)) / count
    for k in range(count):
        y = 100.0
        for _ in range(2):
            y = prose(c, rng, 40 + k * (width + 40), y, width, rng.randint(6, 9), 16) + 16
    return c


def sidebar(rng: random.Random, _: int) -> Canvas:
    c = Canvas(1200, 900)
    c.text(40, 30, sentence(rng, 24).title(), 26)
    y = 90.0
    for _ in range(4):
        y = prose(c, rng, 40, y, 760, rng.randint(3, 6), 16) + 18
    c.text(860, 90, "Related", 18)
    for k in range(6):
        c.text(860, 130 + 30 * k, f"- {sentence(rng, 22)}", 15)
    return c


def panes(rng: random.Random, _: int) -> Canvas:
    c = Canvas(1280, 800)
    for k in range(7):
        y = 30 + 100 * k
        c.text(30, y, sentence(rng, 18).title(), 16)
        c.text(300, y, f"{rng.randint(1, 28)}/{rng.randint(1, 12)}", 14)
        c.text(30, y + 28, sentence(rng, 38), 13)
    c.text(440, 30, sentence(rng, 28).title(), 26)
    prose(c, rng, 440, 90, 800, 12, 16)
    return c


def form(rng: random.Random, _: int) -> Canvas:
    c = Canvas(1000, 800)
    c.text(40, 30, "Account settings", 26)
    for k in range(10):
        y = 100 + 55 * k
        c.text(40, y, sentence(rng, rng.randint(6, 16)).capitalize() + ":", 16)
        c.text(420, y, sentence(rng, rng.randint(8, 30)), 16)
    return c


def table(rng: random.Random, _: int) -> Canvas:
    c = Canvas(1100, 800)
    c.text(40, 30, "Files read this week", 24)
    xs = (40, 360, 560, 800)
    for x, head in zip(xs, ("Name", "Pages", "Size", "Status")):
        c.text(x, 90, head, 16)
    for k in range(14):
        y = 125 + 32 * k
        c.text(xs[0], y, sentence(rng, rng.randint(8, 24)), 15)
        c.text(xs[1], y, str(rng.randint(1, 400)), 15)
        c.text(xs[2], y, f"{rng.randint(1, 900)} KB", 15)
        c.text(xs[3], y, rng.choice(("done", "queued", "failed", "reading")), 15)
    return c


def bullets(rng: random.Random, _: int) -> Canvas:
    c = Canvas(1000, 900)
    c.text(40, 30, sentence(rng, 26).title(), 26)
    y = prose(c, rng, 40, 90, 900, 3, 16) + 20
    for k in range(6):
        c.text(60, y, f"{k + 1}. {sentence(rng, rng.randint(20, 60))}", 16)
        y += 32
    prose(c, rng, 40, y + 20, 900, 3, 16)
    return c


def vertical(rng: random.Random, _: int) -> Canvas:
    c = Canvas(900, 800)
    x = 820.0
    for _ in range(12):
        start = rng.randrange(len(HANZI) - 20)
        c.vertical(x, 40, HANZI[start : start + rng.randint(10, 18)], 30)
        x -= 62
    return c


PAGES: dict[str, tuple[Callable[[random.Random, int], Canvas], int]] = {
    "two_columns": (columns, 2),
    "three_columns": (columns, 3),
    "sidebar": (sidebar, 0),
    "panes": (panes, 0),
    "form": (form, 0),
    "table": (table, 0),
    "list": (bullets, 0),
    "vertical_zh": (vertical, 0),
}


def write_set(out: Path, variants: int = 3) -> None:
    """Draw ``variants`` pages of each kind into ``out`` (images/ and labels.jsonl)."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (make, arg) in PAGES.items():
        for v in range(variants):
            canvas = make(random.Random(f"{name}-{v}"), arg)
            image = f"images/{name}_{v}.png"
            canvas.image.save(out / image)
            rows.append(
                {"image": image, "kind": name, "lang": "zh" if name.endswith("zh") else "en", "lines": canvas.lines}
            )
    (out / "labels.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


if __name__ == "__main__":
    write_set(Path(sys.argv[1]))
