"""teamocr command line: help, folder expansion, JSONL rows, error rows and exit codes.

The engine here is a small fake built through the ``engine_factory`` parameter; the real
engine's end-to-end run is tested with the engine itself.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from config.settings import EngineSettings
from daemon.errors import EngineStartError
from daemon.offline.batch import expand_paths, run_ocr, split_threads
from daemon.offline.progress import ProgressBar
from engine.errors import ImageError, ModelError

REPO = Path(__file__).resolve().parents[2]


class FakePage:
    def __init__(self, text: str) -> None:
        self.text = text

    def to_dict(self) -> dict[str, Any]:
        line = {"text": self.text, "points": [[0, 0], [9, 0], [9, 9], [0, 9]], "confidence": 0.99}
        timings = {"decode": 0.0, "detect": 0.0, "recognize": 0.0, "total": 0.0}
        return {
            "lines": [line],
            "text": self.text,
            "width": 10,
            "height": 10,
            "timings": timings,
            "engine_version": "fake",
            "model_version": "fake",
        }


class FakeEngine:
    """Reads ``IMG<text>`` files; anything else is 'not an image'."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings

    def ocr(self, source: str, name: str | None = None) -> FakePage:
        data = Path(source).read_bytes()  # a missing file raises OSError, as the real one may
        if not data.startswith(b"IMG"):
            raise ImageError(name or str(source), "not an image")
        return FakePage(data[3:].decode("utf-8"))

    def ocr_many(self, sources: list[str], names: list[str | None] | None = None) -> list[Any]:
        out: list[Any] = []
        for source in sources:
            try:
                out.append(self.ocr(source))
            except Exception as exc:  # noqa: BLE001 - ocr_many returns each image's exception
                out.append(exc)
        return out


def fake_factory(settings: EngineSettings) -> FakeEngine:
    return FakeEngine(settings)


def broken_factory(settings: EngineSettings) -> FakeEngine:
    raise ModelError("weights not found")


def image(path: Path, text: str = "hello") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"IMG" + text.encode("utf-8"))
    return path


def rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("args", [["--help"], ["ocr", "--help"], ["run", "--help"]])
def test_help_of_each_command(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: teamocr")


def test_help_loads_no_engine() -> None:
    code = (
        "import sys\nfrom cli.main import main\n"
        "try:\n    main(['ocr', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m in ('torch', 'cv2', 'engine.pipeline')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]")


def test_expand_paths_walks_folders_sorted(tmp_path: Path) -> None:
    for name in ["b.png", "A.JPG", "sub/c.webp", "sub/deeper/d.TIFF", "x.gif", "y.bmp", "z.jpeg"]:
        image(tmp_path / "in" / name)
    image(tmp_path / "in" / "g.pdf")  # documents are walked too (read page by page)
    for name in [".hidden.png", ".cache/e.png", "notes.txt", "sub/._f.png", ".h.pdf"]:
        image(tmp_path / "in" / name)
    folder = str(tmp_path / "in")
    found = expand_paths([folder])
    relative = [p[len(folder) + 1 :] for p in found]
    expected = ["A.JPG", "b.png", "g.pdf", "sub/c.webp", "sub/deeper/d.TIFF", "x.gif", "y.bmp", "z.jpeg"]
    assert relative == expected
    assert all(p.startswith(folder) for p in found)


def test_expand_paths_keeps_files_as_given(tmp_path: Path) -> None:
    notes = image(tmp_path / "notes.txt")
    image(tmp_path / "dir" / "a.png")
    given = [str(notes), str(tmp_path / "missing.png"), str(tmp_path / "dir")]
    assert expand_paths(given) == [given[0], given[1], str(tmp_path / "dir" / "a.png")]


def test_run_ocr_writes_rows_in_order_with_error_rows(tmp_path: Path) -> None:
    good = image(tmp_path / "good.png", "发票 合计 12.50")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    missing = tmp_path / "missing.png"
    out = io.StringIO()
    failed = run_ocr([str(good), str(bad), str(missing)], out, engine_factory=fake_factory)
    assert failed == 2
    assert "发票" in out.getvalue()  # written as UTF-8 text, not \u escapes
    first, second, third = rows(out.getvalue())
    assert first["image"] == str(good) and first["text"] == "发票 合计 12.50"
    assert first["lines"][0]["confidence"] == 0.99 and first["seconds"] >= 0
    assert second["image"] == str(bad) and second["error"] == "not an image"
    assert sorted(second) == ["error", "image", "lines", "seconds"] and second["lines"] == []
    assert third["image"] == str(missing) and "No such file" in third["error"]


def test_run_ocr_with_worker_processes_keeps_input_order(tmp_path: Path) -> None:
    paths = [str(image(tmp_path / f"{i:02}.png", f"text {i}")) for i in range(6)]
    (tmp_path / "bad.png").write_bytes(b"nope")
    paths.insert(3, str(tmp_path / "bad.png"))
    out = io.StringIO()
    assert run_ocr(paths, out, workers=2, engine_factory=fake_factory) == 1
    assert [row["image"] for row in rows(out.getvalue())] == paths


@pytest.mark.timeout(120)
def test_worker_engine_failure_stops_the_run(tmp_path: Path) -> None:
    paths = [str(image(tmp_path / f"{i}.png")) for i in range(3)]
    with pytest.raises(EngineStartError, match="weights not found"):
        run_ocr(paths, io.StringIO(), workers=2, engine_factory=broken_factory)


def test_split_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert split_threads(EngineSettings(), 4).threads == 4
    assert split_threads(EngineSettings(threads=6), 4).threads == 1
    assert split_threads(EngineSettings(), 1).threads == 0


def test_main_ocr_exit_codes_and_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    image(tmp_path / "in" / "a.png", "first")
    image(tmp_path / "in" / "b.png", "second")
    assert main(["ocr", "in"], engine_factory=fake_factory) == 0
    found = rows(capsys.readouterr().out)
    expected = [("in/a.png", "first"), ("in/b.png", "second")]
    assert [(r["image"], r["text"]) for r in found] == expected

    (tmp_path / "in" / "c.png").write_bytes(b"garbage")
    assert main(["ocr", "in", "--jsonl", "out/rows.jsonl"], engine_factory=fake_factory) == 1
    assert capsys.readouterr().out == ""
    written = rows((tmp_path / "out" / "rows.jsonl").read_text(encoding="utf-8"))
    assert [r.get("error") for r in written] == [None, None, "not an image"]


def test_main_passes_overrides_to_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[EngineSettings] = []

    def factory(settings: EngineSettings) -> FakeEngine:
        seen.append(settings)
        return FakeEngine(settings)

    path = str(image(tmp_path / "a.png"))
    monkeypatch.setenv("TEAMOCR_ENGINE__DET_THRESH", "0.4")
    argv = ["ocr", path, "--jsonl", str(tmp_path / "o.jsonl"), "--model-set", "tiny", "--det-box-thresh", "0.6"]
    assert main(argv, engine_factory=factory) == 0
    assert (seen[0].model_set, seen[0].det_box_thresh, seen[0].det_thresh) == ("tiny", 0.6, 0.4)


def test_main_reports_bad_settings_and_engine_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(image(tmp_path / "a.png"))
    assert main(["ocr", path, "--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err
    assert main(["ocr", path, "--det-box-thresh", "3"], engine_factory=fake_factory) == 2
    assert "engine.det_box_thresh" in capsys.readouterr().err
    assert main(["ocr", path], engine_factory=broken_factory) == 2


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_tty() -> None:
    quiet, loud = io.StringIO(), FakeTty()
    for stream in (quiet, loud):
        bar = ProgressBar(4, stream)
        bar.update(2, 1)
        bar.close()
    assert quiet.getvalue() == ""
    assert loud.getvalue().startswith("\r[") and "2/4 failed 1" in loud.getvalue()
