"""Hot model swap: `teamocr model use` switches running workers between jobs, losing none.

The first test is end to end: a real `teamocr worker` process on a real (embedded) Redis reads a
stream of real jobs; the current version is switched half-way; every job is done exactly once
and the results' model_version goes from the packaged small set to a registered version.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest
import redis

from config.settings import EngineSettings
from daemon.intake.dedupe import Intake
from daemon.queue.streams import JOBS, WORKERS_GROUP
from daemon.versions.operations import add_from_onnx
from daemon.versions.registry import MANIFEST, ModelRegistry, use_version
from daemon.worker.hotswap import SwappingEngine
from engine.weights import model_files
from tests.daemon.servicekit import (
    REPO,
    embedded_redis,
    make_settings,
    records,
    start_logged_worker,
    stop_process,
    text_image,
)
from tests.polling import wait_until

JOBS_TOTAL = 24
PAGE = REPO / "tests" / "images" / "golden_en.png"


def done_records(client: redis.Redis) -> list[dict[str, object]]:
    return [r for r in records(client) if r["type"] in ("done", "failed")]


def test_worker_switches_model_mid_stream_without_losing_a_job(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    registry = ModelRegistry.for_data_dir(settings.data_dir)
    tiny = model_files("tiny")
    add_from_onnx(registry, "PP-OCRv6-tiny", {"det": tiny.det, "rec": tiny.rec}, [], name="tiny-b")
    with embedded_redis(settings.data_dir) as handle:
        client = handle.client
        intake = Intake(client, settings.engine.max_file_bytes)
        ids = []
        for i in range(JOBS_TOTAL):
            path = text_image(settings.shared_dir / f"swap{i:02d}.png", f"Invoice {i} total {i * 7}", seed=i)
            queued = intake.submit(path, "")
            assert queued is not None
            ids.append(queued["id"])
        proc, log = start_logged_worker(settings, handle.url)
        try:
            wait_until(lambda: len(done_records(client)) >= 4, 180, "the first results")
            use_version(client, registry, "tiny-b")
            wait_until(lambda: len(done_records(client)) >= JOBS_TOTAL, 240, "every result")
            wait_until(lambda: log.has("model PP-OCRv6-small -> tiny-b"), 60, "the swap in the worker's log")
        finally:
            stop_process(proc)
        finished = done_records(client)
        assert all(r["type"] == "done" for r in finished), [r.get("error") for r in finished]
        assert Counter(r["id"] for r in finished) == Counter(ids)  # each job exactly once
        assert int(client.xpending(JOBS, WORKERS_GROUP)["pending"]) == 0
        versions = [r["model_version"] for r in finished]
        switch = versions.index("tiny-b")
        assert switch >= 1 and set(versions[:switch]) == {"PP-OCRv6-small"}
        assert set(versions[switch:]) == {"tiny-b"}, versions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_version_that_fails_to_load_keeps_the_old_engine(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    registry = ModelRegistry.for_data_dir(tmp_path / "data")
    broken = registry.root / "broken"
    broken.mkdir(parents=True)
    for name in ("det.onnx", "rec.onnx", "charset.txt"):
        (broken / name).write_text("not a model", encoding="utf-8")
    manifest = {
        "version": "broken",
        "model_set": "tiny",
        "created_at": 1.0,
        "change": "import onnx",
        "det": "det.onnx",
        "rec": "rec.onnx",
        "charset": "charset.txt",
    }
    (broken / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    clock = Clock()
    with embedded_redis(tmp_path / "data") as handle:
        engine = SwappingEngine(
            handle.client,
            registry,
            EngineSettings(model_set="tiny", threads=1, backend="onnxruntime"),
            "w1",
            check_seconds=1.0,
            clock=clock,
        )
        assert engine.model_version == "PP-OCRv6-tiny"
        use_version(handle.client, registry, "broken")
        clock.now += 0.5  # not yet due: no look at Redis
        assert engine.ocr(str(PAGE)).model_version == "PP-OCRv6-tiny"
        clock.now += 1.0
        with caplog.at_level(logging.ERROR, logger="daemon.worker.hotswap"):
            page = engine.ocr(str(PAGE))
        assert page.model_version == "PP-OCRv6-tiny" and page.lines
        assert "cannot switch model PP-OCRv6-tiny -> broken" in caplog.text
        handle.client.set("teamocr:model:current", "PP-OCRv6-tiny")  # back to the running version
        clock.now += 1.0
        assert engine.ocr_many([str(PAGE)])[0].model_version == "PP-OCRv6-tiny"
