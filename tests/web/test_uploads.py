"""POST /api/v1/upload on the real app and Redis: files land in the shared folder and are queued.

ZIPs are built in memory, hostile ones included; every hostile kind must give its error entry and
leave nothing anywhere but the upload folder.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zipfile
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.test import TestResponse

from config.settings import Settings
from daemon.queue.streams import RECORDS
from tests.hostile.makers import make_zip
from web.services import Services
from web.upload_names import MAX_NAME_BYTES, safe_name

Headers = dict[str, dict[str, str]]


def png(seed: int = 0) -> bytes:
    """A tiny real PNG whose content differs with ``seed``."""
    out = BytesIO()
    Image.new("RGB", (8, 8), (seed % 256, seed // 256 % 256, 7)).save(out, "PNG")
    return out.getvalue()


def post(
    client: FlaskClient, headers: dict[str, str] | None, files: list[tuple[bytes, str]], **form: str
) -> TestResponse:
    data: dict[str, Any] = {"files": [(BytesIO(content), name) for content, name in files], **form}
    return client.post("/api/v1/upload", data=data, headers=headers or {}, content_type="multipart/form-data")


def records(svc: Services) -> list[dict[str, Any]]:
    return [json.loads(fields["record"]) for _, fields in svc.redis.xrange(RECORDS)]


def upload_dir(settings: Settings, channel: str = "uploads") -> Path:
    """The one dated upload folder of ``channel`` (there is exactly one during a test)."""
    (folder,) = (settings.shared_dir / channel / "uploads").iterdir()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", folder.name)
    return folder


def files_under(root: Path, skip: Path | None = None) -> set[Path]:
    """Every file (and symlink) below ``root``, ``skip`` left out."""
    found = set()
    for folder, dirs, names in os.walk(root):
        if skip is not None and Path(folder) == skip:
            dirs[:] = []
            continue
        found.update(Path(folder) / name for name in names)
        found.update(Path(folder) / name for name in dirs if (Path(folder) / name).is_symlink())
    return found


def assert_only_in_uploads(tmp_path: Path, settings: Settings, channel: str = "uploads") -> set[str]:
    """Nothing but the upload folder got files (data_dir holds Redis and SQLite); returns the names."""
    written = files_under(tmp_path, skip=settings.data_dir)
    uploads = settings.shared_dir / channel / "uploads"
    outside = {p for p in written if uploads not in p.parents}
    assert not outside, f"written outside the upload folder: {outside}"
    assert not any(p.name.startswith(".") for p in written), "a temp file was left behind"
    for escaped in ("x.png", "abs.png", "drive.png", "win.png"):
        assert not (tmp_path.parent / escaped).exists()
    return {p.name for p in written}


def patch_entry(data: bytes, name: str, *, usize: int | None = None, flags: int | None = None) -> bytes:
    """Rewrite the declared uncompressed size / flag bits of ``name`` in both of its headers."""
    blob = bytearray(data)
    encoded = name.encode()
    for magic, flag_at, size_at, name_at in ((b"PK\x03\x04", 6, 22, 30), (b"PK\x01\x02", 8, 24, 46)):
        at = blob.find(magic)
        while blob[at + name_at : at + name_at + len(encoded)] != encoded:
            at = blob.find(magic, at + 1)
        if usize is not None:
            struct.pack_into("<L", blob, at + size_at, usize)
        if flags is not None:
            struct.pack_into("<H", blob, at + flag_at, flags)
    return bytes(blob)


def zip_errors(response: TestResponse) -> list[str]:
    assert response.status_code == 202, response.get_json()
    return [e["error"] for e in response.get_json()["errors"]]


# --- single files ---------------------------------------------------------------------------------


def test_single_image_is_stored_and_queued(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings, tmp_path: Path
) -> None:
    content = png(1)
    response = post(client, auth["bob"], [(content, "scan.png")])
    assert response.status_code == 202
    body = response.get_json()
    assert body["errors"] == []
    (item,) = body["items"]
    assert item["status"] == "queued" and item["filename"] == "scan.png" and item["channel"] == "uploads"
    assert re.fullmatch(r"[0-9a-f]{32}", item["id"]) and item["duplicate_of"] is None
    stored = upload_dir(settings) / "scan.png"
    assert stored.read_bytes() == content
    (record,) = records(svc)
    assert record["id"] == item["id"] and record["type"] == "queued"
    assert record["uploader"] == "bob" and record["path"] == str(stored)
    assert assert_only_in_uploads(tmp_path, settings) == {"scan.png"}
    # The watcher finds this very path and content later: the intake skips it.
    assert svc.intake.submit(stored, "") is None


def test_same_content_again_is_a_duplicate(client: FlaskClient, auth: Headers, settings: Settings) -> None:
    first = post(client, auth["bob"], [(png(2), "scan.png")]).get_json()["items"][0]
    again = post(client, auth["alice"], [(png(2), "scan.png")])
    assert again.status_code == 202
    (item,) = again.get_json()["items"]
    assert item["status"] == "duplicate" and item["duplicate_of"] == first["id"] and item["id"] != first["id"]
    assert item["filename"] == "scan (2).png"
    assert sorted(p.name for p in upload_dir(settings).iterdir()) == ["scan (2).png", "scan.png"]


def test_several_files_in_one_request(client: FlaskClient, auth: Headers, svc: Services) -> None:
    response = post(client, auth["bob"], [(png(3), "a.png"), (png(4), "b.JPG"), (png(5), "c.webp")])
    items = response.get_json()["items"]
    assert [i["filename"] for i in items] == ["a.png", "b.JPG", "c.webp"]
    assert {i["status"] for i in items} == {"queued"} and len({i["id"] for i in items}) == 3
    assert {r["uploader"] for r in records(svc)} == {"bob"}


def test_channel_allowed_or_refused(client: FlaskClient, auth: Headers, settings: Settings, svc: Services) -> None:
    bob = post(client, auth["bob"], [(png(6), "inv.png")], channel="finance")
    assert bob.status_code == 202 and bob.get_json()["items"][0]["channel"] == "finance"
    assert (upload_dir(settings, "finance") / "inv.png").is_file()
    assert records(svc)[-1]["channel"] == "finance"
    # Another team's channel and a channel that does not exist answer alike: nothing leaks.
    for channel in ("finance", "does-not-exist", "../finance"):
        refused = post(client, auth["carol"], [(png(7), "x.png")], channel=channel)
        assert refused.status_code == 403 and refused.get_json()["error"] == "channel not yours"
    carol = post(client, auth["carol"], [(png(7), "x.png")])
    assert carol.get_json()["items"][0]["channel"] == "sales"
    assert (upload_dir(settings, "sales") / "x.png").is_file()
    assert post(client, auth["alice"], [(png(8), "y.png")], channel="..").status_code == 400
    assert post(client, auth["alice"], [(png(8), "y.png")], channel="a/b").status_code == 400
    typo = post(client, auth["alice"], [(png(8), "y.png")], channel="Finance")
    assert typo.status_code == 404 and "no such channel" in typo.get_json()["error"]
    assert not (settings.shared_dir / "Finance").exists()


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("发票 2024年.png", "发票 2024年.png"),
        ("my scan 😀.jpg", "my scan 😀.jpg"),
        ("../../evil.png", "evil.png"),
        ("a/b/c.png", "c.png"),
        ("..png", "upload.png"),
    ],
)
def test_names_are_made_safe(
    client: FlaskClient, auth: Headers, settings: Settings, tmp_path: Path, sent: str, stored: str
) -> None:
    response = post(client, auth["bob"], [(png(9), sent)])
    assert response.get_json()["items"][0]["filename"] == stored
    assert (upload_dir(settings) / stored).is_file()
    assert assert_only_in_uploads(tmp_path, settings) == {stored}


def test_safe_name_rules() -> None:
    assert safe_name("bad\x00na\x07me\u202e.png") == "badname.png"
    assert safe_name("") == "upload" and safe_name("/") == "upload" and safe_name("..") == "upload"
    assert safe_name(".hidden.png") == "hidden.png" and safe_name("~$lock.png") == "lock.png"
    assert safe_name("C:\\Users\\x\\d.png") == "d.png"  # an old browser's full Windows path
    assert safe_name("blob", "image/png") == "blob.png"
    assert safe_name("CON.png") == "upload_CON.png" and safe_name("a:b?.png") == "a_b_.png"
    long = safe_name("x" * 300 + ".png")
    assert long.endswith(".png") and len(long.encode()) == MAX_NAME_BYTES
    chinese = safe_name("中" * 100 + ".tiff")  # 3 bytes each: cut on a character boundary
    assert chinese == "中" * 65 + ".tiff" and len(chinese.encode()) <= MAX_NAME_BYTES


def test_long_names_stay_within_the_cap_when_numbered(client: FlaskClient, auth: Headers) -> None:
    name = "長" * 90 + ".png"
    first = post(client, auth["bob"], [(png(10), name)]).get_json()["items"][0]["filename"]
    second = post(client, auth["bob"], [(png(11), name)]).get_json()["items"][0]["filename"]
    assert second.endswith(" (2).png") and second != first
    assert max(len(first.encode()), len(second.encode())) <= MAX_NAME_BYTES


def test_obviously_wrong_uploads_are_refused_early(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings, tmp_path: Path
) -> None:
    response = post(
        client, auth["bob"], [(b"", "empty.png"), (b"<svg/>", "drawing.svg"), (b"hi", "notes"), (png(12), "fine.PNG")]
    )
    body = response.get_json()
    assert response.status_code == 202 and [i["filename"] for i in body["items"]] == ["fine.PNG"]
    errors = {e["filename"]: e["error"] for e in body["errors"]}
    assert errors["empty.png"] == "empty file"
    assert errors["drawing.svg"].startswith("not an image or ZIP") and errors["notes"].startswith("not an image")
    assert assert_only_in_uploads(tmp_path, settings) == {"fine.PNG"}
    assert len(records(svc)) == 1


def test_the_type_of_an_upload_is_decided_by_its_content(
    client: FlaskClient, auth: Headers, settings: Settings, tmp_path: Path
) -> None:
    """A PNG named ``scan`` or ``scan.dat`` is an image (its name gains the extension its content
    calls for, so the watcher takes it); a text file named ``notes.dat`` is still no image."""
    response = post(client, auth["bob"], [(png(20), "scan"), (png(21), "scan.dat"), (b"hello", "notes.dat")])
    body = response.get_json()
    assert response.status_code == 202, body
    assert [i["filename"] for i in body["items"]] == ["scan.png", "scan.dat.png"]
    assert [e["filename"] for e in body["errors"]] == ["notes.dat"]
    assert assert_only_in_uploads(tmp_path, settings) == {"scan.png", "scan.dat.png"}


def test_pdfs_upload_by_name_or_by_content(
    client: FlaskClient, auth: Headers, settings: Settings, tmp_path: Path
) -> None:
    from tests.engine.docmakers import mixed_pdf

    pdf = mixed_pdf()
    response = post(client, auth["bob"], [(pdf, "report.pdf"), (pdf, "scan-0001")])
    body = response.get_json()
    assert response.status_code == 202 and body["errors"] == [], body
    assert [i["filename"] for i in body["items"]] == ["report.pdf", "scan-0001.pdf"]
    assert assert_only_in_uploads(tmp_path, settings) == {"report.pdf", "scan-0001.pdf"}


def test_no_files_no_token_and_oversize(client: FlaskClient, auth: Headers, app: Any) -> None:
    empty = client.post("/api/v1/upload", data={}, headers=auth["bob"], content_type="multipart/form-data")
    assert empty.status_code == 400 and "no files" in empty.get_json()["error"]
    anonymous = post(client, None, [(png(13), "a.png")])
    assert anonymous.status_code == 401 and anonymous.is_json
    app.config["MAX_CONTENT_LENGTH"] = 1000
    big = post(client, auth["bob"], [(b"\x89PNG" + bytes(5000), "big.png")])
    assert big.status_code == 413 and big.is_json and big.get_json()["status"] == 413


# --- ZIPs -----------------------------------------------------------------------------------------


def test_zip_members_are_flattened_and_queued(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings, tmp_path: Path
) -> None:
    folder = zipfile.ZipInfo("scans/")
    data = make_zip(
        [
            (folder, b""),
            ("scans/a.png", png(20)),
            ("b.jpg", png(21)),
            ("more/deep/a.png", png(22)),
            ("__MACOSX/scans/._a.png", b"junk"),
            ("scans/.DS_Store", b"junk"),
            ("票据/发票.png", png(23)),
        ]
    )
    response = post(client, auth["carol"], [(data, "batch.zip")])
    assert zip_errors(response) == []
    items = response.get_json()["items"]
    assert [i["filename"] for i in items] == ["a.png", "b.jpg", "a (2).png", "发票.png"]
    assert {i["status"] for i in items} == {"queued"} and {i["channel"] for i in items} == {"sales"}
    assert (upload_dir(settings, "sales") / "a (2).png").read_bytes() == png(22)
    assert {r["uploader"] for r in records(svc)} == {"carol"}
    assert assert_only_in_uploads(tmp_path, settings, "sales") == {"a.png", "b.jpg", "a (2).png", "发票.png"}


def test_zip_member_names_from_chinese_windows_are_decoded(
    client: FlaskClient, auth: Headers, settings: Settings, tmp_path: Path
) -> None:
    """Names a ZIP made on Chinese Windows holds in GBK (no UTF-8 flag) upload under their Chinese
    names; a name in the ZIP standard's code page 437 stays as it was meant."""
    data = make_zip([("xxxx.png", png(24)), ("cafx.png", png(25))])  # ASCII: no UTF-8 flag
    data = data.replace(b"xxxx.png", "发票.png".encode("gbk")).replace(b"cafx.png", "café.png".encode("cp437"))
    names = {info.filename: info.flag_bits for info in zipfile.ZipFile(BytesIO(data)).infolist()}
    assert all(not flags & 0x800 for flags in names.values()), names
    response = post(client, auth["bob"], [(data, "from-windows.zip")])
    assert zip_errors(response) == []
    assert [i["filename"] for i in response.get_json()["items"]] == ["发票.png", "café.png"]


def test_hostile_members_are_skipped_by_name(
    client: FlaskClient, auth: Headers, settings: Settings, tmp_path: Path
) -> None:
    link = zipfile.ZipInfo("link.png")
    link.create_system = 3
    link.external_attr = 0o120777 << 16
    data = make_zip(
        [
            ("../x.png", png(30)),
            ("/abs.png", png(31)),
            ("C:/drive.png", png(32)),
            ("..\\win.png", png(33)),
            ("a/../../x.png", png(34)),
            (link, b"/etc/passwd"),
            ("inner.zip", make_zip([("a.png", png(35))])),
            ("notes.txt", b"hello"),
            ("ok.png", png(36)),
        ]
    )
    assert "/abs.png" in zipfile.ZipFile(BytesIO(data)).namelist()
    response = post(client, auth["bob"], [(data, "hostile.zip")])
    assert zip_errors(response) == [
        "unsafe path in ZIP: ../x.png",
        "unsafe path in ZIP: /abs.png",
        "unsafe path in ZIP: C:/drive.png",
        "unsafe path in ZIP: ..\\win.png",
        "unsafe path in ZIP: a/../../x.png",
        "symlink in ZIP not followed: link.png",
        "nested ZIP not opened: inner.zip",
        "not an image: notes.txt",
    ]
    assert {e["filename"] for e in response.get_json()["errors"]} == {"hostile.zip"}
    assert [i["filename"] for i in response.get_json()["items"]] == ["ok.png"]
    assert assert_only_in_uploads(tmp_path, settings) == {"ok.png"}


def test_zip_bomb_by_ratio(client: FlaskClient, auth: Headers, settings: Settings, tmp_path: Path) -> None:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.bmp", "w") as out:  # 200 MB of zeros, streamed: ~200 KB compressed
            chunk = bytes(1 << 20)
            for _ in range(200):
                out.write(chunk)
        archive.writestr("ok.png", png(40))
    assert len(buffer.getvalue()) < 1_000_000
    errors = zip_errors(post(client, auth["bob"], [(buffer.getvalue(), "bomb.zip")]))
    assert len(errors) == 1 and errors[0].startswith("ZIP bomb: zeros.bmp expands")
    assert assert_only_in_uploads(tmp_path, settings) == {"ok.png"}


def test_zip_bomb_by_declared_total(
    client: FlaskClient, auth: Headers, svc: Services, settings: Settings, tmp_path: Path
) -> None:
    svc.settings = replace(svc.settings, web=replace(svc.settings.web, max_zip_bytes=3000))
    data = make_zip([("a.png", bytes(2000)), ("b.png", bytes(2000))])
    errors = zip_errors(post(client, auth["bob"], [(data, "big.zip")]))
    assert errors == ["ZIP expands to 4000 bytes, over the limit of 3000"]
    assert assert_only_in_uploads(tmp_path, settings) == set()


def test_member_inflating_past_its_declared_size(
    client: FlaskClient, auth: Headers, settings: Settings, tmp_path: Path
) -> None:
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED):
        data = patch_entry(
            make_zip([("liar.png", bytes(range(256)) * 400), ("ok.png", png(41 + method))], method),
            "liar.png",
            usize=1000,
        )
        errors = zip_errors(post(client, auth["bob"], [(data, "liar.zip")]))
        assert errors == ["ZIP bomb: liar.png inflates past its declared size of 1000 bytes"]
    # The bomb stops the ZIP: members after it are not read.
    assert assert_only_in_uploads(tmp_path, settings) == set()


def test_overlapping_members(client: FlaskClient, auth: Headers, settings: Settings, tmp_path: Path) -> None:
    data = bytearray(make_zip([("a.png", png(50))]))
    cd_at = data.find(b"PK\x01\x02")
    eocd_at = data.find(b"PK\x05\x06")
    entry = data[cd_at:eocd_at]
    eocd = bytearray(data[eocd_at:])
    struct.pack_into("<HHL", eocd, 8, 2, 2, 2 * len(entry))  # two entries, same local header
    errors = zip_errors(post(client, auth["bob"], [(bytes(data[:eocd_at] + entry + eocd), "overlap.zip")]))
    assert errors == ["ZIP bomb: overlapping members"]
    assert assert_only_in_uploads(tmp_path, settings) == set()


def test_too_many_files(client: FlaskClient, auth: Headers, svc: Services, settings: Settings, tmp_path: Path) -> None:
    svc.settings = replace(svc.settings, web=replace(svc.settings.web, max_zip_files=3))
    data = make_zip([(f"p{i}.png", png(60 + i)) for i in range(4)] + [("readme.txt", b"x")])
    assert zip_errors(post(client, auth["bob"], [(data, "many.zip")])) == ["ZIP has 4 files, over the limit of 3"]
    junk = make_zip([(f"n{i}.txt", b"x") for i in range(31)])  # entries bounded too, before parsing
    assert zip_errors(post(client, auth["bob"], [(junk, "junk.zip")])) == ["ZIP has 31 files, over the limit of 3"]
    assert assert_only_in_uploads(tmp_path, settings) == set()


def test_unreadable_zips_and_members(client: FlaskClient, auth: Headers, settings: Settings, tmp_path: Path) -> None:
    good = make_zip([("a.png", png(70))])
    sent = [(b"PK\x03\x04 not really", "fake.zip"), (good[: len(good) // 2], "cut.zip"), (b"", "empty.zip")]
    response = post(client, auth["bob"], sent)
    errors = {e["filename"]: e["error"] for e in response.get_json()["errors"]}
    assert errors == {"fake.zip": "not a readable ZIP", "cut.zip": "not a readable ZIP", "empty.zip": "empty file"}
    locked = patch_entry(make_zip([("secret.png", png(71)), ("open.png", png(72))]), "secret.png", flags=1)
    corrupt = bytearray(make_zip([("bad.png", bytes(range(256)) * 40), ("ok.png", png(73))]))
    at = corrupt.find(b"bad.png") + len(b"bad.png") + 20  # inside its compressed data
    corrupt[at : at + 8] = b"\xff" * 8
    response = post(client, auth["bob"], [(locked, "locked.zip"), (bytes(corrupt), "corrupt.zip")])
    errors = zip_errors(response)
    assert errors[0] == "encrypted member not opened: secret.png"
    assert errors[1].startswith("unreadable member in ZIP: bad.png")
    assert [i["filename"] for i in response.get_json()["items"]] == ["open.png", "ok.png"]
    assert assert_only_in_uploads(tmp_path, settings) == {"open.png", "ok.png"}
