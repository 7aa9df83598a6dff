#!/usr/bin/env python3
"""Fine-tune the recogniser on lines it reads poorly; accuracy before and after, and on the screens.

    .venv/bin/python benchmarks/finetune_rec.py --limit 3 --train 32 --test 16 --epochs 1   # smoke, ~2 min
    .venv/bin/python benchmarks/finetune_rec.py            # default, ~10 minutes on 2 quiet cores

1. Renders a line data set disjoint from the bench data: random English/Chinese/number lines in
   this machine's fonts (PIL, from ``fc-list``; OpenCV's Hershey script fonts when PIL is missing),
   slanted, blurred, low-contrast and noisy, which the pretrained recogniser reads poorly. It is
   written in the ``teamocr train rec`` layout (train.txt / test.txt) under the output folder.
2. Runs the real command, ``teamocr train rec --progress json --guard SCREENS --guard-limit N``,
   which scores the synthetic test split and the first N screens before and after training.
3. Prints both before/after pairs; with ``score.py`` present, it also scores the screens
   predictions with it, as a check of the package's own metric.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
WORDS = [
    "amount",
    "balance",
    "cancel",
    "confirm",
    "delivery",
    "discount",
    "export",
    "filter",
    "forward",
    "invoice",
    "ledger",
    "margin",
    "meeting",
    "order",
    "payment",
    "pending",
    "profile",
    "quarter",
    "receipt",
    "refund",
    "report",
    "schedule",
    "shipping",
    "status",
    "summary",
    "supplier",
    "ticket",
    "transfer",
    "update",
    "upload",
    "vendor",
    "voucher",
    "warehouse",
    "weekly",
    "yearly",
    "Alice",
    "Bob",
    "Carol",
    "Zhang",
    "Wang",
    "Li",
    "Monday",
    "Friday",
    "March",
    "October",
    "Berlin",
    "Shanghai",
]
ZH = [
    "发票",
    "金额",
    "合计",
    "日期",
    "名称",
    "数量",
    "单价",
    "会议",
    "记录",
    "项目",
    "客户",
    "供应",
    "仓库",
    "订单",
    "付款",
    "退款",
    "审批",
    "报告",
    "预算",
    "季度",
    "部门",
    "负责",
    "完成",
    "进度",
    "备注",
    "地址",
    "电话",
    "邮件",
    "账户",
    "余额",
    "税率",
    "折扣",
    "运费",
    "库存",
    "采购",
    "销售",
]


def random_line(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.45:
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 4))]
        if rng.random() < 0.5:
            words.append(f"{rng.randint(1, 9999)}")
        return " ".join(words)
    if kind < 0.75:
        return "".join(rng.choice(ZH) for _ in range(rng.randint(2, 5))) + (
            f" {rng.randint(1, 999)}.{rng.randint(0, 99):02d}" if rng.random() < 0.5 else ""
        )
    return rng.choice(
        [
            f"INV-{rng.randint(2019, 2026)}-{rng.randint(1, 9999):04d}",
            f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2019, 2026)} "
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
            f"Total: {rng.randint(1, 99999):,}.{rng.randint(0, 99):02d}",
            f"#{rng.randint(100, 999)} {rng.choice(WORDS)} x{rng.randint(1, 12)}",
        ]
    )


def fonts() -> list[str]:
    try:
        out = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({p for p in out.splitlines() if p.endswith((".ttf", ".ttc", ".otf"))})


def cjk_font(paths: list[str]) -> str | None:
    return next((p for p in paths if any(k in p.lower() for k in ("wqy", "noto", "cjk", "hei", "ming", "song"))), None)


def render(text: str, rng: random.Random, font_paths: list[str]) -> np.ndarray:
    """A hard crop: an odd font, small (22-30 px high), slanted, blurred, low-contrast, noisy.

    The pretrained small recogniser reads these clearly worse than clean text (blur at this
    height is what hurts most), yet a person can still read them.
    """
    img = _draw_pil(text, rng, font_paths) if font_paths else None
    if img is None:
        img = _draw_hershey(text, rng)
    scale = rng.uniform(22, 30) / img.shape[0]
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    rows, cols = img.shape[:2]
    shear = rng.choice([-1, 1]) * rng.uniform(0.5, 0.9)
    pad = int(abs(shear) * rows)
    img = cv2.copyMakeBorder(img, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    img = cv2.warpAffine(
        img, np.float32([[1, shear, -shear * rows / 2], [0, 1, 0]]), (cols + 2 * pad, rows), borderValue=(255, 255, 255)
    )
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1.0, 1.7))
    ink, paper = rng.uniform(90, 160), rng.uniform(190, 245)
    img = paper - (255 - img.astype(np.float32)) / 255 * (paper - ink)
    img += np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(4, 12), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_pil(text: str, rng: random.Random, font_paths: list[str]) -> np.ndarray | None:
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        return None
    cjk = any("\u4e00" <= c <= "\u9fff" for c in text)
    path = cjk_font(font_paths) if cjk else rng.choice(font_paths)
    if path is None:
        return None
    font = ImageFont.truetype(path, rng.randint(26, 40))
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (right - left + 24, bottom - top + 16), "white")
    ImageDraw.Draw(image).text((12 - left, 8 - top), text, font=font, fill="black")
    return np.asarray(image)[:, :, ::-1].copy()


def _draw_hershey(text: str, rng: random.Random) -> np.ndarray:
    font = rng.choice([cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX])
    text = text.encode("ascii", "replace").decode()
    (w, h), base = cv2.getTextSize(text, font, 1.0, 2)
    img = np.full((h + base + 16, w + 24, 3), 255, np.uint8)
    cv2.putText(img, text, (12, h + 8), font, 1.0, (0, 0, 0), 2, cv2.LINE_AA)
    return img


def make_dataset(folder: Path, n_train: int, n_test: int, seed: int) -> None:
    rng = random.Random(seed)
    paths = fonts()
    (folder / "crops").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_train + n_test):
        text = random_line(rng)
        name = f"crops/{i:05d}.png"
        cv2.imwrite(str(folder / name), render(text, rng, paths))
        rows.append(f"{name}\t{text}")
    (folder / "train.txt").write_text("\n".join(rows[:n_train]) + "\n", encoding="utf-8")
    (folder / "test.txt").write_text("\n".join(rows[n_train:]) + "\n", encoding="utf-8")
    print(
        f"data: {n_train} training and {n_test} test lines in {folder} "
        f"({'PIL, ' + str(len(paths)) + ' fonts' if paths else 'Hershey fonts'})",
        flush=True,
    )


def train(args: argparse.Namespace, data: Path, work: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "cli",
        "train",
        "rec",
        "--data",
        str(data),
        "--workdir",
        str(work),
        "--model-set",
        args.model_set,
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--progress",
        "json",
    ]
    if args.lr:
        cmd += ["--lr", str(args.lr)]
    if args.screens.is_dir() and args.limit > 0:
        cmd += ["--guard", str(args.screens), "--guard-limit", str(args.limit)]
    env = {**os.environ, "TEAMOCR_ENGINE__THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    print("running:", " ".join(cmd[1:]), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    done: dict[str, Any] = {}
    last = 0.0
    assert proc.stdout is not None
    for line in proc.stdout:
        item = json.loads(line)
        if item["type"] == "progress" and (time.monotonic() - last > 15 or item["step"] == item["steps"]):
            last = time.monotonic()
            print(f"  epoch {item['epoch']} step {item['step']}/{item['steps']} loss {item['loss']}", flush=True)
        elif item["type"] == "done":
            done = item
    if proc.wait() != 0 or not done:
        raise SystemExit(f"teamocr train rec failed (exit {proc.returncode})")
    return done


def cross_check(args: argparse.Namespace, done: dict[str, Any], out: Path) -> dict[str, float]:
    """score.py's accuracy on the same screens predictions (labels cut to the images that ran)."""
    scorer = args.screens.parent.parent / "score.py"
    if not scorer.is_file() or not done.get("guard_before"):
        return {}
    labels = [line for line in (args.screens / "labels.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    cut = out / "screens_subset"
    cut.mkdir(exist_ok=True)
    (cut / "labels.jsonl").write_text("\n".join(labels[: args.limit]) + "\n", encoding="utf-8")
    if not (cut / "images").exists():
        (cut / "images").symlink_to(args.screens.resolve() / "images")
    result = {}
    for tag in ("before", "after"):
        summary = out / f"score_{tag}.json"
        subprocess.run(
            [sys.executable, str(scorer), str(cut), done[f"guard_{tag}"]["predictions"], "--json", str(summary)],
            check=True,
            capture_output=True,
        )
        result[tag] = json.loads(summary.read_text())["all"]["accuracy"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=400, help="training lines (default 400)")
    parser.add_argument("--test", type=int, default=100, help="test lines (default 100)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, help="default: teamocr train rec's")
    parser.add_argument("--model-set", default="small", choices=("small", "tiny"))
    parser.add_argument("--limit", type=int, default=10, help="screens for the guard (0: skip)")
    parser.add_argument("--screens", type=Path, default=BENCH / "data" / "screens")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "out" / f"finetune_rec-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    args = parser.parse_args(argv)
    start = time.monotonic()
    make_dataset(args.out / "data", args.train, args.test, args.seed)
    done = train(args, args.out / "data", args.out / "run")
    check = cross_check(args, done, args.out)
    print(
        f"\nfine-tuned {args.model_set} recogniser: {done['steps']} steps, {done['epochs']} epoch(s), "
        f"best epoch {done['best_epoch']}, {done['seconds']:.0f} s training (incl. scoring)"
    )
    print(f"{'set':<34}{'before':>8}{'after':>8}{'change':>9}")
    rows = [(f"synthetic test ({args.test} lines)", done.get("test_before"), done.get("test_after"))]
    if done.get("guard_before"):
        rows.append((f"screens, first {args.limit} (guard)", done["guard_before"], done["guard_after"]))
    for name, before, after in rows:
        b, a = before["accuracy"], after["accuracy"]
        print(f"{name:<34}{b:>8.4f}{a:>8.4f}{100 * (a - b):>+8.2f}p")
    if check:
        print(f"score.py on the same screens predictions: before {check['before']:.4f}, after {check['after']:.4f}")
    if not done.get("guard_before"):
        print(f"screens not found at {args.screens} (or --limit 0): guard skipped")
    print(f"checkpoint {done['checkpoint']}; total {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
