"""The served web (``python -m cli.webserver``): gevent with live Socket.IO, a clear refusal when its
port is taken, and no orphans (web or workers) when the `teamocr run` that started them is killed."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import requests

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from daemon.results.events import SOCKETIO_CHANNEL, SocketIOEvents
from daemon.results.teams import TeamMap
from tests.faults.stack import add_users
from tests.polling import wait_until
from tests.web.browserkit import SocketClient, served_web
from tests.web.conftest import PASSWORD
from tests.web.test_cli_user import teamocr

REPO = Path(__file__).resolve().parents[2]


def login(url: str, name: str) -> str:
    response = requests.post(f"{url}/api/v1/auth/login", json={"username": name, "password": PASSWORD}, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_the_gevent_server_answers_the_api_and_pushes_events_over_websocket(
    settings: Settings, redis_handle: RedisHandle
) -> None:
    add_users(settings.data_dir, {"alice": "alpha"})
    with served_web(settings, redis_handle.url) as url:
        token = login(url, "alice")
        listed = requests.get(f"{url}/api/v1/results", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert listed.status_code == 200 and listed.json()["items"] == []
        assert "X-RateLimit-Limit" not in listed.headers  # limit headers come with a refusal only
        client = SocketClient(url, token)
        try:
            events = SocketIOEvents(redis_handle.url, TeamMap.from_spec(settings.teams.channels))
            wait_until(
                lambda: dict(redis_handle.client.pubsub_numsub(SOCKETIO_CHANNEL))[SOCKETIO_CHANNEL] >= 1,
                60,
                "the web to listen for events",
                interval=0.1,
            )
            item = {"id": "r1", "status": "done", "channel": "", "filename": "a.png", "text": "hello"}
            events.publish(item)
            wait_until(lambda: client.results, 60, "the event over the WebSocket", interval=0.05)
            assert client.results == [item]
        finally:
            client.close()


def test_a_taken_port_is_a_clear_error_and_run_stops(settings: Settings, redis_handle: RedisHandle) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMOCR_")}
        env.update(
            {
                "TEAMOCR_DATA_DIR": str(settings.data_dir),
                "TEAMOCR_SHARED_DIR": str(settings.shared_dir),
                "TEAMOCR_REDIS_URL": redis_handle.url,
                "TEAMOCR_HOST": "127.0.0.1",
                "TEAMOCR_PORT": str(port),
            }
        )
        alone = subprocess.run(
            [sys.executable, "-m", "cli.webserver"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert alone.returncode == 2
        assert f"cannot serve the web on 127.0.0.1:{port}" in alone.stderr
        assert "Traceback" not in alone.stderr
        env["TEAMOCR_REDIS_URL"] = ""  # `teamocr run` on its embedded Redis
        run = subprocess.run(
            [sys.executable, "-m", "cli", "run", "--workers", "1"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 2, run.stderr
        assert f"cannot serve the web on 127.0.0.1:{port}" in run.stderr
        assert "the web process exited with 2" in run.stderr


def test_unknown_arguments_are_refused(settings: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli.webserver", "--port", "80"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "unknown argument(s) --port 80" in done.stderr


def test_the_web_and_the_workers_leave_with_a_killed_run(settings: Settings, tmp_path: Path) -> None:
    from tests.faults.stack import product_env, start_product, wait_for_workers

    running = start_product(product_env(tmp_path), workers=1)
    others = [*running.children(), *running.embedded_redis()]
    try:
        wait_for_workers(running, 1)
        children = [c for c in others if "cli.webserver" in c.cmdline() or "worker" in c.cmdline()]
        assert len(children) == 2
        running.proc.send_signal(signal.SIGKILL)
        running.proc.wait(30)
        gone = lambda: all(not c.is_running() or c.status() == psutil.STATUS_ZOMBIE for c in children)  # noqa: E731
        wait_until(gone, 60, "the web and the worker to stop after their parent", interval=0.2)
    finally:
        running.stop()
        for proc in others:  # the embedded Redis outlives a SIGKILLed run (the next start joins it)
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


def test_teamocr_web_becomes_the_gevent_server(settings: Settings, redis_handle: RedisHandle) -> None:
    """`teamocr web` (a separate web host) execs ``python -m cli.webserver``: a taken port shows it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = teamocr(
            "web",
            settings=settings,
            env={"TEAMOCR_REDIS_URL": redis_handle.url, "TEAMOCR_HOST": "127.0.0.1", "TEAMOCR_PORT": str(port)},
        )
    assert done.returncode == 2
    assert f"cannot serve the web on 127.0.0.1:{port}" in done.stderr


def test_drawing_a_large_photo_leaves_the_loop_serving_others(settings: Settings, redis_handle: RedisHandle) -> None:
    """The annotated copy of a 12 MP photo (decode, draw, encode: tenths of a second) is made in
    gevent's threads: a request sent after it is answered before it, and a broken file is a 422."""
    import hashlib
    import threading
    import uuid

    import cv2
    import numpy as np

    from daemon.records import ResultRecord
    from daemon.results.store import STORE_NAME, SqliteStore

    photo = settings.shared_dir / "photo.jpg"
    noise = np.random.default_rng(0).integers(0, 255, (3000, 4000, 3)).astype(np.uint8)
    cv2.imwrite(str(photo), cv2.GaussianBlur(noise, (0, 0), 3))
    broken = settings.shared_dir / "broken.jpg"
    broken.write_bytes(photo.read_bytes()[:2000])
    store = SqliteStore(settings.data_dir / STORE_NAME)
    ids = {}
    for path in (photo, broken):
        rec = store.add_queued(
            ResultRecord(
                id=uuid.uuid4().hex,
                md5=hashlib.md5(path.read_bytes()).hexdigest(),
                path=str(path),
                filename=path.name,
                channel="",
                size=path.stat().st_size,
                created_at=1.0,
            )
        )
        box = [[10, 10], [900, 10], [900, 80], [10, 80]]
        store.complete(
            rec.id,
            width=4000,
            height=3000,
            lines=[{"text": "x", "points": box, "confidence": 0.9}],
            text="x",
            timings={},
            engine_version="1",
            model_version="small",
            finished_at=2.0,
        )
        ids[path.name] = rec.id
    store.close()
    add_users(settings.data_dir, {"alice": "alpha"})
    with served_web(settings, redis_handle.url) as url:
        headers = {"Authorization": f"Bearer {login(url, 'alice')}"}
        drawn: list[requests.Response] = []
        done = threading.Event()

        def draw() -> None:
            drawn.append(
                requests.get(f"{url}/api/v1/results/{ids['photo.jpg']}/annotated", headers=headers, timeout=60)
            )
            done.set()

        answered_meanwhile = 0
        with requests.Session() as http:
            http.get(f"{url}/api/v1/auth/me", headers=headers, timeout=30)  # the connection is open
            drawing = threading.Thread(target=draw)
            drawing.start()
            while not done.is_set():
                assert http.get(f"{url}/api/v1/auth/me", headers=headers, timeout=60).status_code == 200
                answered_meanwhile += not done.is_set()
        drawing.join(60)
        assert drawn[0].status_code == 200 and drawn[0].headers["Content-Type"] == "image/png"
        # a loop blocked by the drawing answers none (or one sent just before it began)
        assert answered_meanwhile >= 4, answered_meanwhile  # 14 here; 0 with the drawing in the loop
        refused = requests.get(f"{url}/api/v1/results/{ids['broken.jpg']}/annotated", headers=headers, timeout=60)
        assert refused.status_code == 422 and "cannot draw on this file" in refused.json()["error"]


def test_uploads_and_exports_through_the_gevent_server(settings: Settings, redis_handle: RedisHandle) -> None:
    """Copies, unzipping and hashing run in gevent's threads, the queue's Redis calls in the loop."""
    import io
    import zipfile

    import cv2
    import numpy as np

    ok, png = cv2.imencode(".png", np.full((40, 60, 3), 200, np.uint8))
    assert ok
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("inside/a.png", png.tobytes())
        archive.writestr("inside/notes.txt", b"not an image")
    add_users(settings.data_dir, {"alice": "alpha"})
    with served_web(settings, redis_handle.url) as url:
        headers = {"Authorization": f"Bearer {login(url, 'alice')}"}
        files = [
            ("files", ("one.png", png.tobytes(), "image/png")),
            ("files", ("pack.zip", packed.getvalue(), "application/zip")),
        ]
        answer = requests.post(f"{url}/api/v1/upload", headers=headers, files=files, timeout=60)
        assert answer.status_code == 202, answer.text
        items = answer.json()["items"]
        assert [(i["filename"], i["status"]) for i in items] == [("one.png", "queued"), ("a.png", "duplicate")]
        saved = sorted(p.name for p in settings.shared_dir.rglob("*.png"))
        assert saved == ["a.png", "one.png"]
        export = requests.get(f"{url}/api/v1/export?format=csv", headers=headers, timeout=60)
        assert export.status_code == 200 and export.headers["X-Result-Count"] == "0"  # no recorder here
        assert export.content.startswith("\ufeffid,filename".encode())


def test_a_fine_tune_job_runs_its_commands_under_gevent(settings: Settings, redis_handle: RedisHandle) -> None:
    """The job's subprocesses and their output pipes work in the patched loop: with no corrections
    to train on, the job fails with the trainer's own words, and the web keeps answering."""
    add_users(settings.data_dir, {"alice": "alpha"}, admins=frozenset({"alice"}))
    with served_web(settings, redis_handle.url) as url:
        headers = {"Authorization": f"Bearer {login(url, 'alice')}"}
        started = requests.post(
            f"{url}/api/v1/training", json={"kind": "rec", "source": "corrections"}, headers=headers, timeout=30
        )
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]

        def finished() -> dict | None:
            job = requests.get(f"{url}/api/v1/training/{job_id}", headers=headers, timeout=30).json()
            return job if job["state"] in ("done", "failed") else None

        job = wait_until(finished, 120, "the training job to finish", interval=0.3)
        assert job["state"] == "failed" and "train.txt: no samples" in job["error"], job
        assert requests.get(f"{url}/api/v1/auth/me", headers=headers, timeout=30).status_code == 200
