"""Render the golden OCR test images in this folder and golden.json, the text each one holds.

Run by hand when the images need to change, then commit the results:

    python tests/images/make_images.py [--cjk-font FILE] [--latin-font FILE] [--latin-bold-font FILE] [--out DIR]

Only this script needs Pillow.  Fonts are found with ``fc-match`` (WenQuanYi Micro Hei for
Chinese, DejaVu Sans for Latin; on Debian: ``apt-get install fonts-wqy-microhei fonts-dejavu-core``)
unless given.  Each line is drawn run by run, Chinese runs in the CJK font and the rest in the
Latin font, on a shared baseline, as a screenshot of a real app would show it.

golden.json maps each image name to ``{"width", "height", "lines": [{"text", "box"}]}``, lines
in reading order (top to bottom), ``box`` = ``[left, top, right, bottom]`` of the inked text.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger("make_images")

MAX_PNG_BYTES = 200_000
# CJK ideographs and punctuation, kana, and full-width forms go to the CJK font.
CJK = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uf900-\ufaff\uff00-\uffef]+")
DEFAULT_FONTS = {  # standard Debian locations, used when fc-match is unavailable
    "cjk": ("WenQuanYi Micro Hei", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    "latin": ("DejaVu Sans", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    "latin_bold": ("DejaVu Sans:bold", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
}


@dataclass(frozen=True)
class Fonts:
    cjk: str
    latin: str
    latin_bold: str


@dataclass(frozen=True)
class Line:
    text: str
    x: int
    baseline: int
    size: int
    color: str
    bold: bool = False


def find_font(kind: str, given: str | None) -> str:
    """Return the font file for ``kind``: the one given, else fc-match's answer, else the Debian default."""
    if given:
        return given
    pattern, default = DEFAULT_FONTS[kind]
    if shutil.which("fc-match"):
        query = ["fc-match", "-f", "%{family}|%{file}", pattern]
        found = subprocess.run(query, capture_output=True, text=True, check=False)
        family, _, path = found.stdout.partition("|")
        if found.returncode == 0 and pattern.split(":")[0].lower() in family.lower() and Path(path).is_file():
            return path
    if not Path(default).is_file():
        raise SystemExit(f"no {pattern} font found: install it or pass --{kind.replace('_', '-')}-font FILE")
    return default


def runs(text: str) -> list[tuple[str, bool]]:
    """Split ``text`` into (run, is_cjk) pieces."""
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for match in CJK.finditer(text):
        if match.start() > pos:
            pieces.append((text[pos : match.start()], False))
        pieces.append((match.group(), True))
        pos = match.end()
    if pos < len(text):
        pieces.append((text[pos:], False))
    return pieces


def draw_line(draw: ImageDraw.ImageDraw, fonts: Fonts, line: Line) -> list[int]:
    """Draw one line run by run on a shared baseline; return its ink box [left, top, right, bottom]."""
    x = float(line.x)
    boxes = []
    for piece, is_cjk in runs(line.text):
        path = fonts.cjk if is_cjk else (fonts.latin_bold if line.bold else fonts.latin)
        font = ImageFont.truetype(path, line.size)
        draw.text((x, line.baseline), piece, font=font, fill=line.color, anchor="ls")
        if piece.strip():
            boxes.append(draw.textbbox((x, line.baseline), piece, font=font, anchor="ls"))
        x += font.getlength(piece)
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return [round(left), round(top), round(right), round(bottom)]


def window_chrome(draw: ImageDraw.ImageDraw, width: int, height: int, *, dark: bool) -> None:
    """A desktop window: frame, title bar with three buttons, a sidebar; no text."""
    frame, bar, side = ("#2d2d2d", "#252526", "#333333") if dark else ("#d0d7de", "#eaeef2", "#f6f8fa")
    draw.rounded_rectangle((16, 16, width - 16, height - 16), radius=10, outline=frame, width=2)
    draw.rectangle((18, 18, width - 18, 58), fill=bar)
    for i, color in enumerate(("#ff5f57", "#febc2e", "#28c840")):
        draw.ellipse((34 + 24 * i, 31, 48 + 24 * i, 45), fill=color)
    draw.rectangle((18, 60, 64, height - 18), fill=side)
    for i in range(4):
        draw.rounded_rectangle((30, 84 + 56 * i, 52, 106 + 56 * i), radius=5, fill=frame)


@dataclass(frozen=True)
class Scene:
    name: str
    size: tuple[int, int]
    background: str
    lines: list[Line]
    style: str  # "light" or "dark" desktop window, or "phone"
    button: tuple[int, int, int, int] | None = None  # filled behind a line of white text


def render(scene: Scene, fonts: Fonts) -> tuple[Image.Image, dict[str, Any]]:
    """Draw ``scene``; return the image and its golden.json record."""
    width, height = scene.size
    image = Image.new("RGB", scene.size, scene.background)
    draw = ImageDraw.Draw(image)
    if scene.style == "phone":
        for line in scene.lines[2:-1]:  # a separator under each list row
            draw.line((48, line.baseline + 34, width - 48, line.baseline + 34), fill="#e5e5ea", width=2)
    else:
        window_chrome(draw, width, height, dark=scene.style == "dark")
    if scene.button:
        draw.rounded_rectangle(scene.button, radius=8, fill="#1f6feb")
    records = [{"text": line.text, "box": draw_line(draw, fonts, line)} for line in scene.lines]
    return image, {"width": width, "height": height, "lines": records}


def scenes() -> list[Scene]:
    ink, grey = "#1f2328", "#57606a"
    en = [
        Line("Quarterly report 2026", 96, 118, 32, ink, bold=True),
        Line("Invoice #A-1043 total: $1,284.50", 96, 182, 26, ink),
        Line("Settings > Notifications > Email", 96, 242, 26, grey),
        Line("Last synced at 14:32 from the shared folder", 96, 302, 24, grey),
        Line("Owner: Alice Chen (alice@example.com)", 96, 362, 24, ink),
        Line("Export PDF", 116, 436, 24, "#ffffff"),
    ]
    zh = [
        Line("团队共享文件夹", 96, 120, 34, ink),
        Line("识别结果实时推送", 96, 190, 28, ink),
        Line("发票金额：人民币 1284.50 元", 96, 258, 28, ink),
        Line("OCR 识别 Screenshot 2026", 96, 326, 28, grey),
        Line("上传截图后自动生成文字", 96, 394, 26, grey),
    ]
    light, accent, green = "#d4d4d4", "#4fc1ff", "#89d185"
    dark = [
        Line("深色模式 Dark mode", 96, 120, 32, light),
        Line("构建成功 Build passed in 42s", 96, 190, 26, green),
        Line("今天 10:45 更新了 3 个文件", 96, 256, 26, light),
        Line("Open terminal 打开终端", 96, 322, 26, accent),
        Line("错误 0 个，警告 2 个", 96, 388, 26, light),
    ]
    rows = [
        "Alice: the report is ready",
        "陈伟：发票已经上传到共享文件夹",
        "Meeting moved to 3:30 PM",
        "明天上午十点开会",
        "Photo OCR test 照片识别测试",
        "Order #58213 shipped",
        "快递已送达前台",
        "Battery 87% remaining",
        "设置 > 通知 > 邮件",
        "Download complete: scan_0042.pdf",
        "本周共识别 1,024 张截图",
        "Reply to Bob about the invoice",
        "天气晴，最高气温 26 度",
        "Wi-Fi connected to TeamOffice",
        "请在周五前提交报销单",
        "Storage 12.4 GB of 64 GB used",
        "共享相册新增 8 张照片",
        "Tap to view all notifications",
    ]
    phone = [Line("9:41", 56, 70, 28, ink, bold=True), Line("Messages 消息", 56, 190, 36, ink, bold=True)]
    phone += [
        Line(text, 56, 300 + 112 * i, (28, 32, 30, 34)[i % 4], grey if i % 3 == 2 else ink)
        for i, text in enumerate(rows)
    ]
    phone.append(Line("Version 2.4.1 (build 5830) 版本信息", 56, 2330, 14, grey))
    return [
        Scene("golden_en.png", (900, 500), "#ffffff", en, "light", button=(100, 404, 262, 450)),
        Scene("golden_zh.png", (900, 500), "#ffffff", zh, "light"),
        Scene("golden_dark.png", (900, 500), "#1e1e1e", dark, "dark"),
        Scene("tall_phone.png", (1080, 2400), "#ffffff", phone, "phone"),
    ]


def save_png(image: Image.Image, path: Path) -> None:
    """Save as an optimised palette PNG, using fewer colours until it fits; no dithering keeps edges crisp."""
    for colors in (128, 64, 32):
        image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            path, optimize=True
        )
        if path.stat().st_size < MAX_PNG_BYTES:
            return
    raise SystemExit(f"{path} is {path.stat().st_size} bytes even with 32 colours")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cjk-font", help="font file with Chinese glyphs (default: WenQuanYi Micro Hei)")
    parser.add_argument("--latin-font", help="font file for Latin text (default: DejaVu Sans)")
    parser.add_argument("--latin-bold-font", help="bold font file for Latin titles (default: DejaVu Sans Bold)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    fonts = Fonts(
        find_font("cjk", args.cjk_font),
        find_font("latin", args.latin_font),
        find_font("latin_bold", args.latin_bold_font),
    )
    logger.info("fonts: %s", fonts)
    golden: dict[str, dict[str, Any]] = {}
    for scene in scenes():
        image, golden[scene.name] = render(scene, fonts)
        path = args.out / scene.name
        save_png(image, path)
        logger.info("%s: %d lines, %d bytes", path, len(scene.lines), path.stat().st_size)
    (args.out / "golden.json").write_text(golden_json(golden), encoding="utf-8")


def golden_json(golden: dict[str, dict[str, Any]]) -> str:
    """JSON with one line of text per row, so diffs of golden.json stay readable."""
    parts = []
    for name, record in golden.items():
        rows = ",\n".join("      " + json.dumps(line, ensure_ascii=False) for line in record["lines"])
        head = json.dumps(name) + f': {{"width": {record["width"]}, "height": {record["height"]}, "lines": [\n'
        parts.append("  " + head + rows + "\n  ]}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


if __name__ == "__main__":
    main()
