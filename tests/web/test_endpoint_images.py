"""/image and /annotated serve only the bytes whose MD5 the result holds (else 410), drawings are kept
per result and made at most two at a time (a third waits, then 503 with Retry-After).

The symlink swaps of issue 13, in both forms, on the real app and real files: a member of ``sales``
(carol, team beta) turns ``sales/x.png`` into a link to finance's payroll, or turns the ``sales``
folder itself into a link to ``finance``; either way her old result's image is refused, never
finance's bytes served.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from daemon.records import ResultRecord
from tests.polling import wait_until
from tests.web.test_api import BOX, T0
from web.services import Services


def image_bytes(text: str, ext: str = ".png", shade: int = 255) -> bytes:
    image = np.full((160, 640, 3), shade, np.uint8)
    cv2.putText(image, text, (50, 75), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 2)
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


def stored(svc: Services, channel: str, name: str, data: bytes | None = None) -> ResultRecord:
    """A done result of a real file, with the MD5 and size intake would have recorded."""
    data = data if data is not None else image_bytes(name)
    path = svc.settings.shared_dir / channel / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    rec = svc.store.add_queued(
        ResultRecord(
            id=uuid.uuid4().hex,
            md5=hashlib.md5(data).hexdigest(),
            path=str(path),
            filename=name,
            channel=channel,
            size=len(data),
            created_at=T0,
        )
    )
    done = svc.store.complete(
        rec.id,
        width=640,
        height=160,
        lines=[{"text": "hello", "points": BOX, "confidence": 0.9}],
        text="hello",
        timings={"total": 0.1},
        engine_version="1",
        model_version="small",
        finished_at=T0 + 1,
    )
    assert done is not None
    return done


def assert_changed(response, name: str, svc: Services, *secrets: bytes) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 410, (response.status_code, response.data[:200])
    body = response.get_json()
    assert body["status"] == 410 and body["error"] == f"the file {name} has changed since it was read"
    assert str(svc.settings.shared_dir) not in response.get_data(as_text=True)
    assert not any(secret in response.data for secret in secrets)


def test_the_bytes_read_are_served(client: FlaskClient, auth: dict, svc: Services) -> None:
    data = image_bytes("receipt", ".jpg")
    rec = stored(svc, "sales", "receipt.jpg", data)
    served = client.get(f"/api/v1/results/{rec.id}/image", headers=auth["carol"])
    assert served.status_code == 200 and served.data == data and served.mimetype == "image/jpeg"
    drawn = client.get(f"/api/v1/results/{rec.id}/annotated", headers=auth["carol"])
    assert drawn.status_code == 200 and drawn.mimetype == "image/png"
    b, g, r = (int(v) for v in cv2.imdecode(np.frombuffer(drawn.data, np.uint8), cv2.IMREAD_COLOR)[30, 170])
    assert g > 120 and b < 80 and r < 80  # the box


def test_a_file_swapped_for_a_link_to_another_channel_is_refused(
    client: FlaskClient, auth: dict, svc: Services
) -> None:
    """cp some.png sales/x.png; ln -s "$SHARED/finance/payroll.png" sales/.l; mv -f sales/.l sales/x.png"""
    rec = stored(svc, "sales", "x.png")
    payroll = image_bytes("PAYROLL 9000", shade=200)
    (svc.settings.shared_dir / "finance").mkdir()
    (svc.settings.shared_dir / "finance" / "payroll.png").write_bytes(payroll)
    link = svc.settings.shared_dir / "sales" / ".l"
    link.symlink_to(svc.settings.shared_dir / "finance" / "payroll.png")
    os.replace(link, svc.settings.shared_dir / "sales" / "x.png")
    for kind in ("image", "annotated"):
        assert_changed(client.get(f"/api/v1/results/{rec.id}/{kind}", headers=auth["carol"]), "x.png", svc, payroll)


def test_a_channel_folder_replaced_by_a_link_is_refused(client: FlaskClient, auth: dict, svc: Services) -> None:
    """After the result is stored, sales/ becomes a link to finance/, which has an x.png of its own."""
    rec = stored(svc, "sales", "x.png")
    payroll = image_bytes("PAYROLL 9000", shade=200)
    (svc.settings.shared_dir / "finance").mkdir()
    (svc.settings.shared_dir / "finance" / "x.png").write_bytes(payroll)
    os.rename(svc.settings.shared_dir / "sales", svc.settings.shared_dir / "sales.old")
    (svc.settings.shared_dir / "sales").symlink_to(svc.settings.shared_dir / "finance", target_is_directory=True)
    for kind in ("image", "annotated"):
        assert_changed(client.get(f"/api/v1/results/{rec.id}/{kind}", headers=auth["carol"]), "x.png", svc, payroll)


def test_other_content_at_the_same_path_is_refused(client: FlaskClient, auth: dict, svc: Services) -> None:
    rec = stored(svc, "", "page.png")
    other = image_bytes("another page", shade=240)
    Path(rec.path).write_bytes(other)
    for kind in ("image", "annotated"):
        assert_changed(client.get(f"/api/v1/results/{rec.id}/{kind}", headers=auth["bob"]), "page.png", svc, other)
    Path(rec.path).write_bytes(other[: rec.size])  # same size, other bytes (a truncated other file)
    assert client.get(f"/api/v1/results/{rec.id}/image", headers=auth["bob"]).status_code == 410


def test_a_file_never_read_and_a_file_gone(client: FlaskClient, auth: dict, svc: Services) -> None:
    data = image_bytes("unread")
    path = svc.settings.shared_dir / "unread.png"
    path.write_bytes(data)
    unread = svc.store.add_queued(
        ResultRecord(
            id=uuid.uuid4().hex, md5="", path=str(path), filename="unread.png", channel="", size=0, created_at=T0
        )
    )  # intake failed on it (it was unreadable then): no MD5 to check the bytes against
    response = client.get(f"/api/v1/results/{unread.id}/image", headers=auth["bob"])
    assert response.status_code == 410 and "was never read" in response.get_json()["error"]
    gone = stored(svc, "", "gone.png")
    Path(gone.path).unlink()
    response = client.get(f"/api/v1/results/{gone.id}/image", headers=auth["bob"])
    assert response.status_code == 404 and response.get_json()["error"] == "source file no longer available"


def test_an_annotated_image_is_drawn_once_per_result(
    client: FlaskClient, auth: dict, svc: Services, app: Flask
) -> None:
    from web.drawing import drawings

    rec = stored(svc, "", "boxes.png")
    first = client.get(f"/api/v1/results/{rec.id}/annotated", headers=auth["bob"])
    again = client.get(f"/api/v1/results/{rec.id}/annotated", headers=auth["alice"])
    assert first.status_code == again.status_code == 200 and first.data == again.data
    assert drawings(app).drawn == 1
    client.post(f"/api/v1/results/{rec.id}/lines/0", json={"text": "hullo"}, headers=auth["bob"])
    assert client.get(f"/api/v1/results/{rec.id}/annotated", headers=auth["bob"]).status_code == 200
    assert drawings(app).drawn == 1  # a correction changes text, not boxes: the drawing is kept
    Path(rec.path).write_bytes(image_bytes("swapped", shade=230))
    assert client.get(f"/api/v1/results/{rec.id}/annotated", headers=auth["bob"]).status_code == 410  # checked anew


def test_a_third_drawing_waits_then_gets_503_with_retry_after(
    client: FlaskClient, auth: dict, svc: Services, app: Flask
) -> None:
    from web.drawing import drawings

    rec = stored(svc, "", "busy.png")
    kept = drawings(app)
    kept.wait_seconds = 0.2
    with kept.slot(), kept.slot():  # two drawings under way
        response = client.get(f"/api/v1/results/{rec.id}/annotated", headers=auth["bob"])
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert "being drawn" in response.get_json()["error"] and kept.drawn == 0
    assert client.get(f"/api/v1/results/{rec.id}/annotated", headers=auth["bob"]).status_code == 200


def test_drawings_run_at_most_two_at_once_and_the_cache_is_bounded() -> None:
    from web.drawing import Drawings

    kept = Drawings(budget_bytes=10, wait_seconds=30)
    active, peak, lock, go = [0], [0], threading.Lock(), threading.Event()

    def draw() -> bytes:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        go.wait(30)
        with lock:
            active[0] -= 1
        return b"12345678"

    threads = [threading.Thread(target=kept.image, args=((str(n), "m", "b"), draw)) for n in range(6)]
    for thread in threads:
        thread.start()
    wait_until(lambda: active[0] == 2, 10, "two drawings under way")
    go.set()
    for thread in threads:
        thread.join(30)
    assert peak[0] == 2 and kept.drawn == 6
    assert kept.size == 8
    assert sum(kept.cached((str(n), "m", "b")) is not None for n in range(6)) == 1  # 8 bytes each, 10 kept
    with pytest.raises(ValueError):
        Drawings(budget_bytes=-1)
