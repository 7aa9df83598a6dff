"""Files an offline run writes: whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from daemon.errors import DaemonError


def write_whole(out: Path, data: bytes) -> None:
    """Write ``data`` to ``out`` under a temporary name, then rename it into place (its folder made
    as needed), so that ``out`` is never half written. Raises DaemonError naming the file."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        temporary = out.with_name(f".{out.name}.part")
        temporary.write_bytes(data)
        os.replace(temporary, out)
    except OSError as exc:
        raise DaemonError(f"cannot write {out}: {exc.strerror or exc}") from exc
