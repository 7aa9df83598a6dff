"""A stand-in ``teamocr`` for fine-tune jobs whose timing the test decides.

Each call is recorded in ``HERE/calls.jsonl`` (its arguments and the default team it was given);
``corrections export ... --team TEAM`` waits until the test creates ``HERE/release-TEAM``;
``train`` answers a done line; every other command succeeds at once. Only the job runner's order
and bookkeeping are under test with it; the real commands have their own tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from web.training import TrainingCommands

GATE = """
import json, os, sys, time
from pathlib import Path

here, args = Path(sys.argv[1]), sys.argv[2:]
with open(here / "calls.jsonl", "a", encoding="utf-8") as out:
    out.write(json.dumps({"args": args, "default_team": os.environ.get("TEAMOCR_TEAMS__DEFAULT_TEAM")}) + "\\n")
if args[:2] == ["corrections", "export"]:
    team = args[args.index("--team") + 1]
    deadline = time.monotonic() + 120
    while not (here / f"release-{team}").exists():
        if time.monotonic() > deadline:
            sys.exit("never released")
        time.sleep(0.02)
elif args[0] == "train":
    print(json.dumps({"type": "done", "checkpoint": str(here / "best.pt")}), flush=True)
"""


def gate_commands(folder: Path) -> TrainingCommands:
    """Commands that run the gate, which keeps its files in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "gate.py"
    script.write_text(GATE, encoding="utf-8")
    return TrainingCommands(prefix=[sys.executable, str(script), str(folder)])


def release(folder: Path, *teams: str) -> None:
    """Let the teams' held exports finish."""
    for team in teams:
        (folder / f"release-{team}").touch()


def calls(folder: Path) -> list[dict[str, Any]]:
    """Every call the gate saw, in order."""
    path = folder / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
