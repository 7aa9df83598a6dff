"""File names as people read them, whatever encoding wrote them.

Linux keeps a file name as bytes; Python hands undecodable bytes over as lone surrogates, which
JSON, Redis and SQLite cannot carry. Names from old Windows tools and ZIPs made on Chinese Windows
are often GBK. The rule, in order: the name's bytes as UTF-8; else as GB18030 (a superset of GBK
and GB2312); else UTF-8 with each byte that does not decode written as ``\\xNN``. The file on disk
is never renamed; only what is shown and stored is decoded.
"""

from __future__ import annotations

import os

LEGACY = "gb18030"


def shown_name(name: str) -> str:
    """``name`` (a path or a file name, as ``os`` gives it) decoded by the rule above."""
    raw = os.fsencode(name)
    for encoding in ("utf-8", LEGACY):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "backslashreplace")
