"""Where the fault and load tests leave their figures: printed, and merged into a JSON file when
``RELIABILITY_FIGURES`` names one (benchmarks/reliability.py reads it and prints one table).

Not a ``TEAMOCR_*`` name on purpose: the tests' autouse fixture clears those.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV = "RELIABILITY_FIGURES"


def report(scenario: str, figures: dict[str, Any]) -> None:
    print(f"\n{scenario}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    target = os.environ.get(ENV)
    if not target:
        return
    path = Path(target)
    data = json.loads(path.read_text("utf-8")) if path.exists() else {}
    data[scenario] = figures
    path.write_text(json.dumps(data, indent=2), "utf-8")
