"""The rooms of the code and the one-way imports between them (README, Layout).

``cli -> web -> daemon -> engine``; everyone may read ``config``, which reads nothing of ours.
Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("config", "engine", "daemon", "web", "cli")
# what each package may import of ours, besides itself
ALLOWED = {
    "config": set(),
    "engine": {"config"},
    "daemon": {"config", "engine"},
    "web": {"config", "engine", "daemon"},
    "cli": {"config", "engine", "daemon", "web"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(OURS)


@pytest.mark.parametrize("package", OURS)
def test_imports_run_one_way(package: str) -> None:
    wrong = {
        str(path.relative_to(REPO)): sorted(found - ALLOWED[package] - {package})
        for path in sorted((REPO / package).rglob("*.py"))
        if (found := imported_packages(path)) - ALLOWED[package] - {package}
    }
    assert not wrong, f"{package} imports what it must not: {wrong}"


def test_the_command_line_is_one_program() -> None:
    gone = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert gone.returncode != 0 and "No module named daemon.cli" in gone.stderr
    done = subprocess.run([sys.executable, "-m", "cli", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: teamocr")
    for command in ("ocr", "run", "watch", "worker", "web", "export", "model", "train", "corrections", "user"):
        assert f"    {command}" in done.stdout, command
