"""`teamocr corrections export`: corrected lines cut from their sources into a `train rec` set."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from cli.main import main
from daemon.offline.corrections import export_corrections, in_test_split
from daemon.records import ResultRecord
from daemon.results.store import STORE_NAME, SqliteStore
from daemon.results.teams import TeamMap
from tests.engine.trainkit import page


def _result(store: SqliteStore, shared: Path, rid: str, channel: str, texts: list[str]) -> list[dict]:
    folder = shared / channel
    folder.mkdir(parents=True, exist_ok=True)
    image, quads = page(texts)
    path = folder / f"{rid}.png"
    cv2.imwrite(str(path), image)
    lines = [{"text": t.upper(), "points": q.tolist(), "confidence": 0.9} for t, q in zip(texts, quads)]
    store.add_queued(
        ResultRecord(
            id=rid,
            md5=rid,
            path=str(path),
            filename=path.name,
            channel=channel,
            size=path.stat().st_size,
            created_at=1.0,
        )
    )
    store.complete(
        rid,
        width=image.shape[1],
        height=image.shape[0],
        lines=lines,
        text="",
        timings={},
        engine_version="e",
        model_version="m",
        finished_at=2.0,
    )
    return lines


@pytest.fixture()
def store_dir(tmp_path: Path) -> Path:
    data, shared = tmp_path / "data", tmp_path / "shared"
    store = SqliteStore(data / STORE_NAME)
    try:
        for i in range(6):
            _result(store, shared, f"r{i}", "finance" if i < 2 else "", ["hello world", "total 13.50"])
            store.correct(f"r{i}", 0, "wrong first", "alice", 3.0)
            store.correct(f"r{i}", 0, "hello world", "alice", 4.0)  # the latest text counts
        _result(store, shared, "gone", "", ["lost line"])
        store.correct("gone", 0, "lost line", "bob", 5.0)
        _result(store, shared, "plain", "", ["never corrected"])
    finally:
        store.close()
    (shared / "gone.png").unlink()
    return data


def test_export_writes_crops_and_a_deterministic_split(store_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    summary = export_corrections(store_dir / STORE_NAME, out, test_fraction=0.3)
    assert summary.train + summary.test == 6 and summary.images == 6
    assert summary.skipped == {"source image missing or unreadable": 1}
    train = (out / "train.txt").read_text(encoding="utf-8").splitlines()
    test = (out / "test.txt").read_text(encoding="utf-8").splitlines()
    assert summary.test >= 1 and len(train) == summary.train
    for row in train + test:
        name, text = row.split("\t")
        assert text == "hello world"
        crop = cv2.imread(str(out / name))
        assert crop is not None and crop.shape[1] > 3 * crop.shape[0]
    assert {r.split("\t")[0] for r in test} == {
        f"crops/r{i}_0.png" for i in range(6) if in_test_split(f"r{i}", 0.3)
    } or summary.test == 1
    again = export_corrections(store_dir / STORE_NAME, tmp_path / "again", test_fraction=0.3)
    assert (tmp_path / "again" / "test.txt").read_text() == (out / "test.txt").read_text()
    assert again.as_dict()["train"] == summary.train


def test_export_crop_reads_like_the_engine_cut_it(store_dir: Path, tmp_path: Path) -> None:
    from engine.training.rec import read_lines_text
    from engine.training.runtime import pretrained

    export_corrections(store_dir / STORE_NAME, tmp_path / "set", test_fraction=0.0)
    name = (tmp_path / "set" / "train.txt").read_text(encoding="utf-8").splitlines()[0].split("\t")[0]
    module, charset = pretrained("rec", "tiny")
    assert read_lines_text(module, charset, [cv2.imread(str(tmp_path / "set" / name))])[0][0] == "hello world"


def test_team_scope_and_cli(
    store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scope = TeamMap.from_spec("finance=accounting").scope_for("accounting", False)
    summary = export_corrections(store_dir / STORE_NAME, tmp_path / "acc", scope=scope, test_fraction=0.0)
    assert summary.train == 2 and summary.test == 0

    monkeypatch.setenv("TEAMOCR_DATA_DIR", str(store_dir))
    monkeypatch.setenv("TEAMOCR_TEAMS__CHANNELS", "finance=accounting")
    code = main(["corrections", "export", str(tmp_path / "cli"), "--team", "accounting"])
    assert code == 0
    # two images: the default fraction still puts one in the test split
    assert "1 training and 1 test lines from 2 image(s)" in capsys.readouterr().out
    assert len((tmp_path / "cli" / "train.txt").read_text().splitlines()) == 1
