"""What a member is shown of a result: its public item, with no server path in its ``error``.

A failure's cause is written where it happens (intake, worker, a share that went away) and may
name the file or its folder by the server's path (``/srv/share/sales/x.png``), or another file of
the server (a model, a cache). Members see paths of the shared folder relative to it
(``sales/x.png``; the folder itself is "the shared folder") and any other absolute path by its last
name only. The store keeps the error as written, for the operator; the logs have it too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from daemon.records import ResultRecord

SHARED_FOLDER = "the shared folder"
# An absolute POSIX path of two or more parts, not inside a word, a URL or a relative path.
_ABSOLUTE = re.compile(r"(?<![\w.~/:-])(?:/[^\s'\"/:,;()\[\]<>`|]+){2,}/?")


def redact_paths(text: str, shared_dir: Path) -> str:
    """``text`` with paths inside ``shared_dir`` made relative to it and other absolute paths cut
    to their last part."""
    for root in _roots(shared_dir):
        text = text.replace(root + os.sep, "")
        text = re.sub(re.escape(root) + r"(?![\w.-])", SHARED_FOLDER, text)
    return _ABSOLUTE.sub(lambda match: match.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def public_item(rec: ResultRecord, shared_dir: Path) -> dict[str, Any]:
    """``rec.to_public()`` with its error as :func:`redact_paths` makes it."""
    item = rec.to_public()
    if item.get("error"):
        item["error"] = redact_paths(str(item["error"]), shared_dir)
    return item


def _roots(shared_dir: Path) -> list[str]:
    """The shared folder as configured and as resolved (a mount point reached through a link),
    longest first so that one is never cut inside the other."""
    given = os.path.abspath(shared_dir).rstrip(os.sep)
    roots = {given, os.path.realpath(given).rstrip(os.sep)} - {""}
    return sorted(roots, key=len, reverse=True)
