"""Optional files for other tools: per-image JSON and a PNG with the boxes drawn.

Written under ``<data_dir>/outputs/<run>/json`` and ``.../visualization``; off by default. The
folders are 0700 and the files 0600 (they hold the team's text, as the store does). The drawing is
made from the very bytes the worker read: a file no longer holding the job's content (MD5), or a
link now, is not drawn.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from daemon.private import private_dir, write_private
from engine.errors import EngineError
from engine.preprocess import load_image

log = logging.getLogger(__name__)

# O_NOFOLLOW: a source swapped for a link is not followed; O_NONBLOCK: nor is a FIFO waited on.
_SOURCE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class SourceChanged(OSError):
    """The job's file no longer holds the bytes the worker read (or is no longer a plain file)."""


class OutputWriter:
    """Writes one run's files; a failure here is logged and never fails the job."""

    def __init__(self, root: Path, max_pixels: int, max_bytes: int, run: str | None = None) -> None:
        self.root = root
        self.run = run or time.strftime("%Y%m%d-%H%M%S")
        self.json_dir = root / self.run / "json"
        self.vis_dir = root / self.run / "visualization"
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes

    def write(self, job: Any, result: dict[str, Any]) -> None:
        stem = f"{job.id}_{Path(job.filename).stem}"[:200]
        try:
            for folder in (self.root, self.root / self.run, self.json_dir, self.vis_dir):
                private_dir(folder)
            doc = {"id": job.id, "md5": job.md5, "path": job.path, "channel": job.channel, **result}
            write_private(self.json_dir / f"{stem}.json", json.dumps(doc, ensure_ascii=False, indent=1).encode())
            data = job_bytes(job.disk_path, job.size, job.md5, self.max_bytes)
            image = load_image(data, name=job.filename, max_pixels=self.max_pixels, max_bytes=self.max_bytes)
            for line in result["lines"]:
                pts = np.array(line["points"], dtype=np.int32).reshape(-1, 1, 2)
                cv2.polylines(image, [pts], True, (0, 0, 255), 2)
            ok, png = cv2.imencode(".png", image)
            if ok:
                write_private(self.vis_dir / f"{stem}.png", png.tobytes())
        except (OSError, EngineError) as exc:
            log.warning("%s: could not write output files: %s", job.path, exc)


def remove_outputs(root: Path, result_id: str) -> int:
    """Delete the output files written for ``result_id`` (every run's JSON and drawing); how many."""
    removed = 0
    for found in root.glob(f"*/*/{result_id}_*"):
        if found.parent.name in ("json", "visualization") and found.is_file() and not found.is_symlink():
            found.unlink(missing_ok=True)
            removed += 1
    return removed


def job_bytes(path: str, size: int, md5: str, max_bytes: int) -> bytes:
    """The ``size`` bytes at ``path`` when their MD5 is ``md5`` and the path is no link; else
    :class:`SourceChanged` (or the ``OSError`` of the open)."""
    if size > max_bytes:
        raise SourceChanged(f"{path}: {size} bytes, over the limit of {max_bytes}")
    fd = os.open(path, _SOURCE_FLAGS)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise SourceChanged(f"{path}: no longer a regular file")
        data = handle.read(size + 1)
    if len(data) != size or hashlib.md5(data).hexdigest() != md5:
        raise SourceChanged(f"{path}: changed since the worker read it; not drawn")
    return data
