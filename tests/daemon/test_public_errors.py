"""Errors as members see them: paths of the shared folder relative to it, other server paths by
their last name, everything else as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.records import ResultRecord, Status
from daemon.results.public import public_item, redact_paths

SHARE = Path("/srv/teamocr/share")

CASES = [
    ("x.png: its folder /srv/teamocr/share/sales is gone", "x.png: its folder sales is gone"),
    (
        "OSError: [Errno 5] Input/output error: '/srv/teamocr/share/sales/a b.png'",
        "OSError: [Errno 5] Input/output error: 'sales/a b.png'",
    ),
    ("its folder /srv/teamocr/share is not the one", "its folder the shared folder is not the one"),
    ("cannot load /root/.cache/teamocr/rec.onnx (truncated)", "cannot load rec.onnx (truncated)"),
    (
        "[Errno 13] Permission denied: '/srv/teamocr/data/teamocr.sqlite3'",
        "[Errno 13] Permission denied: 'teamocr.sqlite3'",
    ),
    ("/srv/teamocr/shared-other/x.png is elsewhere", "x.png is elsewhere"),
    (
        "see https://example.com/a/b and sales/x.png, 1/2 and and/or",
        "see https://example.com/a/b and sales/x.png, 1/2 and and/or",
    ),
    ("file is 300 bytes, over the limit of 200", "file is 300 bytes, over the limit of 200"),
    ("合计: /srv/teamocr/share/财务/发票.png 读不了", "合计: 财务/发票.png 读不了"),
]


@pytest.mark.parametrize("raw, shown", CASES)
def test_redact_paths(raw: str, shown: str) -> None:
    assert redact_paths(raw, SHARE) == shown


def test_public_item_redacts_only_the_error() -> None:
    rec = ResultRecord(
        id="r",
        md5="",
        path=f"{SHARE}/sales/x.png",
        filename="x.png",
        channel="sales",
        size=0,
        created_at=1.0,
        status=Status.FAILED,
        error=f"x.png: its folder {SHARE}/sales is gone",
    )
    item = public_item(rec, SHARE)
    assert item["error"] == "x.png: its folder sales is gone" and "path" not in item
    assert {k: v for k, v in item.items() if k != "error"} == {k: v for k, v in rec.to_public().items() if k != "error"}
