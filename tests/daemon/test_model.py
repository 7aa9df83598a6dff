"""ResultRecord and Status: JSON items both ways, stored rows, bad input."""

from __future__ import annotations

import dataclasses
import json

import pytest

from daemon.records import FINAL_STATUSES, JSON_FIELDS, ResultRecord, Status, parse_status

LINE = {"text": "发票 Invoice", "points": [[0, 0], [40, 0], [40, 12], [0, 12]], "confidence": 0.97}


def done_record() -> ResultRecord:
    return ResultRecord(
        id="r1", md5="0" * 32, path="/shared/财务/发票.png", filename="发票.png", channel="财务",
        size=1234, created_at=1_700_000_000.5, status=Status.DONE, width=40, height=12,
        lines=[LINE], text="发票 Invoice", timings={"detect": 0.1, "total": 0.2},
        engine_version="1.0", model_version="ppocrv6-small", attempts=1,
        finished_at=1_700_000_001.25, uploader="li",
    )  # fmt: skip


def test_status_values_are_plain_strings() -> None:
    assert [s.value for s in Status] == ["queued", "processing", "done", "duplicate", "failed"]
    assert Status.DONE == "done" and str(Status.DONE) == "done"
    assert {Status.DONE, Status.FAILED, Status.DUPLICATE} == FINAL_STATUSES
    assert parse_status("failed") is Status.FAILED
    with pytest.raises(ValueError, match="unknown status 'finished'.*queued"):
        parse_status("finished")


def test_defaults_of_a_new_queued_record() -> None:
    rec = ResultRecord(id="a", md5="m", path="/s/a.png", filename="a.png", channel="", size=1,
                       created_at=1.0)  # fmt: skip
    assert rec.status is Status.QUEUED
    assert (rec.lines, rec.text, rec.timings, rec.attempts) == ([], "", {}, 0)
    assert rec.duplicate_of is None and rec.finished_at is None and rec.uploader is None


def test_to_item_is_json_ready_and_round_trips() -> None:
    rec = done_record()
    item = rec.to_item()
    assert item["id"] == "r1" and item["status"] == "done" and type(item["status"]) is str
    assert set(item) == {f.name for f in dataclasses.fields(ResultRecord)}
    wire = json.dumps(item, ensure_ascii=False)
    assert ResultRecord.from_item(json.loads(wire)) == rec


def test_to_item_is_a_copy() -> None:
    rec = done_record()
    rec.to_item()["lines"][0]["text"] = "changed"
    assert rec.lines[0]["text"] == "发票 Invoice"


def test_from_item_ignores_extra_keys_and_takes_string_status() -> None:
    item = {**done_record().to_item(), "type": "done", "status": "processing"}
    rec = ResultRecord.from_item(item)
    assert rec.status is Status.PROCESSING


def test_from_item_rejects_missing_fields_and_bad_status() -> None:
    item = done_record().to_item()
    del item["md5"]
    with pytest.raises(ValueError, match="not a result item"):
        ResultRecord.from_item(item)
    with pytest.raises(ValueError, match="unknown status"):
        ResultRecord.from_item({**done_record().to_item(), "status": "lost"})


def test_from_row_decodes_json_columns() -> None:
    rec = done_record()
    item = rec.to_item()
    row = {**item, "seq": 7, **{name: json.dumps(item[name]) for name in JSON_FIELDS}}
    assert ResultRecord.from_row(row) == rec
    empty = {**row, "lines": "", "timings": None}
    assert ResultRecord.from_row(empty).lines == [] and ResultRecord.from_row(empty).timings == {}


def test_records_are_frozen_and_keyword_only() -> None:
    rec = done_record()
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.status = Status.FAILED  # type: ignore[misc]
    with pytest.raises(TypeError):
        ResultRecord("a", "m", "/p", "p", "", 1, 1.0)  # type: ignore[misc]
