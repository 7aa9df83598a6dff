"""Small training sets made on the fly: line crops the tiny recogniser reads poorly, and pages."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

TEXTS = ["hello 42", "TeamOCR", "fine tune", "invoice 7", "total 13.50", "alpha beta", "Kx9 zq", "Wavy 88"]


def hard_crop(text: str, shear: float = 0.8, blur: float = 3.0, contrast: float = 0.5) -> np.ndarray:
    """Script font, strong slant, blur and low contrast: the base tiny model misreads these."""
    font = cv2.FONT_HERSHEY_SCRIPT_SIMPLEX
    (w, h), _ = cv2.getTextSize(text, font, 1.0, 2)
    img = np.full((h + 24, w + 40, 3), 255, np.uint8)
    cv2.putText(img, text, (20, h + 10), font, 1.0, (0, 0, 0), 2, cv2.LINE_AA)
    rows, cols = img.shape[:2]
    img = cv2.warpAffine(
        img, np.float32([[1, shear, -shear * rows / 2], [0, 1, 0]]), (cols, rows), borderValue=(255, 255, 255)
    )
    img = cv2.GaussianBlur(img, (0, 0), blur)
    return (255 - (255 - img.astype(np.float32)) * contrast).astype(np.uint8)


def write_rec_set(root: Path, texts: list[str] = TEXTS, test: list[str] | None = None) -> Path:
    """``root``/train.txt and test.txt over crops/NN.png."""
    (root / "crops").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, text in enumerate(texts):
        cv2.imwrite(str(root / "crops" / f"{i:02d}.png"), hard_crop(text))
        lines.append(f"crops/{i:02d}.png\t{text}")
    (root / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    chosen = lines if test is None else [ln for ln in lines if ln.split("\t")[1] in test]
    if chosen:
        (root / "test.txt").write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return root


def page(texts: list[str], size: tuple[int, int] = (320, 256)) -> tuple[np.ndarray, list[np.ndarray]]:
    """A white page with one black line of text per entry; returns it and each line's quad."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    quads = []
    y = 40
    for text in texts:
        ink = np.zeros((h, w), np.uint8)
        cv2.putText(ink, text, (16, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2, cv2.LINE_AA)
        img[ink > 0] = 255 - ink[ink > 0, None]
        x, y_top, box_w, box_h = cv2.boundingRect((ink > 64).astype(np.uint8))
        x0, y0, x1, y1 = x - 1, y_top - 1, x + box_w + 1, y_top + box_h + 1  # the ink, a pixel of margin
        quads.append(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32))
        y += 50
    return img, quads


def write_det_set(root: Path, pages: dict[str, list[str]], test: dict[str, list[str]] | None = None) -> Path:
    """ICDAR 2015 layout: {split}_list.txt, {split}_images/, {split}_gts/gt_<stem>.txt."""
    for split, content in (("train", pages), ("test", test)):
        if content is None:
            continue
        (root / f"{split}_images").mkdir(parents=True, exist_ok=True)
        (root / f"{split}_gts").mkdir(parents=True, exist_ok=True)
        for name, texts in content.items():
            img, quads = page(texts)
            cv2.imwrite(str(root / f"{split}_images" / name), img)
            rows = [",".join(str(int(v)) for v in q.reshape(-1)) + "," + t for q, t in zip(quads, texts)]
            (root / f"{split}_gts" / f"gt_{Path(name).stem}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
        (root / f"{split}_list.txt").write_text("\n".join(content) + "\n", encoding="utf-8")
    return root
