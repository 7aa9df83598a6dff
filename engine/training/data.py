"""Training data sets on disk: reading them, with every problem reported (see validate.py).

Recognition (``teamocr train rec``): line crops listed in ``train.txt`` and ``test.txt`` (the test
split is optional), one ``relative/path.png<TAB>text`` per line, paths relative to the data folder::

    DIR/train.txt   DIR/test.txt   DIR/crops/0001.png ...

Detection (``teamocr train det``): the ICDAR 2015 layout::

    DIR/train_list.txt  DIR/train_images/  DIR/train_gts/
    DIR/test_list.txt   DIR/test_images/   DIR/test_gts/      (optional)

``*_list.txt`` names one image per line; its boxes are in ``*_gts/gt_<stem>.txt`` (or
``<stem>.txt``), one ``x1,y1,x2,y2,x3,y3,x4,y4,text`` per line, points clockwise from top-left.
A text of ``###`` marks a region to ignore. **Commas in the text**: the text must then be quoted
as in CSV (``"1,000"``; a quote inside a quoted text is doubled); an unquoted text with a comma
is refused, since tools disagree on what a ninth comma means (some add a script field).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ImageError
from engine.preprocess import load_image
from engine.training.validate import (
    DEFAULT_CAP,
    ImageFinder,
    Problems,
    check_relative,
    describe_chars,
    read_lines,
    unknown_characters,
)

IGNORE_TEXT = "###"
BOX_TOLERANCE = 2.0  # pixels a box may stick out of its image (rounding in labelling tools)
MAX_PIXELS = 100_000_000
MAX_BYTES = 200_000_000


@dataclass(frozen=True)
class LineSample:
    """One line crop and its text."""

    image: Path
    text: str


@dataclass(frozen=True)
class RecDataset:
    """A recognition set; ``new_chars`` are characters outside the dictionary (kept only when
    the caller asked to extend it)."""

    root: Path
    train: tuple[LineSample, ...]
    test: tuple[LineSample, ...]
    new_chars: tuple[str, ...]


@dataclass(frozen=True)
class TextBox:
    """A labelled quad (4 x 2 float32, tl tr br bl) and its text; ``ignore`` for ``###``."""

    points: np.ndarray
    text: str
    ignore: bool


@dataclass(frozen=True)
class PageSample:
    """One detection image, its boxes and its size."""

    image: Path
    name: str
    boxes: tuple[TextBox, ...]
    width: int
    height: int


@dataclass(frozen=True)
class DetDataset:
    root: Path
    train: tuple[PageSample, ...]
    test: tuple[PageSample, ...]


def read_image(path: Path) -> np.ndarray:
    """BGR uint8, decoded as the engine decodes (EXIF orientation applied)."""
    return load_image(path, max_pixels=MAX_PIXELS, max_bytes=MAX_BYTES)


# -- recognition ---------------------------------------------------------------------------

REC_SPLITS = ("train.txt", "test.txt")


def read_rec_dataset(
    root: Path, charset: list[str], *, extend_dict: bool = False, cap: int = DEFAULT_CAP
) -> RecDataset:
    """Read and check ``root``; raise validate.DataError listing the problems, if any."""
    root = Path(root)
    problems = Problems(root, cap)
    if not root.is_dir():
        problems.add(root, None, "data folder not found")
        problems.raise_if_any()
    known = set(charset[1:])
    finder = ImageFinder()
    new_chars: list[str] = []
    splits: list[tuple[LineSample, ...]] = []
    for name in REC_SPLITS:
        label_file = root / name
        if name == "test.txt" and not label_file.exists():
            splits.append(())
            continue
        samples = []
        for number, line in read_lines(label_file, problems):
            sample = _rec_line(root, label_file, number, line, finder, problems)
            if sample is None:
                continue
            unknown = unknown_characters(sample.text, known)
            if unknown and not extend_dict:
                problems.add(
                    label_file,
                    number,
                    f"characters not in the model's dictionary: {describe_chars(unknown)} (--extend-dict adds them)",
                )
                continue
            new_chars += [c for c in unknown if c not in new_chars]
            samples.append(sample)
        if name == "train.txt" and not samples and label_file.exists() and not problems.total:
            problems.add(label_file, None, "no samples")
        splits.append(tuple(samples))
    problems.raise_if_any()
    return RecDataset(root, splits[0], splits[1], tuple(new_chars))


def _rec_line(
    root: Path, label_file: Path, number: int, line: str, finder: ImageFinder, problems: Problems
) -> LineSample | None:
    name, tab, text = line.partition("\t")
    if not tab:
        problems.add(label_file, number, "expected 'path<TAB>text'")
        return None
    if not text.strip():
        problems.add(label_file, number, f"empty text for {name!r}")
        return None
    if not check_relative(name, label_file, number, problems):
        return None
    path = finder.find(root, name)
    if path is None:
        problems.add(label_file, number, f"image {name!r} not found")
        return None
    try:
        read_image(path)
    except ImageError as exc:
        problems.add(label_file, number, f"image {name!r}: {exc.reason}")
        return None
    return LineSample(path, text)


# -- detection -----------------------------------------------------------------------------


def read_det_dataset(root: Path, cap: int = DEFAULT_CAP) -> DetDataset:
    """Read and check an ICDAR 2015-style folder; raise validate.DataError listing the problems."""
    root = Path(root)
    problems = Problems(root, cap)
    if not root.is_dir():
        problems.add(root, None, "data folder not found")
        problems.raise_if_any()
    finder = ImageFinder()
    splits: list[tuple[PageSample, ...]] = []
    for split in ("train", "test"):
        list_file = root / f"{split}_list.txt"
        if split == "test" and not list_file.exists():
            splits.append(())
            continue
        pages = []
        for number, name in read_lines(list_file, problems):
            page = _det_page(root, split, list_file, number, name.strip(), finder, problems)
            if page is not None:
                pages.append(page)
        if split == "train" and not pages and list_file.exists() and not problems.total:
            problems.add(list_file, None, "no images")
        splits.append(tuple(pages))
    problems.raise_if_any()
    return DetDataset(root, splits[0], splits[1])


def _det_page(
    root: Path, split: str, list_file: Path, number: int, name: str, finder: ImageFinder, problems: Problems
) -> PageSample | None:
    if not check_relative(name, list_file, number, problems):
        return None
    path = finder.find(root / f"{split}_images", name)
    if path is None:
        problems.add(list_file, number, f"image {name!r} not found in {split}_images/")
        return None
    stem = Path(name).stem
    gts = root / f"{split}_gts"
    candidates = [gts / f"gt_{stem}.txt", gts / f"{stem}.txt", gts / f"{name}.txt"]
    gt_file = next((c for c in candidates if c.is_file()), None)
    if gt_file is None:
        problems.add(list_file, number, f"no ground truth for {name!r} (looked for {split}_gts/gt_{stem}.txt)")
        return None
    try:
        h, w = read_image(path).shape[:2]
    except ImageError as exc:
        problems.add(list_file, number, f"image {name!r}: {exc.reason}")
        return None
    boxes = []
    for line_no, line in read_lines(gt_file, problems):
        box = parse_gt_line(line, gt_file, line_no, (w, h), problems)
        if box is not None:
            boxes.append(box)
    return PageSample(path, name, tuple(boxes), w, h)


def parse_gt_line(line: str, path: Path, number: int, size: tuple[int, int], problems: Problems) -> TextBox | None:
    """``x1,...,y4,text`` -> TextBox; a problem (and None) for anything malformed."""
    parts = line.split(",", 8)
    if len(parts) < 9:
        problems.add(path, number, f"expected x1,y1,x2,y2,x3,y3,x4,y4,text; got {len(parts)} field(s)")
        return None
    try:
        coords = [float(p) for p in parts[:8]]
    except ValueError:
        problems.add(path, number, "coordinates must be numbers")
        return None
    text = _gt_text(parts[8], path, number, problems)
    if text is None:
        return None
    points = np.array(coords, dtype=np.float32).reshape(4, 2)
    w, h = size
    xs, ys = points[:, 0], points[:, 1]
    if (
        xs.min() < -BOX_TOLERANCE
        or ys.min() < -BOX_TOLERANCE
        or xs.max() > w + BOX_TOLERANCE
        or ys.max() > h + BOX_TOLERANCE
    ):
        problems.add(path, number, f"box {coords} lies outside the {w}x{h} image")
        return None
    points[:, 0] = np.clip(xs, 0, w)
    points[:, 1] = np.clip(ys, 0, h)
    x, y = points[:, 0], points[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    if area < 1.0:
        problems.add(path, number, "box has no area")
        return None
    return TextBox(points, text, text == IGNORE_TEXT)


def _gt_text(field: str, path: Path, number: int, problems: Problems) -> str | None:
    if field.startswith('"'):
        try:
            values = next(csv.reader([field], strict=True))
        except csv.Error as exc:
            problems.add(path, number, f"badly quoted text ({exc})")
            return None
        if len(values) != 1:
            problems.add(path, number, "text after the closing quote; quote the whole text")
            return None
        return values[0]
    if "," in field:
        problems.add(path, number, f'text {field!r} contains a comma: quote it ("...", quotes inside doubled)')
        return None
    return field
