"""The served web (gevent, its own process): the store reads now made in gevent's thread pool
(search, export pages, the counts behind /metrics) and the checked source images answer right."""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import requests

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from daemon.records import ResultRecord
from daemon.results.store import STORE_NAME, SqliteStore
from tests.faults.stack import add_users
from tests.web.browserkit import served_web
from tests.web.test_api import BOX, T0
from tests.web.test_endpoint_images import image_bytes
from tests.web.test_health import parse_metrics
from tests.web.test_server import login


def test_search_export_metrics_and_checked_images_under_gevent(settings: Settings, redis_handle: RedisHandle) -> None:
    store = SqliteStore(settings.data_dir / STORE_NAME)
    ids = []
    for n in range(30):
        data = image_bytes(f"page {n}")
        path = settings.shared_dir / f"page{n}.png"
        path.write_bytes(data)
        rec = store.add_queued(
            ResultRecord(
                id=uuid.uuid4().hex,
                md5=hashlib.md5(data).hexdigest(),
                path=str(path),
                filename=path.name,
                channel="",
                size=len(data),
                created_at=T0 + n,
            )
        )
        text = f"invoice number {n}"
        store.complete(
            rec.id,
            width=640,
            height=160,
            lines=[{"text": text, "points": BOX, "confidence": 0.9}],
            text=text,
            timings={"total": 0.1},
            engine_version="1",
            model_version="small",
            finished_at=T0 + n + 1,
        )
        ids.append(rec.id)
    store.close()
    add_users(settings.data_dir, {"alice": "alpha"})
    with served_web(settings, redis_handle.url) as url:
        headers = {"Authorization": f"Bearer {login(url, 'alice')}"}
        found = requests.get(f"{url}/api/v1/search", params={"q": "invoice number 1"}, headers=headers, timeout=60)
        assert found.status_code == 200, found.text
        assert {item["text"] for item in found.json()["items"]} == {"invoice number 1"} | {
            f"invoice number {n}" for n in range(10, 20)
        }
        export = requests.get(f"{url}/api/v1/export?format=json&limit=25", headers=headers, timeout=60)
        assert export.status_code == 200 and export.headers["X-Result-Count"] == "25"
        assert export.headers["Cache-Control"] == "no-store" and len(json.loads(export.content)) == 25
        for _ in range(3):
            scraped = requests.get(f"{url}/metrics", headers=headers, timeout=60)
            assert scraped.status_code == 200
            assert parse_metrics(scraped.text)[0]["teamocr_files_seen_total"] == 30
        assert requests.get(f"{url}/metrics", timeout=60).status_code == 401
        image = requests.get(f"{url}/api/v1/results/{ids[0]}/image", headers=headers, timeout=60)
        assert image.status_code == 200 and image.content == (settings.shared_dir / "page0.png").read_bytes()
        drawn = [requests.get(f"{url}/api/v1/results/{i}/annotated", headers=headers, timeout=60) for i in ids[:3]]
        assert [answer.status_code for answer in drawn] == [200, 200, 200]
        os.replace(settings.shared_dir / "page5.png", settings.shared_dir / "page0.png")
        for kind in ("image", "annotated"):
            swapped = requests.get(f"{url}/api/v1/results/{ids[0]}/{kind}", headers=headers, timeout=60)
            assert (
                swapped.status_code == 410
                and swapped.json()["error"] == "the file page0.png has changed since it was read"
            )
