"""Model versions: the registry, adding versions from checkpoints and ONNX files, `model use`,
and the `export onnx` / `model` commands. Real files, real models ("tiny"), real Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
import torch

from cli import main as cli
from config.settings import EngineSettings
from daemon.versions.operations import add_from_checkpoints, add_from_onnx
from daemon.versions.registry import CURRENT_KEY, ModelRegistry, ModelVersionError, current_version, use_version
from engine.models.recognizer import REC_SPECS, TextRecognizer
from engine.pipeline import build_engine
from engine.training.checkpoint import save_checkpoint
from engine.weights import load_charset, model_files, torch_modules
from tests.daemon.servicekit import REPO, embedded_redis

PAGE = REPO / "tests" / "images" / "golden_en.png"
NEW_CHAR = "\u2603"  # a label the packaged dictionary lacks


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry.for_data_dir(tmp_path / "data")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[redis.Redis]:
    with embedded_redis(tmp_path / "data") as handle:
        yield handle.client


@pytest.fixture(scope="module")
def extended_rec_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged tiny recogniser with one more label (as training with --extend-dict makes):
    the new class can never win, so it must read exactly like the packaged one."""
    files = model_files("tiny")
    _, rec = torch_modules(files)
    labels = load_charset(files.charset)
    grown = TextRecognizer(replace(REC_SPECS["tiny"], classes=len(labels) + 1))
    state = rec.state_dict()
    w, b = state["head.weight"], state["head.bias"]
    state["head.weight"] = torch.cat([w[:-1], torch.zeros(1, w.shape[1]), w[-1:]])
    state["head.bias"] = torch.cat([b[:-1], torch.full((1,), -50.0), b[-1:]])
    grown.load_state_dict(state)
    path = tmp_path_factory.mktemp("ckpt") / "rec.pt"
    save_checkpoint(
        path,
        kind="rec",
        model_set="tiny",
        module=grown,
        charset=[*labels[:-1], NEW_CHAR, " "],
        meta={"metrics": {"val_accuracy": 0.97}},
    )
    return path


def texts(engine: object) -> list[str]:
    return [line.text for line in engine.ocr(str(PAGE)).lines]  # type: ignore[attr-defined]


def unspaced(lines: list[str]) -> list[str]:
    return ["".join(line.split()) for line in lines]


def test_packaged_sets_are_versions(registry: ModelRegistry) -> None:
    versions = registry.list()
    assert [v.version for v in versions] == ["PP-OCRv6-small", "PP-OCRv6-tiny"]
    assert all(v.builtin and v.change == "packaged" for v in versions)
    assert registry.files("PP-OCRv6-tiny") == model_files("tiny")


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "x" * 65, "sp ace", "../up"])
def test_bad_version_names_are_refused(registry: ModelRegistry, name: str) -> None:
    with pytest.raises(ModelVersionError, match="bad version name"):
        registry.stage(name)


def test_unknown_version_names_the_known_ones(registry: ModelRegistry) -> None:
    with pytest.raises(ModelVersionError, match="unknown model version 'v9'.*PP-OCRv6-small"):
        registry.get("v9")


def test_add_from_a_checkpoint_with_an_extended_charset(
    registry: ModelRegistry, extended_rec_checkpoint: Path, tmp_path: Path
) -> None:
    added = add_from_checkpoints(
        registry, "PP-OCRv6-tiny", {"rec": extended_rec_checkpoint}, [PAGE], name="tiny-ft1", note="first fine-tune"
    )
    version = added.version
    assert (version.version, version.parent, version.change) == ("tiny-ft1", "PP-OCRv6-tiny", "fine-tune rec")
    assert version.metrics["rec"] == {"val_accuracy": 0.97}
    assert added.parity["rec"]["same_text"] and added.parity["rec"]["max_abs_diff"] < 1e-3
    folder = registry.root / "tiny-ft1"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["rec_checkpoint"] == "rec.pt" and manifest["det_checkpoint"] is None
    assert (folder / "charset.txt").read_text(encoding="utf-8").splitlines()[-1] == NEW_CHAR
    assert not list(registry.root.glob(".*"))  # no staging folder left behind
    assert registry.names()[-1] == "tiny-ft1"

    # the version runs on both backends and reads like the packaged set; results carry its name.
    # Float on both: the grown head must change nothing, exactly (INT8 reads differently by design).
    files = registry.files("tiny-ft1")
    settings = EngineSettings(model_set="tiny", threads=1, int8=False, cache_dir=str(tmp_path / "cache"))
    packaged = texts(build_engine(replace(settings, backend="onnxruntime")))
    for backend in ("onnxruntime", "torch"):
        engine = build_engine(replace(settings, backend=backend), files)
        assert engine.model_version == "tiny-ft1"
        assert texts(engine) == packaged
        assert engine.ocr(str(PAGE)).to_dict()["model_version"] == "tiny-ft1"
    # the CPU default, INT8: the version's own graph quantises, and reads like the packaged set's
    # INT8 but for spaces (two graphs of the same float network, quantised apart, differ at the margins)
    int8 = replace(settings, backend="onnxruntime", int8=True)
    engine = build_engine(int8, files)
    assert engine.backend == "onnxruntime-int8" and engine.model_version == "tiny-ft1"
    assert unspaced(texts(engine)) == unspaced(texts(build_engine(int8)))

    with pytest.raises(ModelVersionError, match="exists already"):
        add_from_checkpoints(registry, "PP-OCRv6-tiny", {"rec": extended_rec_checkpoint}, [PAGE], name="tiny-ft1")


def test_a_checkpoint_of_another_model_set_is_refused(registry: ModelRegistry, extended_rec_checkpoint: Path) -> None:
    with pytest.raises(ModelVersionError, match="a tiny rec network; the base PP-OCRv6-small is small"):
        add_from_checkpoints(registry, "PP-OCRv6-small", {"rec": extended_rec_checkpoint}, [PAGE])
    with pytest.raises(ModelVersionError, match="a rec checkpoint, given as the det network"):
        add_from_checkpoints(registry, "PP-OCRv6-tiny", {"det": extended_rec_checkpoint}, [PAGE])
    assert registry.names() == ["PP-OCRv6-small", "PP-OCRv6-tiny"]


def test_add_from_onnx_and_a_broken_graph(registry: ModelRegistry, tmp_path: Path) -> None:
    tiny = model_files("tiny")
    added = add_from_onnx(registry, "PP-OCRv6-tiny", {"rec": tiny.rec}, [PAGE], name="tiny-copy")
    assert added.version.change == "import onnx rec" and added.parity["smoke"]["lines"] > 0
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a graph")
    with pytest.raises(ModelVersionError, match="do not run"):
        add_from_onnx(registry, "PP-OCRv6-tiny", {"det": broken}, [PAGE], name="tiny-broken")
    assert registry.names() == ["PP-OCRv6-small", "PP-OCRv6-tiny", "tiny-copy"]


def test_use_sets_the_current_version(registry: ModelRegistry, client: redis.Redis) -> None:
    assert current_version(client, "small") == "PP-OCRv6-small"
    use_version(client, registry, "PP-OCRv6-tiny")
    assert client.get(CURRENT_KEY) == "PP-OCRv6-tiny"
    with pytest.raises(ModelVersionError, match="unknown model version"):
        use_version(client, registry, "nope")
    assert current_version(client, "small") == "PP-OCRv6-tiny"


def test_commands(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    extended_rec_checkpoint: Path,
) -> None:
    monkeypatch.setenv("TEAMOCR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TEAMOCR_SHARED_DIR", str(tmp_path / "share"))
    monkeypatch.setenv("TEAMOCR_ENGINE__THREADS", "1")

    assert cli.main(["export", "onnx", str(tmp_path / "out"), "--det-size", "640x600"]) == 2
    assert "width 600 must be a multiple of 32" in caplog.text
    assert (
        cli.main(["export", "onnx", str(tmp_path / "out"), "--from", str(extended_rec_checkpoint), "--kind", "det"])
        == 2
    )
    assert "a rec checkpoint, but --kind det" in caplog.text

    assert (
        cli.main(
            ["export", "onnx", str(tmp_path / "out"), "--from", str(extended_rec_checkpoint), "--images", str(PAGE)]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["parity"]) == ["rec"] and report["parity"]["rec"]["same_text"]
    assert (tmp_path / "out" / "rec.onnx").is_file() and (tmp_path / "out" / "parity.json").is_file()

    assert (
        cli.main(
            [
                "model",
                "add",
                "--rec-onnx",
                str(tmp_path / "out" / "rec.onnx"),
                "--charset",
                str(tmp_path / "out" / "charset.txt"),
                "--base",
                "PP-OCRv6-tiny",
                "--name",
                "v2",
                "--images",
                str(PAGE),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["version"]["parent"] == "PP-OCRv6-tiny"
    assert cli.main(["model", "use", "v2"]) == 0
    assert json.loads(capsys.readouterr().out) == {"current": "v2"}
    assert cli.main(["model", "use", "v3"]) == 2
    assert "unknown model version 'v3'" in caplog.text
    assert cli.main(["model", "list"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["current"] == "v2" and [v["version"] for v in listing["versions"]][-1] == "v2"


def test_use_joins_a_running_embedded_redis_and_leaves_it_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEAMOCR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TEAMOCR_SHARED_DIR", str(tmp_path / "share"))
    monkeypatch.delenv("TEAMOCR_REDIS_URL", raising=False)
    with embedded_redis(tmp_path / "data") as daemon_redis:  # what `teamocr run` holds
        assert cli.main(["model", "use", "PP-OCRv6-tiny"]) == 0
        assert daemon_redis.client.ping() and daemon_redis.client.get(CURRENT_KEY) == "PP-OCRv6-tiny"
        assert cli.main(["model", "list"]) == 0
        assert daemon_redis.client.ping()
    capsys.readouterr()
    assert cli.main(["model", "use", "PP-OCRv6-small"]) == 0  # no server running: one is started and stopped
    assert json.loads(capsys.readouterr().out) == {"current": "PP-OCRv6-small"}
