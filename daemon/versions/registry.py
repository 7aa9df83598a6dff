"""Model versions: the packaged sets plus registered ones in ``data_dir/models/<version>/``.

A registered version is a folder with ``manifest.json`` (version, created_at, parent, change,
model_set, file names, team, note, metrics), the two ONNX graphs, the recogniser's dictionary and,
for the torch backend, teamocr checkpoints of the same weights. Folders are written under a
temporary name and renamed into place, so a half-written version is never listed.
The packaged sets are versions too (``PP-OCRv6-small``, ``PP-OCRv6-tiny``), always present.

Who may see a version (:meth:`ModelVersion.visible_to`): the packaged sets, everyone; a version
a team's fine-tune job made (``team`` in its manifest), that team; a version without a team (made
on the command line by whoever runs the service, manifests written before teams were recorded),
the operators only. Operators see every version. To a team, another team's version is unknown.

Which version the workers use is the Redis key :data:`CURRENT_KEY`; when it is unset they use
the packaged set of ``engine.model_set``. ``daemon.worker.hotswap`` follows the key in each worker.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from daemon.errors import DaemonError
from engine.weights import ModelFiles, builtin_sets, builtin_version, model_files

log = logging.getLogger(__name__)

CURRENT_KEY = "teamocr:model:current"
MANIFEST = "manifest.json"
FOLDER = "models"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TEAM = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # the accounts' team names; always fullmatch


class ModelVersionError(DaemonError):
    """A version is unknown, malformed, or cannot be registered."""


@dataclass(frozen=True)
class ModelVersion:
    """One version's manifest. File names are relative to the version's folder (absolute for
    the packaged sets, whose files live in the weights package)."""

    version: str
    model_set: str
    created_at: float
    change: str  # "packaged", "fine-tune rec", "fine-tune det", "import onnx", ...
    det: str
    rec: str
    charset: str
    parent: str | None = None
    det_checkpoint: str | None = None
    rec_checkpoint: str | None = None
    note: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    builtin: bool = False
    team: str | None = None  # the team whose fine-tune job made it; None: the operators'

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def visible_to(self, team: str | None) -> bool:
        """Whether a reader of ``team`` may see this version; ``None`` is an operator, who sees
        every version."""
        return team is None or self.builtin or self.team == team

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: Path) -> ModelVersion:
        names = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as exc:
            raise ModelVersionError(f"{where}: not a model manifest ({exc})") from exc


def check_name(name: str) -> str:
    """A version name: letters, digits, '.', '_' and '-', at most 64, not starting with a dot."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ModelVersionError(
            f"bad version name {name!r}: use letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def check_team(team: str | None) -> str | None:
    """A version's owning team: a team name (letters, digits, '_', '.', '@', '-', at most 64) or None."""
    if team is not None and (not isinstance(team, str) or not _TEAM.fullmatch(team)):
        raise ModelVersionError(f"bad team name {team!r}: use 1-64 letters, digits or _ . @ -")
    return team


def _builtin(model_set: str) -> ModelVersion:
    files = model_files(model_set)
    return ModelVersion(
        version=files.version,
        model_set=model_set,
        created_at=0.0,
        change="packaged",
        det=str(files.det),
        rec=str(files.rec),
        charset=str(files.charset),
        builtin=True,
        note=f"PP-OCRv6 {model_set}, shipped with teamocr",
    )


class ModelRegistry:
    """The versions under ``root`` (``data_dir/models``) and the packaged ones."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> ModelRegistry:
        return cls(Path(data_dir) / FOLDER)

    def list(self) -> builtins.list[ModelVersion]:
        """Packaged versions first, then registered ones, oldest first. Broken folders are skipped."""
        found = [_builtin(s) for s in builtin_sets()]
        if self.root.is_dir():
            registered = []
            for folder in sorted(self.root.iterdir()):
                if folder.name.startswith(".") or not (folder / MANIFEST).is_file():
                    continue
                try:
                    registered.append(self._read(folder))
                except ModelVersionError as exc:
                    log.warning("skipping model version: %s", exc)
            found.extend(sorted(registered, key=lambda v: (v.created_at, v.version)))
        return found

    def visible(self, team: str | None) -> builtins.list[ModelVersion]:
        """The versions a reader of ``team`` may see (``None``: an operator, all of them)."""
        return [v for v in self.list() if v.visible_to(team)]

    def names(self, team: str | None = None) -> builtins.list[str]:
        return [v.version for v in self.visible(team)]

    def get(self, name: str, team: str | None = None) -> ModelVersion:
        """A version by name; to a reader of ``team`` another team's version is as unknown as one
        that does not exist (same error, same message)."""
        for model_set in builtin_sets():
            if name == builtin_version(model_set):
                return _builtin(model_set)
        check_name(name)
        folder = self.root / name
        version = self._read(folder) if (folder / MANIFEST).is_file() else None
        if version is None or not version.visible_to(team):
            raise ModelVersionError(f"unknown model version {name!r} (known: {', '.join(self.names(team))})")
        return version

    def files(self, name: str) -> ModelFiles:
        """The version's files, checked to exist, for ``engine.pipeline.build_engine``."""
        version = self.get(name)
        if version.builtin:
            return model_files(version.model_set)
        folder = self.root / name

        def path(rel: str | None) -> Path | None:
            if rel is None:
                return None
            full = folder / rel
            if not full.is_file():
                raise ModelVersionError(f"model version {name}: {full} is missing")
            return full

        det, rec, charset = path(version.det), path(version.rec), path(version.charset)
        assert det is not None and rec is not None and charset is not None
        return ModelFiles(
            version.model_set,
            det,
            rec,
            charset,
            version.version,
            path(version.det_checkpoint),
            path(version.rec_checkpoint),
        )

    def stage(self, name: str) -> Path:
        """A fresh temporary folder to assemble version ``name`` in (then :meth:`commit`)."""
        check_name(name)
        if name in self.names():
            raise ModelVersionError(f"model version {name!r} exists already")
        staging = self.root / f".{name}.staging"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        return staging

    def commit(self, staging: Path, manifest: ModelVersion) -> ModelVersion:
        """Write the manifest into ``staging`` and rename it into place as the version."""
        check_team(manifest.team)
        for rel in (manifest.det, manifest.rec, manifest.charset, manifest.det_checkpoint, manifest.rec_checkpoint):
            if rel is not None and not (staging / rel).is_file():
                raise ModelVersionError(f"model version {manifest.version}: {rel} was not written")
        text = json.dumps(manifest.to_dict(), ensure_ascii=False, indent=2)
        (staging / MANIFEST).write_text(text + "\n", encoding="utf-8")
        final = self.root / check_name(manifest.version)
        if final.exists():
            raise ModelVersionError(f"model version {manifest.version!r} exists already")
        staging.rename(final)
        log.info("registered model version %s (%s, parent %s)", manifest.version, manifest.change, manifest.parent)
        return manifest

    def _read(self, folder: Path) -> ModelVersion:
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelVersionError(f"{path}: cannot read ({exc})") from exc
        if not isinstance(data, dict):
            raise ModelVersionError(f"{path}: not a JSON object")
        version = ModelVersion.from_dict(data, path)
        if version.version != folder.name:
            raise ModelVersionError(f"{path}: names version {version.version!r}, folder is {folder.name!r}")
        return version


def default_version(model_set: str) -> str:
    """The version workers use while no version was chosen: the packaged ``model_set``."""
    return builtin_version(model_set)


def current_version(client: redis.Redis, model_set: str) -> str:
    """The version the workers should use now."""
    value = client.get(CURRENT_KEY)
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return value or default_version(model_set)


def use_version(client: redis.Redis, registry: ModelRegistry, name: str) -> ModelVersion:
    """Make ``name`` the workers' version (they switch within about a second); it must exist
    with all its files."""
    registry.files(name)
    version = registry.get(name)
    client.set(CURRENT_KEY, name)
    log.info("model version %s is now current", name)
    return version


def new_name(model_set: str, kind: str, clock: float | None = None) -> str:
    """A default name for a new version, e.g. ``small-rec-20261121-090512``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(clock if clock is not None else time.time()))
    return f"{model_set}-{kind}-{stamp}"
