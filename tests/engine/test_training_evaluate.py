"""Our accuracy metric: groups, reading order, ignored regions, whitespace and case."""

from __future__ import annotations

from engine.training.evaluate import edit_distance, score_label, score_lines


def box(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def test_edit_distance() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("same", "same") == 0


def test_one_box_over_two_cells_and_two_boxes_over_one_line_are_groups() -> None:
    truth = [
        {"text": "Total", "points": box(0, 0, 50, 10)},
        {"text": "13.50", "points": box(60, 0, 110, 10)},
        {"text": "second line", "points": box(0, 20, 110, 30)},
    ]
    preds = [
        {"text": "Total 13.50", "points": box(0, 0, 110, 10)},
        {"text": "second", "points": box(0, 20, 55, 30)},
        {"text": "line", "points": box(56, 20, 110, 30)},
    ]
    tally = score_lines(truth, preds)
    assert (tally.edits, tally.chars, tally.groups, tally.exact) == (0, 20, 2, 2)


def test_misses_extras_ignores_and_casefold() -> None:
    truth = [{"text": "abc", "points": box(0, 0, 30, 10)}, {"text": "###", "points": box(0, 50, 30, 60)}]
    preds = [{"text": "xyz", "points": box(0, 50, 30, 60)}, {"text": "zz", "points": box(200, 200, 220, 210)}]
    tally = score_lines(truth, preds)
    assert (tally.edits, tally.chars) == (3 + 2, 3)  # "abc" missed, "zz" inserted, "xyz" ignored
    assert tally.metrics()["accuracy"] == 0.0
    label = {"lines": [{"text": "ABC", "points": box(0, 0, 30, 10)}], "casefold": True}
    assert score_label(label, {"lines": [{"text": "a b c", "points": box(0, 0, 30, 10)}]}).edits == 0
    assert score_label({"page_text": "hello world"}, None).edits == 10
