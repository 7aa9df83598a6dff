"""File names as people read them, whatever encoding wrote them.

Linux keeps a file name as bytes; Python hands undecodable bytes over as lone surrogates, which
JSON, Redis and SQLite cannot carry. Names from old Windows tools and ZIPs made on Chinese Windows
are often GBK. The rule, for each part of a path in turn: its bytes as UTF-8; else as GB18030 (a
superset of GBK and GB2312); else UTF-8 with each byte that does not decode written as ``\\xNN``.
The file on disk is never renamed; only what is shown and stored is decoded. A job carries the
name's own bytes beside the decoded one (:func:`path_bytes`, :func:`disk_path`), so the worker
opens the very file intake hashed.
"""

from __future__ import annotations

import os

LEGACY = "gb18030"


def shown_name(name: str) -> str:
    """``name`` (a path or a file name, as ``os`` gives it) decoded by the rule above."""
    if is_utf8(name):
        return name
    return "/".join(_decoded(part) for part in os.fsencode(name).split(b"/"))


def _decoded(raw: bytes) -> str:
    for encoding in ("utf-8", LEGACY):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "backslashreplace")


def is_utf8(text: str) -> bool:
    """False for a name holding undecodable bytes (Python keeps them as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def path_bytes(path: str) -> str:
    """What a message carries of a path that is not UTF-8: its bytes in hex ("" for a UTF-8 path,
    which travels as it is)."""
    return "" if is_utf8(path) else os.fsencode(path).hex()


def disk_path(shown: str, raw: str) -> str:
    """The path to open: from its bytes (``raw``, :func:`path_bytes`) when there are any, else ``shown``."""
    return os.fsdecode(bytes.fromhex(raw)) if raw else shown
