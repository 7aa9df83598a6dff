"""Which team owns a model version: recorded in its manifest when it is made, and what each reader
may see (packaged: everyone; a team's: that team; no team: operators). Real files, real models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import main as cli
from daemon.versions.operations import add_from_onnx
from daemon.versions.registry import MANIFEST, ModelRegistry, ModelVersionError
from engine.weights import model_files
from tests.daemon.servicekit import REPO

PAGE = REPO / "tests" / "images" / "golden_en.png"


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    registry = ModelRegistry.for_data_dir(tmp_path / "data")
    tiny = model_files("tiny")
    for name, team in (("alpha-v1", "alpha"), ("beta-v1", "beta"), ("ops-v1", None)):
        add_from_onnx(registry, "PP-OCRv6-tiny", {"rec": tiny.rec}, [], name=name, team=team)
    return registry


def test_the_owner_is_in_the_manifest_and_decides_who_sees_it(registry: ModelRegistry) -> None:
    manifest = json.loads((registry.root / "beta-v1" / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["team"] == "beta"
    assert json.loads((registry.root / "ops-v1" / MANIFEST).read_text(encoding="utf-8"))["team"] is None
    packaged = ["PP-OCRv6-small", "PP-OCRv6-tiny"]
    assert registry.names("alpha") == [*packaged, "alpha-v1"]
    assert registry.names("beta") == [*packaged, "beta-v1"]
    assert registry.names("gamma") == packaged
    assert registry.names() == [*packaged, "alpha-v1", "beta-v1", "ops-v1"]  # operators: all
    assert registry.get("beta-v1", "beta").team == "beta"
    assert registry.get("PP-OCRv6-tiny", "alpha").builtin


def test_another_teams_version_is_as_unknown_as_a_missing_one(registry: ModelRegistry) -> None:
    with pytest.raises(ModelVersionError) as missing:
        registry.get("nope", "alpha")
    with pytest.raises(ModelVersionError) as other:
        registry.get("beta-v1", "alpha")
    assert str(other.value) == str(missing.value).replace("'nope'", "'beta-v1'")
    assert "beta-v1" not in str(missing.value) and "ops-v1" not in str(missing.value)
    with pytest.raises(ModelVersionError, match="unknown model version 'ops-v1'"):
        registry.get("ops-v1", "alpha")


def test_a_manifest_written_before_owners_were_recorded_is_the_operators(registry: ModelRegistry) -> None:
    path = registry.root / "alpha-v1" / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    del manifest["team"]
    path.write_text(json.dumps(manifest), encoding="utf-8")
    assert registry.get("alpha-v1").team is None
    assert "alpha-v1" not in registry.names("alpha") and "alpha-v1" in registry.names()


def test_model_add_records_the_team_given(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TEAMOCR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TEAMOCR_SHARED_DIR", str(tmp_path / "share"))
    monkeypatch.setenv("TEAMOCR_ENGINE__THREADS", "1")
    tiny = model_files("tiny")
    add = ["model", "add", "--rec-onnx", str(tiny.rec), "--base", "PP-OCRv6-tiny", "--images", str(PAGE)]
    assert cli.main([*add, "--name", "sales-v1", "--team", "sales"]) == 0
    assert json.loads(capsys.readouterr().out)["version"]["team"] == "sales"
    assert cli.main([*add, "--name", "mine"]) == 0
    assert json.loads(capsys.readouterr().out)["version"]["team"] is None
    assert cli.main([*add, "--name", "bad", "--team", "no such team"]) == 2
    assert "bad team name 'no such team'" in caplog.text
    registry = ModelRegistry.for_data_dir(tmp_path / "data")
    assert registry.names("sales")[-1] == "sales-v1" and "bad" not in registry.names()
