"""Problems found in a training data set, collected so that the user sees all of them at once.

Every check adds a :class:`Problem` naming the file and (where there is one) the line; the reader
raises :class:`DataError` at the end when there were any. Only the first ``cap`` are kept, with a
count of the rest, so a badly broken set does not flood the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import EngineError

DEFAULT_CAP = 50
# Image names are looked up case-blind and with these spellings taken as one extension.
_SAME_EXTENSION = {".jpeg": ".jpg", ".jpe": ".jpg", ".tif": ".tiff"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data: where, and what."""

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.message}"


class DataError(EngineError):
    """The data set has problems; ``problems`` are the first ``cap``, ``total`` all of them."""

    def __init__(self, root: Path, problems: list[Problem], total: int) -> None:
        self.root = root
        self.problems = problems
        self.total = total
        lines = [f"{root}: {total} problem(s) in the training data, nothing was trained:"]
        lines += [f"  {p}" for p in problems]
        if total > len(problems):
            lines.append(f"  ... and {total - len(problems)} more")
        super().__init__("\n".join(lines))


@dataclass
class Problems:
    """Collects problems up to ``cap`` and counts the rest."""

    root: Path
    cap: int = DEFAULT_CAP
    items: list[Problem] = field(default_factory=list)
    total: int = 0

    def add(self, path: Path, line: int | None, message: str) -> None:
        self.total += 1
        if len(self.items) < self.cap:
            self.items.append(Problem(path, line, message))

    def raise_if_any(self) -> None:
        if self.total:
            raise DataError(self.root, self.items, self.total)


def read_lines(path: Path, problems: Problems) -> list[tuple[int, str]]:
    """A UTF-8 text file's (line number, line) pairs, byte-order mark dropped, ``\\r`` stripped;
    blank lines are problems (and left out). An unreadable file is a problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        problems.add(path, None, "file not found")
        return []
    except UnicodeDecodeError as exc:
        problems.add(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        return []
    except OSError as exc:
        problems.add(path, None, f"cannot read ({exc.strerror or exc})")
        return []
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.rstrip("\r")
        if not line.strip():
            problems.add(path, number, "blank line")
            continue
        out.append((number, line))
    return out


def check_relative(name: str, path: Path, line: int, problems: Problems) -> bool:
    """An image reference must be a relative, forward-slash path inside the data folder."""
    if "\\" in name:
        problems.add(path, line, f"backslash in image path {name!r}: use forward slashes")
        return False
    if name.startswith("/") or ".." in Path(name).parts:
        problems.add(path, line, f"image path {name!r} must be relative and stay inside the data folder")
        return False
    return True


class ImageFinder:
    """Finds ``name`` in a folder, also as ``x.JPG`` or ``x.jpeg`` when the list says ``x.jpg``."""

    def __init__(self) -> None:
        self._folders: dict[Path, dict[str, Path]] = {}

    def find(self, folder: Path, name: str) -> Path | None:
        exact = folder / name
        if exact.is_file():
            return exact
        target = exact.parent
        if target not in self._folders:
            index: dict[str, Path] = {}
            if target.is_dir():
                for entry in sorted(target.iterdir()):
                    index.setdefault(_key(entry.name), entry)
            self._folders[target] = index
        found = self._folders[target].get(_key(exact.name))
        return found if found is not None and found.is_file() else None


def _key(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot:
        return name.casefold()
    ext = "." + ext.casefold()
    return stem.casefold() + _SAME_EXTENSION.get(ext, ext)


def unknown_characters(text: str, known: set[str]) -> list[str]:
    """Characters of ``text`` that are not in the model's dictionary, each once, in order."""
    seen: list[str] = []
    for ch in text:
        if ch not in known and ch not in seen:
            seen.append(ch)
    return seen


def describe_chars(chars: list[str]) -> str:
    return ", ".join(f"{c!r} (U+{ord(c):04X})" for c in chars)
