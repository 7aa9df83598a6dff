"""Uploads that would fill the disk, on the real app and Redis: budgets per request (413), per user
and per team a day (429 with Retry-After, counters in Redis), free space kept (507), and ZIPs whose
images together expand past the ratio, or that lie about their compressed size.

Every refusal is a JSON error naming its budget by its setting, and a refused request writes nothing.
"""

from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import replace
from io import BytesIO
from typing import Any

from flask.testing import FlaskClient
from PIL import Image
from werkzeug.test import TestResponse

from config.settings import Settings
from daemon.queue.redisconn import RedisHandle
from tests.hostile.makers import make_zip
from tests.web.test_api import add_result
from web import zipsafe
from web.budgets import DAY, PREFIX
from web.services import Services

Headers = dict[str, dict[str, str]]


def png(seed: int) -> bytes:
    out = BytesIO()
    Image.new("RGB", (8, 8), (seed % 256, seed // 256 % 256, 9)).save(out, "PNG")
    return out.getvalue()


def post(client: FlaskClient, headers: dict[str, str], files: list[tuple[bytes, str]]) -> TestResponse:
    data: dict[str, Any] = {"files": [(BytesIO(content), name) for content, name in files]}
    return client.post("/api/v1/upload", data=data, headers=headers, content_type="multipart/form-data")


def written(settings: Settings) -> set[str]:
    """Names of the files in the shared folder (hidden temp files included)."""
    return {name for _, _, names in os.walk(settings.shared_dir) for name in names}


def set_web(svc: Services, **values: Any) -> None:
    svc.settings = replace(svc.settings, web=replace(svc.settings.web, **values))


def assert_refused(response: TestResponse, status: int, budget: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == status and body["budget"] == budget and budget in body["error"], body
    return body


# --- one request --------------------------------------------------------------------------------


def test_a_request_over_its_file_budget_is_413_and_writes_nothing(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings
) -> None:
    set_web(svc, max_request_files=3)
    body = assert_refused(
        post(client, auth["bob"], [(png(i), f"p{i}.png") for i in range(4)]), 413, "web.max_request_files"
    )
    assert (body["limit"], body["requested"]) == (3, 4)
    # ZIP members count as files: two loose images and a ZIP of two are four files too.
    archive = make_zip([("a.png", png(10)), ("b.png", png(11))])
    sent = [(png(12), "c.png"), (png(13), "d.png"), (archive, "two.zip")]
    assert_refused(post(client, auth["bob"], sent), 413, "web.max_request_files")
    assert written(settings) == set()
    assert post(client, auth["bob"], [(png(i), f"p{i}.png") for i in range(3)]).status_code == 202


def test_a_flood_of_zips_in_one_request_is_413(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings
) -> None:
    set_web(svc, max_request_zips=2)
    sent = [(make_zip([(f"z{i}.png", png(20 + i))]), f"z{i}.zip") for i in range(3)]
    body = assert_refused(post(client, auth["bob"], sent), 413, "web.max_request_zips")
    assert (body["limit"], body["requested"]) == (2, 3)
    assert written(settings) == set()


def test_a_request_over_its_byte_budget_is_413(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings
) -> None:
    set_web(svc, max_request_write_bytes=100_000)
    # 60 kB of compressible bytes per member: the ZIP is small, what it would write is not.
    archive = make_zip([(f"m{i}.bmp", bytes([i]) * 60_000) for i in range(2)])
    assert len(archive) < 10_000
    body = assert_refused(post(client, auth["bob"], [(archive, "big.zip")]), 413, "web.max_request_write_bytes")
    assert body["requested"] == 120_000
    assert written(settings) == set()


# --- a user's and a team's day ------------------------------------------------------------------


def test_a_users_daily_files_run_out_with_429_and_retry_after(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings
) -> None:
    set_web(svc, user_jobs_per_day=3)
    assert post(client, auth["bob"], [(png(30), "a.png"), (png(31), "b.png")]).status_code == 202
    refused = post(client, auth["bob"], [(png(32), "c.png"), (png(33), "d.png")])
    body = assert_refused(refused, 429, "web.user_jobs_per_day")
    assert (body["limit"], body["used"], body["requested"]) == (3, 2, 2)
    retry_after = refused.headers.get("Retry-After", "")
    assert retry_after.isdigit() and 0 < int(retry_after) <= DAY
    assert written(settings) == {"a.png", "b.png"}  # the refused request wrote nothing
    assert post(client, auth["bob"], [(png(34), "e.png")]).status_code == 202  # what is left fits
    assert post(client, auth["alice"], [(png(35), "f.png")]).status_code == 202  # another user's day


def test_a_teams_daily_bytes_are_shared_by_its_users(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings
) -> None:
    size = len(png(40))
    set_web(svc, team_bytes_per_day=3 * size)
    assert post(client, auth["bob"], [(png(40), "a.png"), (png(41), "b.png")]).status_code == 202
    assert_refused(post(client, auth["alice"], [(png(42), "c.png"), (png(43), "d.png")]), 429, "web.team_bytes_per_day")
    assert post(client, auth["carol"], [(png(44), "e.png"), (png(45), "f.png")]).status_code == 202  # team beta


def test_a_users_daily_bytes(client: FlaskClient, auth: Headers, svc: Services) -> None:
    set_web(svc, user_bytes_per_day=10_000)
    archive = make_zip([("big.bmp", bytes(20_000))])
    assert_refused(post(client, auth["bob"], [(archive, "a.zip")]), 429, "web.user_bytes_per_day")


def test_what_was_not_written_is_given_back(client: FlaskClient, auth: Headers, svc: Services) -> None:
    set_web(svc, user_jobs_per_day=2)
    corrupt = bytearray(make_zip([("bad.png", bytes(range(256)) * 40), ("ok.png", png(50))]))
    at = corrupt.find(b"bad.png") + len(b"bad.png") + 20  # inside its compressed data
    corrupt[at : at + 8] = b"\xff" * 8
    response = post(client, auth["bob"], [(bytes(corrupt), "corrupt.zip")])
    assert response.status_code == 202 and [i["filename"] for i in response.get_json()["items"]] == ["ok.png"]
    assert post(client, auth["bob"], [(png(51), "next.png")]).status_code == 202  # bad.png's share came back
    assert_refused(post(client, auth["bob"], [(png(52), "more.png")]), 429, "web.user_jobs_per_day")


def test_daily_counters_live_in_redis_and_expire(client: FlaskClient, auth: Headers, redis_handle: RedisHandle) -> None:
    assert post(client, auth["carol"], [(png(60), "a.png")]).status_code == 202
    keys = sorted(redis_handle.client.scan_iter(match=f"{PREFIX}*"))
    assert [k.split(":")[2:4] for k in keys] == [
        ["team", "beta"],
        ["team", "beta"],
        ["user", "carol"],
        ["user", "carol"],
    ], keys
    for key in keys:
        assert 0 < redis_handle.client.ttl(key) <= 2 * DAY


# --- free space ---------------------------------------------------------------------------------


def test_an_upload_that_would_leave_too_little_free_space_is_507(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings
) -> None:
    set_web(svc, min_free_bytes=1 << 62)  # more than any disk has
    response = post(client, auth["bob"], [(png(70), "a.png")])
    body = assert_refused(response, 507, "web.min_free_bytes")
    assert "free space" in body["error"] and str(settings.shared_dir) not in body["error"]
    assert written(settings) == set()
    set_web(svc, min_free_bytes=0)
    assert post(client, auth["bob"], [(png(70), "a.png")]).status_code == 202


# --- ZIPs as a whole ----------------------------------------------------------------------------


def test_many_small_members_that_together_are_a_bomb(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings
) -> None:
    member = (1 << 20) - 1  # just under the size where a member's own ratio is checked
    archive = make_zip([(f"z{i}.bmp", bytes(member)) for i in range(8)])
    assert len(archive) * 200 < 8 * member  # far past 200:1 in all
    response = post(client, auth["bob"], [(archive, "small-bombs.zip"), (png(80), "ok.png")])
    assert response.status_code == 202
    (error,) = [e["error"] for e in response.get_json()["errors"]]
    assert error.startswith("ZIP bomb: its images expand") and "in all" in error, error
    assert written(settings) == {"ok.png"}


def _claim_compressed_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the central directory's compressed size of ``name`` (what zipfile reads)."""
    blob = bytearray(data)
    at = blob.find(b"PK\x01\x02")
    while blob[at + 46 : at + 46 + len(name)] != name.encode():
        at = blob.find(b"PK\x01\x02", at + 1)
    struct.pack_into("<L", blob, at + 20, size)
    return bytes(blob)


def test_a_member_lying_about_its_compressed_size_is_still_a_bomb() -> None:
    """The ratio is taken of what the member can really occupy (the bytes from its header to the
    end of the ZIP), not of what it claims: vetting alone refuses it, before any byte is inflated."""
    archive = make_zip([("zeros.bmp", bytes(5 << 20))])  # 5 MB of zeros, about 5 kB compressed
    liar = _claim_compressed_size(archive, "zeros.bmp", 1 << 20)  # "1 MB compressed": only 5:1
    opened = zipfile.ZipFile(BytesIO(liar))
    assert opened.getinfo("zeros.bmp").compress_size == 1 << 20
    limits = zipsafe.ZipLimits(max_files=10, max_bytes=100 << 20)
    plan = zipsafe.vet(opened, limits, lambda name: True, archive_bytes=len(liar))
    assert plan.images == [] and plan.skipped[0].startswith("ZIP bomb: zeros.bmp expands"), plan.skipped


# --- jobs waiting at once -----------------------------------------------------------------------


def test_a_user_and_a_team_hold_at_most_their_share_of_the_queue(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings
) -> None:
    """Results not yet read count against their uploader and their team (the store's rows, as the
    recorder writes them); read ones do not."""
    set_web(svc, user_queued_jobs=3, team_queued_jobs=4)
    for n in range(2):
        add_result(svc, "", f"waiting-{n}.png", status="queued", uploader="bob")
    add_result(svc, "", "read.png", status="done", uploader="bob")
    assert post(client, auth["bob"], [(png(70), "a.png")]).status_code == 202
    refused = post(client, auth["bob"], [(png(71), "b.png"), (png(72), "c.png")])
    body = assert_refused(refused, 429, "web.user_queued_jobs")
    assert (body["limit"], body["used"], body["requested"]) == (3, 2, 2)
    assert refused.headers["Retry-After"].isdigit()
    assert "b.png" not in written(settings)
    for n in range(2):  # the team's folders fill its queue too
        add_result(svc, "finance", f"dropped-{n}.png", status="queued")
    assert_refused(post(client, auth["alice"], [(png(73), "d.png")]), 429, "web.team_queued_jobs")
    assert post(client, auth["carol"], [(png(74), "e.png")]).status_code == 202  # team beta's queue is its own
