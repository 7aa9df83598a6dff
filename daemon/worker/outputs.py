"""Optional files for other tools: per-image JSON and a PNG with the boxes drawn.

Written under ``<data_dir>/outputs/<run>/json`` and ``.../visualization``; off by default.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import EngineError
from engine.preprocess import load_image

log = logging.getLogger(__name__)


class OutputWriter:
    """Writes one run's files; a failure here is logged and never fails the job."""

    def __init__(self, root: Path, max_pixels: int, max_bytes: int, run: str | None = None) -> None:
        self.run = run or time.strftime("%Y%m%d-%H%M%S")
        self.json_dir = root / self.run / "json"
        self.vis_dir = root / self.run / "visualization"
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes

    def write(self, job: Any, result: dict[str, Any]) -> None:
        stem = f"{job.id}_{Path(job.filename).stem}"[:200]
        try:
            self.json_dir.mkdir(parents=True, exist_ok=True)
            self.vis_dir.mkdir(parents=True, exist_ok=True)
            doc = {"id": job.id, "md5": job.md5, "path": job.path, "channel": job.channel, **result}
            (self.json_dir / f"{stem}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), "utf-8")
            image = load_image(job.path, max_pixels=self.max_pixels, max_bytes=self.max_bytes)
            for line in result["lines"]:
                pts = np.array(line["points"], dtype=np.int32).reshape(-1, 1, 2)
                cv2.polylines(image, [pts], True, (0, 0, 255), 2)
            ok, png = cv2.imencode(".png", image)
            if ok:
                (self.vis_dir / f"{stem}.png").write_bytes(png.tobytes())
        except (OSError, EngineError) as exc:
            log.warning("%s: could not write output files: %s", job.path, exc)
