"""Training data checks: every problem is reported with its file and line, not just the first."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.training.data import read_det_dataset, read_rec_dataset
from engine.training.validate import DataError
from engine.weights import load_charset, model_files
from tests.engine.trainkit import write_det_set, write_rec_set


@pytest.fixture(scope="module")
def charset() -> list[str]:
    return load_charset(model_files("tiny").charset)


def test_a_clean_det_set_reads(tmp_path: Path) -> None:
    root = write_det_set(tmp_path, {"a.png": ["hello", "world"]}, {"b.png": ["test"]})
    gt = root / "train_gts" / "gt_a.txt"
    gt.write_text("\ufeff" + gt.read_text() + '1,1,20,1,20,9,1,9,"1,000"\n1,1,5,1,5,5,1,5,###\n')
    data = read_det_dataset(root)
    assert [b.text for b in data.train[0].boxes] == ["hello", "world", "1,000", "###"]
    assert [b.ignore for b in data.train[0].boxes] == [False, False, False, True]
    assert data.test[0].boxes[0].points.shape == (4, 2)


def test_every_det_problem_is_named(tmp_path: Path) -> None:
    root = write_det_set(tmp_path, {"a.png": ["hello"], "b.png": ["x"], "c.jpg": ["y"]})
    cv2.imwrite(str(root / "train_images" / "c.JPG"), np.full((64, 64, 3), 255, np.uint8))
    (root / "train_images" / "c.jpg").unlink(missing_ok=True)
    (root / "train_gts" / "gt_a.txt").write_text(
        "1,1,50,1,50,20,1,20,one, two\n"  # 1: unquoted comma
        "\n"  # 2: blank
        "1,1,5000,1,5000,20,1,20,far\n"  # 3: outside the 320x256 page
        "1,1,50,1,50,20,1,20\n"  # 4: no text field
        "a,1,50,1,50,20,1,20,x\n",  # 5: not a number
        encoding="utf-8",
    )
    (root / "train_list.txt").write_text("a.png\nsub\\b.png\nmissing.png\nc.jpg\n\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_det_dataset(root)
    text = str(err.value)
    gt, lst = root / "train_gts" / "gt_a.txt", root / "train_list.txt"
    for expected in (
        f"{gt}:1: text 'one, two' contains a comma",
        f"{gt}:2: blank line",
        f"{gt}:3: box",
        "lies outside the 320x256 image",
        f"{gt}:4: expected x1,y1",
        f"{gt}:5: coordinates must be numbers",
        f"{lst}:2: backslash in image path",
        f"{lst}:3: image 'missing.png' not found",
        f"{lst}:5: blank line",
    ):
        assert expected in text
    assert "c.jpg" not in text  # found as c.JPG
    assert err.value.total == 8


def test_problem_list_is_capped(tmp_path: Path, charset: list[str]) -> None:
    root = tmp_path / "rec"
    root.mkdir()
    (root / "train.txt").write_text("".join(f"nope{i}.png\thi\n" for i in range(30)), encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_rec_dataset(root, charset, cap=5)
    assert err.value.total == 30 and len(err.value.problems) == 5
    assert "... and 25 more" in str(err.value)


def test_rec_problems_and_extension_variants(tmp_path: Path, charset: list[str]) -> None:
    root = write_rec_set(tmp_path / "rec", ["hello", "world"])
    (root / "crops" / "00.png").rename(root / "crops" / "00.PNG")
    (root / "train.txt").write_text(
        "crops/00.png\thello\n"  # found as 00.PNG
        "crops\\01.png\tworld\n"  # backslash
        "crops/01.png\n"  # no tab
        "crops/01.png\t \n"  # empty text
        "/etc/passwd\tx\n",  # absolute
        encoding="utf-8",
    )
    with pytest.raises(DataError) as err:
        read_rec_dataset(root, charset)
    text = str(err.value)
    train = root / "train.txt"
    assert f"{train}:2: backslash" in text and f"{train}:3: expected 'path<TAB>text'" in text
    assert f"{train}:4: empty text" in text and f"{train}:5: image path '/etc/passwd' must be relative" in text
    assert f"{train}:1:" not in text
