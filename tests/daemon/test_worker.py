"""Worker.run_once against real streams in an embedded Redis, with the real engine and real files.

Jobs come from the real intake, so each test starts with the records and the job exactly as the
daemon writes them. Retries use the worker's injected clock, so a backoff is proven by the job
staying in the delayed set until the clock passes its due time, without waiting for it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import redis

from config.settings import DaemonSettings, EngineSettings
from daemon.intake.dedupe import Intake
from daemon.queue.streams import DELAYED, HEARTBEATS, JOBS, WORKERS_GROUP, Job
from daemon.worker.loop import Worker
from daemon.worker.outputs import OutputWriter
from engine.pipeline import OcrEngine, build_engine
from engine.types import PageResult
from tests.daemon.servicekit import embedded_redis, records, text_image
from tests.polling import wait_until

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

MAX_BYTES = 50 * 1024 * 1024
BLOCK_MS = 20  # run_once waits this long for new jobs (0 would block forever)


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return build_engine(EngineSettings(threads=1))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[redis.Redis]:
    with embedded_redis(tmp_path / "data") as handle:
        yield handle.client


class Clock:
    """The worker's clock, moved on by the test."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FlakyEngine:
    """Stand-in for the engine at the worker's boundary: raises RuntimeError ``failures`` times
    (a passing hiccup, not a bad image), then reads with the real engine."""

    def __init__(self, real: OcrEngine | None, failures: int) -> None:
        self.real = real
        self.failures = failures
        self.calls = 0
        self.model_version = real.model_version if real is not None else "none"

    def ocr(self, source: str, name: str | None = None) -> PageResult:
        self.calls += 1
        if self.real is None or self.calls <= self.failures:
            raise RuntimeError(f"engine hiccup {self.calls}")
        return self.real.ocr(source, name=name)

    def ocr_many(self, sources: list[Any], names: list[str | None] | None = None) -> list[Any]:
        out: list[Any] = []
        for source, name in zip(sources, names or [None] * len(sources)):
            try:
                out.append(self.ocr(source, name=name))
            except Exception as exc:  # noqa: BLE001 - ocr_many returns each image's exception
                out.append(exc)
        return out


class BatchLog:
    """The real engine, noting how many images each ocr_many call got."""

    def __init__(self, real: OcrEngine) -> None:
        self.real = real
        self.model_version = real.model_version
        self.batches: list[int] = []

    def ocr(self, source: Any, name: str | None = None) -> PageResult:
        return self.real.ocr(source, name=name)

    def ocr_many(self, sources: list[Any], names: list[str | None] | None = None) -> list[Any]:
        self.batches.append(len(sources))
        return self.real.ocr_many(sources, names)

    def __getattr__(self, name: str) -> Any:  # documents: open_document, read_document as the real one
        return getattr(self.real, name)


def submit(client: redis.Redis, path: Path) -> str:
    queued = Intake(client, MAX_BYTES).submit(path, "")
    assert queued is not None and queued["type"] == "queued"
    return str(queued["id"])


def pending(client: redis.Redis) -> int:
    return int(client.xpending(JOBS, WORKERS_GROUP)["pending"])


def kinds(client: redis.Redis, rid: str) -> list[str]:
    return [r["type"] for r in records(client) if r["id"] == rid]


def test_a_real_image_is_read_recorded_in_order_and_acked(
    client: redis.Redis, engine: OcrEngine, tmp_path: Path
) -> None:
    rid = submit(client, text_image(tmp_path / "share" / "invoice.png", "Invoice 1043 paid"))
    worker = Worker(client, engine, DaemonSettings(batch_size=2), "w1")
    assert worker.run_once(BLOCK_MS) == 1
    assert kinds(client, rid) == ["queued", "processing", "done"]
    processing, done = [r for r in records(client) if r["id"] == rid][1:]
    assert processing["attempts"] == 1 and processing["worker"] == "w1"
    assert done["attempts"] == 1 and (done["width"], done["height"]) == (720, 160)
    assert "invoice 1043" in done["text"].lower()
    assert done["lines"] and all({"text", "points", "confidence"} <= set(line) for line in done["lines"])
    assert done["model_version"] == engine.model_version and done["finished_at"] > 0
    assert pending(client) == 0
    assert client.hexists(HEARTBEATS, "w1")
    assert worker.run_once(BLOCK_MS) == 0  # nothing left: acked, not redelivered


def test_a_corrupt_file_fails_at_once_with_its_cause(client: redis.Redis, engine: OcrEngine, tmp_path: Path) -> None:
    bad = tmp_path / "share" / "broken.png"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not an image at all")
    rid = submit(client, bad)
    worker = Worker(client, engine, DaemonSettings(max_attempts=3), "w1")
    assert worker.run_once(BLOCK_MS) == 1
    assert kinds(client, rid) == ["queued", "processing", "failed"]
    failed = records(client)[-1]
    assert "not a supported image" in failed["error"]
    assert failed["attempts"] == 1
    assert client.zcard(DELAYED) == 0 and pending(client) == 0


def test_jobs_in_hand_are_read_as_one_batch_and_a_bad_one_fails_alone(
    client: redis.Redis, engine: OcrEngine, tmp_path: Path
) -> None:
    share = tmp_path / "share"
    good1 = submit(client, text_image(share / "a.png", "Invoice 1043 paid"))
    bad = share / "broken.png"
    bad.write_bytes(b"this is not an image at all")
    broken = submit(client, bad)
    good2 = submit(client, text_image(share / "b.png", "Quarterly report", seed=1))
    logged = BatchLog(engine)
    worker = Worker(client, logged, DaemonSettings(batch_size=4), "w1")
    assert worker.run_once(BLOCK_MS) == 3
    assert logged.batches == [3]  # the file that is not an image is refused by the engine, in the batch
    assert kinds(client, good1) == kinds(client, good2) == ["queued", "processing", "done"]
    assert kinds(client, broken) == ["queued", "processing", "failed"]
    done = {r["id"]: r for r in records(client) if r["type"] == "done"}
    assert "invoice 1043" in done[good1]["text"].lower() and "quarterly report" in done[good2]["text"].lower()
    assert done[good1]["text"] == engine.ocr(share / "a.png").text
    assert "not a supported image" in [r for r in records(client) if r["id"] == broken][-1]["error"]
    assert pending(client) == 0 and client.zcard(DELAYED) == 0


def test_a_pdf_is_read_whole_beside_images_and_a_bad_pdf_fails_with_its_cause(
    client: redis.Redis, engine: OcrEngine, tmp_path: Path
) -> None:
    """A two-page PDF (a born-digital page, a scan) is one result: its lines carry their page, its
    text has a page break, its pages their sizes; an image in the same batch is read as before."""
    from engine.types import PAGE_BREAK
    from tests.engine.docmakers import encrypted_pdf, mixed_pdf

    share = tmp_path / "share"
    image = submit(client, text_image(share / "a.png", "Invoice 1043 paid"))
    (share / "report.pdf").write_bytes(mixed_pdf())
    document = submit(client, share / "report.pdf")
    (share / "locked.pdf").write_bytes(encrypted_pdf())
    locked = submit(client, share / "locked.pdf")
    logged = BatchLog(engine)
    worker = Worker(client, logged, DaemonSettings(batch_size=4), "w1")
    assert worker.run_once(BLOCK_MS) == 3
    assert logged.batches == [1]  # the image alone went through ocr_many; the PDFs were read whole
    done = {r["id"]: r for r in records(client) if r["type"] == "done"}
    assert "invoice 1043" in done[image]["text"].lower() and "page_count" not in done[image]
    pdf = done[document]
    assert pdf["page_count"] == 2 and [p["page"] for p in pdf["pages"]] == [1, 2]
    assert {line["page"] for line in pdf["lines"]} == {1, 2}
    assert {line["source"] for line in pdf["lines"] if line["page"] == 1} == {"pdf"}
    first, second = pdf["text"].split(PAGE_BREAK)
    assert "Quarterly report 2026" in first and "Quarterly report 2026" in second  # the scan says it too
    assert kinds(client, locked) == ["queued", "processing", "failed"]
    assert "encrypted (password-protected) PDF" in [r for r in records(client) if r["id"] == locked][-1]["error"]


def test_a_batch_the_engine_cannot_run_is_retried_job_by_job(client: redis.Redis, tmp_path: Path) -> None:
    class Broken:
        model_version = "none"

        def ocr(self, source: Any, name: str | None = None) -> PageResult:
            raise AssertionError("the worker reads batches")

        def ocr_many(self, sources: list[Any], names: list[str | None] | None = None) -> list[Any]:
            raise RuntimeError("device lost")

    ids = [submit(client, text_image(tmp_path / "share" / f"{n}.png", "Meeting at noon", seed=n)) for n in range(2)]
    worker = Worker(client, Broken(), DaemonSettings(batch_size=4, max_attempts=2), "w1", clock=Clock())
    assert worker.run_once(BLOCK_MS) == 2
    assert all(kinds(client, rid) == ["queued", "processing", "queued"] for rid in ids)
    assert client.zcard(DELAYED) == 2 and pending(client) == 0


def test_an_engine_error_is_retried_with_backoff_then_done(
    client: redis.Redis, engine: OcrEngine, tmp_path: Path
) -> None:
    rid = submit(client, text_image(tmp_path / "share" / "report.png", "Quarterly report"))
    clock = Clock()
    flaky = FlakyEngine(engine, failures=2)
    worker = Worker(client, flaky, DaemonSettings(max_attempts=3, retry_backoff=5.0), "w1", clock=clock)

    def delayed() -> list[tuple[Job, float]]:
        return [(Job.from_json(m), s) for m, s in client.zrange(DELAYED, 0, -1, withscores=True)]

    assert worker.run_once(BLOCK_MS) == 1  # attempt 1 fails: parked for 5 s
    [(job, due)] = delayed()
    assert job.id == rid and job.attempt == 1 and due == clock.now + 5.0
    assert pending(client) == 0  # the stream entry is acked; the retry lives in the delayed set
    clock.now += 4.9
    assert worker.run_once(BLOCK_MS) == 0 and len(delayed()) == 1  # not due yet
    clock.now += 0.1
    assert worker.run_once(BLOCK_MS) == 1  # attempt 2 fails: parked for 10 s (doubled)
    [(job, due)] = delayed()
    assert job.attempt == 2 and due == clock.now + 10.0
    clock.now += 10.0
    assert worker.run_once(BLOCK_MS) == 1  # attempt 3 succeeds
    assert flaky.calls == 3
    assert kinds(client, rid) == ["queued", "processing", "queued", "processing", "queued", "processing", "done"]
    mine = [r for r in records(client) if r["id"] == rid]
    assert [r["attempts"] for r in mine[1:]] == [1, 1, 2, 2, 3, 3]
    assert [r["retry_at"] for r in mine if r["type"] == "queued" and "retry_at" in r] == [
        1_700_000_005.0,
        1_700_000_015.0,
    ]
    assert "quarterly report" in mine[-1]["text"].lower()
    assert client.zcard(DELAYED) == 0 and pending(client) == 0


def test_an_engine_that_keeps_failing_ends_failed_after_max_attempts(client: redis.Redis, tmp_path: Path) -> None:
    rid = submit(client, text_image(tmp_path / "share" / "meeting.png", "Meeting at noon"))
    clock = Clock()
    always = FlakyEngine(None, failures=0)
    worker = Worker(client, always, DaemonSettings(max_attempts=2, retry_backoff=1.0), "w1", clock=clock)
    assert worker.run_once(BLOCK_MS) == 1
    assert client.zcard(DELAYED) == 1
    clock.now += 1.0
    assert worker.run_once(BLOCK_MS) == 1
    assert always.calls == 2
    assert kinds(client, rid) == ["queued", "processing", "queued", "processing", "failed"]
    failed = records(client)[-1]
    assert failed["attempts"] == 2
    assert failed["error"] == "failed after 2 attempts: RuntimeError: engine hiccup 2"
    assert client.zcard(DELAYED) == 0 and pending(client) == 0
    clock.now += 100.0
    assert worker.run_once(BLOCK_MS) == 0  # nothing comes back


def test_a_file_on_a_share_that_went_away_waits_without_spending_attempts(
    client: redis.Redis, engine: OcrEngine, tmp_path: Path
) -> None:
    """Queued at the share's root, then the share unmounted (its empty mount point left): the job
    waits for it (backoff growing to 30 s, no attempt spent) and is read once it is back; another
    file whose share stays away longer than share_wait_seconds fails saying so."""
    share, mounted = tmp_path / "share", tmp_path / "mounted"
    rid = submit(client, text_image(share / "invoice.png", "Invoice paid"))
    clock = Clock()
    worker = Worker(
        client, engine, DaemonSettings(max_attempts=2, retry_backoff=2.0, share_wait_seconds=100.0), "w1", clock=clock
    )

    def delayed() -> list[tuple[Job, float]]:
        return [(Job.from_json(m), s) for m, s in client.zrange(DELAYED, 0, -1, withscores=True)]

    share.rename(mounted)  # unmounted: the share's root is gone, an empty folder stands in its place
    share.mkdir()
    started = clock.now
    waits = []
    for _ in range(5):  # more tries than max_attempts: waiting spends none
        assert worker.run_once(BLOCK_MS) == 1
        [(job, due)] = delayed()
        assert job.attempt == 0 and job.away_since == started
        waits.append(due - clock.now)
        clock.now = due
    assert waits == [2.0, 2.0, 4.0, 8.0, 16.0]
    share.rmdir()
    mounted.rename(share)  # mounted again
    assert worker.run_once(BLOCK_MS) == 1
    assert kinds(client, rid)[-1] == "done" and "invoice" in records(client)[-1]["text"].lower()

    other = submit(client, text_image(share / "receipt.png", "Receipt"))
    share.rename(mounted)
    share.mkdir()
    assert worker.run_once(BLOCK_MS) == 1
    clock.now += 101.0
    client.zadd(DELAYED, {m: 0 for m in client.zrange(DELAYED, 0, -1)})  # due now
    assert worker.run_once(BLOCK_MS) == 1
    failed = records(client)[-1]
    assert failed["id"] == other and failed["type"] == "failed"
    assert failed["error"].startswith("the share holding it stayed away for 101 s: receipt.png: its folder")
    assert client.zcard(DELAYED) == 0 and pending(client) == 0


@pytest.mark.parametrize(
    "fields",
    [{"job": "{not json"}, {"other": "field"}, {"job": json.dumps({"id": "x", "path": "/nowhere.png"})}],
    ids=["bad-json", "no-job-field", "missing-keys"],
)
def test_a_malformed_job_is_acked_and_dropped(client: redis.Redis, engine: OcrEngine, fields: dict[str, str]) -> None:
    client.xadd(JOBS, fields)
    worker = Worker(client, engine, DaemonSettings(), "w1")
    assert worker.run_once(BLOCK_MS) == 1
    assert pending(client) == 0
    assert records(client) == []  # nothing to announce for a job that names no result
    assert worker.run_once(BLOCK_MS) == 0


def test_outputs_writes_json_and_a_visualization(client: redis.Redis, engine: OcrEngine, tmp_path: Path) -> None:
    source = text_image(tmp_path / "share" / "deploy notes.png", "Quarterly report")
    rid = submit(client, source)
    outputs = OutputWriter(tmp_path / "data" / "outputs", 50_000_000, MAX_BYTES, run="run1")
    worker = Worker(client, engine, DaemonSettings(outputs=True), "w1", outputs)
    assert worker.run_once(BLOCK_MS) == 1
    assert kinds(client, rid)[-1] == "done"
    run = tmp_path / "data" / "outputs" / "run1"
    doc: dict[str, Any] = json.loads((run / "json" / f"{rid}_deploy notes.json").read_text("utf-8"))
    assert doc["id"] == rid and doc["path"] == str(source) and doc["channel"] == ""
    assert "quarterly report" in doc["text"].lower() and doc["lines"]
    png = cv2.imread(str(run / "visualization" / f"{rid}_deploy notes.png"), cv2.IMREAD_COLOR)
    assert png is not None and png.shape == (160, 720, 3)
    red = (png[:, :, 2] > 200) & (png[:, :, 1] < 60) & (png[:, :, 0] < 60)
    assert np.count_nonzero(red) > 100  # the boxes are drawn (the source has only greys)
    assert sorted(p.name for p in run.iterdir()) == ["json", "visualization"]


def test_run_creates_the_groups_again_when_redis_lost_its_data(
    client: redis.Redis, engine: OcrEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()
    worker = Worker(client, engine, DaemonSettings(), "w1")
    thread = threading.Thread(target=worker.run, args=(stop,), name="worker-under-test")
    thread.start()
    try:
        wait_until(lambda: client.hexists(HEARTBEATS, "w1"), 60, "the worker's first beat")
        client.flushall()  # as a Redis without persistence coming back: no streams, no groups
        rid = submit(client, text_image(tmp_path / "share" / "after.png", "Invoice 1043 paid"))
        wait_until(lambda: kinds(client, rid)[-1:] == ["done"], 60, "the job after the data loss")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert kinds(client, rid) == ["queued", "processing", "done"] and pending(client) == 0
    assert any("consumer groups are gone" in r.getMessage() for r in caplog.records)


class Killed(BaseException):
    """What a worker killed mid-document leaves: its batch never finishes (nothing recorded, nothing acked)."""


class PageLog:
    """The real engine, noting the pages each read_document call was asked for (and skipped), and
    dying (:class:`Killed`) after ``die_after`` pages when told to."""

    def __init__(self, real: OcrEngine, die_after: int | None = None) -> None:
        self.real = real
        self.model_version = real.model_version
        self.die_after = die_after
        self.read: list[int] = []
        self.skipped: frozenset[int] = frozenset()

    def read_document(self, document: Any, batch: int = 4, skip: Any = frozenset()) -> Iterator[tuple[int, Any]]:
        self.skipped = frozenset(skip)
        for number, outcome in self.real.read_document(document, batch, skip):
            if self.die_after is not None and len(self.read) >= self.die_after:
                raise Killed
            self.read.append(number)
            yield number, outcome

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_worker_killed_mid_document_is_resumed_without_losing_or_repeating_pages(
    client: redis.Redis, engine: OcrEngine, tmp_path: Path
) -> None:
    """Worker w1 dies after two of four pages; w2 takes the job over, reads pages 3 and 4 only, and
    the result has each of the four pages once, in order. Progress (pages done of 4) went to the
    records stream on the way; the kept pages are gone once the outcome is recorded."""
    from daemon.worker.documents import pages_key
    from tests.engine.docmakers import scanned_pdf

    share = tmp_path / "share"
    share.mkdir()
    (share / "four.pdf").write_bytes(scanned_pdf(["golden_en.png", "golden_zh.png", "golden_en.png", "golden_zh.png"]))
    rid = submit(client, share / "four.pdf")
    first = PageLog(engine, die_after=2)
    with pytest.raises(Killed):
        Worker(client, first, DaemonSettings(batch_size=1), "w1").run_once(BLOCK_MS)
    assert first.read == [1, 2] and client.hlen(pages_key(rid)) == 2
    assert kinds(client, rid)[:3] == ["queued", "processing", "processing"]  # took it; 0 of 4 pages done
    assert set(kinds(client, rid)[1:]) == {"processing"}
    second = PageLog(engine)
    settings = DaemonSettings(batch_size=1, claim_idle_seconds=0.0)
    assert Worker(client, second, settings, "w2").run_once(BLOCK_MS) == 1
    assert second.skipped == {1, 2} and second.read == [3, 4]
    mine = [r for r in records(client) if r["id"] == rid]
    done = [r for r in mine if r["type"] == "done"]
    assert len(done) == 1 and done[0]["page_count"] == 4
    assert [p["page"] for p in done[0]["pages"]] == [1, 2, 3, 4]
    texts = done[0]["text"].split("\n\f\n")
    assert len(texts) == 4 and texts[0] == texts[2] and texts[1] == texts[3] and texts[0] != texts[1]
    assert sorted({line["page"] for line in done[0]["lines"]}) == [1, 2, 3, 4]
    progress = [r["pages_done"] for r in mine if r["type"] == "processing" and "pages_done" in r]
    assert progress[0] == 0 and progress[-1] == 4 and progress == sorted(progress)
    assert all(r["page_count"] == 4 for r in mine if "pages_done" in r)
    assert not client.exists(pages_key(rid)) and pending(client) == 0


def test_a_long_document_is_not_taken_over_from_the_worker_still_reading_it(
    client: redis.Redis, engine: OcrEngine, tmp_path: Path
) -> None:
    """Four slow pages (a second each) outlast ``claim_idle_seconds`` (2.5 s), yet another worker
    looking for silent jobs between the pages finds none: the reader claims its job after each page."""
    from daemon.queue.streams import take
    from tests.engine.docmakers import blank_pdf

    share = tmp_path / "share"
    share.mkdir()
    (share / "slow.pdf").write_bytes(blank_pdf(4, 144, 144))  # small pages: the sleep is what takes time
    rid = submit(client, share / "slow.pdf")
    stolen: list[Any] = []

    class Slow(PageLog):
        def read_document(self, document: Any, batch: int = 4, skip: Any = frozenset()) -> Iterator[tuple[int, Any]]:
            for number, outcome in super().read_document(document, batch, skip):
                time.sleep(1.0)
                stolen.extend(take(client, JOBS, WORKERS_GROUP, "w2", 1, 2500, 1))
                yield number, outcome

    settings = DaemonSettings(batch_size=1, claim_idle_seconds=2.5)
    started = time.monotonic()
    assert Worker(client, Slow(engine), settings, "w1").run_once(BLOCK_MS) == 1
    assert time.monotonic() - started > 2.5 and stolen == []
    assert kinds(client, rid)[-1] == "done"


def test_a_priority_job_goes_ahead_of_a_folder_burst(client: redis.Redis, engine: OcrEngine, tmp_path: Path) -> None:
    """Five folder jobs queued, then one-call OCR's job in the priority lane: the worker's first batch
    is that job; the folder's jobs follow, none lost, one at a time while one-call jobs come."""
    from daemon.queue.streams import PRIORITY_JOBS

    share = tmp_path / "share"
    burst = [submit(client, text_image(share / f"burst-{k}.png", f"Burst {k}", k)) for k in range(5)]
    queued = Intake(client, MAX_BYTES).submit(text_image(share / "urgent.png", "Urgent 7781", 9), "", priority=True)
    assert queued is not None and client.xlen(PRIORITY_JOBS) == 1
    worker = Worker(client, engine, DaemonSettings(batch_size=2), "w1")
    assert worker.run_once(BLOCK_MS) == 1
    done = [r["id"] for r in records(client) if r["type"] == "done"]
    assert done == [queued["id"]]
    # one-call jobs are coming: folder files are now taken one at a time (the next call waits for
    # at most one in hand), until the lane has been quiet for a minute
    assert [worker.run_once(BLOCK_MS) for _ in range(2)] == [1, 1]
    worker.clock = lambda: time.time() + 120
    assert worker.run_once(BLOCK_MS) == 2
    while worker.run_once(BLOCK_MS):
        pass
    assert {r["id"] for r in records(client) if r["type"] == "done"} == {queued["id"], *burst}
    assert client.xlen(PRIORITY_JOBS) == 0 and pending(client) == 0


class Tuned(BatchLog):
    """BatchLog whose channel engines (``tuned``) log into the same list."""

    def tuned(self, changes: Any) -> Any:
        other = Tuned(self.real.tuned(changes))
        other.batches = self.batches
        return other

    def read_settings(self) -> dict[str, Any]:
        return self.real.read_settings()


def test_a_channels_settings_are_read_with_batched_together_and_recorded(
    client: redis.Redis, engine: OcrEngine, tmp_path: Path
) -> None:
    """Channel "strict" keeps only lines of confidence 1.0 ([channels.strict] rec_min_confidence):
    its jobs are one batch read with that setting, the root's another; each result records the
    settings it was read with."""
    share = tmp_path / "share"
    settings = {"strict": {"rec_min_confidence": 1.0, "det_box_thresh": 0.6}}
    intake = Intake(client, MAX_BYTES, channel_engine=lambda channel: dict(settings.get(channel, {})))
    jobs = []
    for k, channel in enumerate(["strict", "", "strict", ""]):
        queued = intake.submit(text_image(share / f"{k}.png", f"Invoice {4100 + k} paid", k), channel)
        assert queued is not None
        jobs.append((queued["id"], channel))
    logged = Tuned(engine)
    assert Worker(client, logged, DaemonSettings(batch_size=4), "w1").run_once(BLOCK_MS) == 4
    assert sorted(logged.batches) == [2, 2]  # one batch per channel's settings
    done = {r["id"]: r for r in records(client) if r["type"] == "done"}
    for rid, channel in jobs:
        read_with = done[rid]["settings"]
        assert set(read_with) == {"det_thresh", "det_box_thresh", "det_unclip_ratio", "rec_min_confidence",
                                  "model_set", "enhance", "orientation"}  # fmt: skip
        if channel == "strict":
            assert (read_with["rec_min_confidence"], read_with["det_box_thresh"]) == (1.0, 0.6)
            assert done[rid]["lines"] == []  # no line is read with a confidence of 1.0
        else:
            assert (read_with["rec_min_confidence"], read_with["det_box_thresh"]) == (0.5, 0.5)
            assert "paid" in done[rid]["text"].lower()
