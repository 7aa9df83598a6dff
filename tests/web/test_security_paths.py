"""No API call or upload reads or writes outside the shared and data folders.

Upload file names and channel names of every hostile shape land inside the upload folder or are
refused with a 4xx; a channel or upload folder replaced by a symlink leading outside is refused;
a result whose source file was later replaced by a link leading outside is no longer served.
(tests/web/test_uploads.py covers ``../`` and sub-folder names and the ZIP member paths.)
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from config.settings import Settings
from tests.web.test_api import add_result, write_image
from tests.web.test_uploads import assert_only_in_uploads, files_under, png, post
from web.services import Services
from web.upload_names import MAX_NAME_BYTES

HOSTILE_NAMES = {
    "absolute": "/etc/x.png",
    "nul_byte": "x.png\x00.sh",
    "nul_in_stem": "a\x00/../../x.png",
    "backslashes": "..\\..\\win.png",
    "drive_letter_backslash": "C:\\Windows\\drive.png",
    "drive_letter_relative": "C:drive.png",
    "unc_path": "\\\\server\\share\\x.png",
    "url_encoded_dots": "%2e%2e%2f%2e%2e%2fx.png",
    "unicode_slash_lookalike": "..\u2215..\u2215x.png",
    "fullwidth_dots": "\uff0e\uff0e/x.png",
    "very_long": "y" * 5000 + ".png",
    "very_long_multibyte": "长" * 3000 + ".png",
    "only_dots": "....png",
    "trailing_dot_space": "x.png. . ",
    "dev_null": "/dev/null",
    "proc_self": "/proc/self/environ.png",
}


def test_upload_names_stay_in_the_upload_folder(
    client: FlaskClient, auth: dict, settings: Settings, tmp_path: Path
) -> None:
    """All the hostile names in one request (one app for all: cheap), each its own part and item."""
    outside = tmp_path / "outside" / "abs.png"  # an absolute name into a real, writable folder
    outside.parent.mkdir()
    sent = [*HOSTILE_NAMES.values(), str(outside)]
    response = post(client, auth["bob"], [(png(i), name) for i, name in enumerate(sent)])
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    # "x.png\x00.sh" and "/dev/null" have no image's extension but a PNG's content: taken by content,
    # under a safe name with the extension the content calls for (web.upload_names.by_content)
    assert body["errors"] == []
    names = assert_only_in_uploads(tmp_path, settings)
    assert {item["filename"] for item in body["items"]} == names and len(names) == len(sent)
    assert {"x.png.sh.png", "null.png"} <= names
    assert all(
        len(name.encode()) <= MAX_NAME_BYTES
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and not name.startswith(".")
        for name in names
    )
    assert not outside.exists()


HOSTILE_CHANNELS = [
    "..",
    "../..",
    "/etc",
    "finance/../..",
    "finance/x",
    "a\x00b",
    "..\\x",
    ".",
    ".git",
    "@eaDir",
    "C:",
    "x" * 300,
    "a\nb",
    "~$x",
    "uploads/../../..",
]


def test_hostile_channel_names_are_refused(client: FlaskClient, auth: dict, settings: Settings, tmp_path: Path) -> None:
    for channel in HOSTILE_CHANNELS:
        response = post(client, auth["alice"], [(png(1), "a.png")], channel=channel)
        assert 400 <= response.status_code < 500, (channel, response.get_json())
        assert response.get_json()["error"]
    assert files_under(tmp_path, skip=settings.data_dir) == set()


@pytest.mark.parametrize("linked", ["channel", "uploads"])
def test_a_symlinked_upload_folder_leading_outside_is_refused(
    client: FlaskClient, auth: dict, settings: Settings, tmp_path: Path, linked: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    channel = settings.shared_dir / "finance"
    if linked == "channel":
        channel.symlink_to(outside, target_is_directory=True)
    else:
        channel.mkdir()
        (channel / "uploads").symlink_to(outside, target_is_directory=True)
    response = post(client, auth["bob"], [(png(2), "a.png")], channel="finance")
    assert 400 <= response.status_code < 500, response.get_json()
    assert str(outside) not in response.get_json()["error"] and str(tmp_path) not in response.get_json()["error"]
    assert list(outside.rglob("*")) == [] or all(p.is_dir() for p in outside.rglob("*"))


def test_source_replaced_by_a_link_outside_is_no_longer_served(
    client: FlaskClient, auth: dict, svc: Services, tmp_path: Path
) -> None:
    write_image(svc.settings.shared_dir / "finance" / "scan.png")
    rec = add_result(svc, "finance", "scan.png")
    for kind in ("image", "annotated"):
        assert client.get(f"/api/v1/results/{rec.id}/{kind}", headers=auth["bob"]).status_code == 200
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret bytes")
    Path(rec.path).unlink()
    Path(rec.path).symlink_to(secret)
    for kind in ("image", "annotated"):
        response = client.get(f"/api/v1/results/{rec.id}/{kind}", headers=auth["bob"])
        assert response.status_code == 410 and b"secret" not in response.data


def test_channel_folder_replaced_by_a_link_outside_is_no_longer_served(
    client: FlaskClient, auth: dict, svc: Services, tmp_path: Path
) -> None:
    write_image(svc.settings.shared_dir / "finance" / "scan.png")
    rec = add_result(svc, "finance", "scan.png")
    elsewhere = tmp_path / "elsewhere"
    (svc.settings.shared_dir / "finance").rename(elsewhere)
    (svc.settings.shared_dir / "finance").symlink_to(elsewhere, target_is_directory=True)
    for kind in ("image", "annotated"):
        assert client.get(f"/api/v1/results/{rec.id}/{kind}", headers=auth["bob"]).status_code == 410


@pytest.mark.parametrize("result_id", ["..", "../../etc/passwd", "%2e%2e", "a\x00b", "x" * 5000, "/etc/passwd"])
def test_odd_result_ids_are_plain_404s(client: FlaskClient, auth: dict, result_id: str) -> None:
    for suffix in ("", "/image", "/annotated"):
        response = client.get(f"/api/v1/results/{result_id}{suffix}", headers=auth["bob"])
        assert response.status_code == 404 and response.is_json, (suffix, response.status_code)


def test_upload_form_with_only_a_hostile_blob(
    client: FlaskClient, auth: dict, settings: Settings, tmp_path: Path
) -> None:
    """A pasted clipboard image has no name; a hostile mimetype gives it no path either."""
    data = {"files": [(BytesIO(png(3)), "", "image/png"), (BytesIO(b"x"), "", "../../x")]}
    response = client.post("/api/v1/upload", data=data, headers=auth["bob"], content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    assert assert_only_in_uploads(tmp_path, settings) == {"upload.png"}


@pytest.mark.parametrize("blocker", ["uploads", "uploads/{today}"])
def test_a_file_where_the_upload_folder_should_be(
    client: FlaskClient, auth: dict, settings: Settings, blocker: str
) -> None:
    """Someone dropped a file named like the upload folder: a clear refusal, not a server error."""
    import datetime

    path = settings.shared_dir / "finance" / blocker.format(today=datetime.date.today().isoformat())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"in the way")
    response = post(client, auth["bob"], [(png(4), "a.png")], channel="finance")
    assert 400 <= response.status_code < 500, response.get_json()
    assert "upload folder" in response.get_json()["error"]
    assert str(settings.shared_dir) not in response.get_json()["error"]
    assert path.read_bytes() == b"in the way"
