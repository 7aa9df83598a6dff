"""Model operations behind ``teamocr export onnx`` and ``teamocr model add``.

Sources of torch networks: a registered or packaged version (:class:`daemon.versions.registry.ModelRegistry`)
or training checkpoints (``engine.training.checkpoint``). Every ONNX file written is verified
against its torch network on real images (``engine.export.verify_onnx``) before it is kept.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from daemon.versions.registry import ModelRegistry, ModelVersion, ModelVersionError, check_team, new_name
from engine.errors import ModelError
from engine.export import KINDS, Parity, export_onnx, quantize_int8, verify_onnx
from engine.weights import ModelFiles, load_charset, torch_modules

log = logging.getLogger(__name__)

REPO_IMAGES = Path(__file__).resolve().parents[1] / "tests" / "images"


def default_images() -> list[Path]:
    """The repository's test images (the export is checked on these unless others are given)."""
    return sorted(REPO_IMAGES.glob("*.png")) if REPO_IMAGES.is_dir() else []


def image_list(paths: Sequence[Path] | None) -> list[Path]:
    """Files as given, folders expanded to their PNG/JPEG files; the default set when empty."""
    if not paths:
        found = default_images()
        if not found:
            raise ModelVersionError("no images to verify the export on: pass --images FILE_OR_FOLDER")
        return found
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")))
        elif path.is_file():
            out.append(path)
        else:
            raise ModelVersionError(f"{path}: no such image or folder")
    if not out:
        raise ModelVersionError(f"no images found in {', '.join(map(str, paths))}")
    return out


@dataclass
class Networks:
    """Both torch networks of one model set, their labels, and where they came from."""

    model_set: str
    modules: dict[str, nn.Module]
    charset: list[str]
    source: str
    checkpoints: dict[str, Any] = field(default_factory=dict)  # kind -> engine Checkpoint, if any


def networks_of(registry: ModelRegistry, version: str) -> Networks:
    """The torch networks of a packaged or registered version."""
    files = registry.files(version)
    det, rec = _torch(files)
    return Networks(files.name, {"det": det, "rec": rec}, load_charset(files.charset), version)


def with_checkpoints(base: Networks, paths: dict[str, Path]) -> Networks:
    """``base`` with the networks of the given checkpoints (kind -> path) put in."""
    from engine.training.checkpoint import load_checkpoint

    modules, charset, loaded = dict(base.modules), base.charset, {}
    for kind, path in paths.items():
        try:
            checkpoint = load_checkpoint(path)
        except ModelError as exc:
            raise ModelVersionError(str(exc)) from exc
        if checkpoint.kind != kind:
            raise ModelVersionError(f"{path}: a {checkpoint.kind} checkpoint, given as the {kind} network")
        if checkpoint.model_set != base.model_set:
            raise ModelVersionError(
                f"{path}: a {checkpoint.model_set} {kind} network; the base {base.source} is {base.model_set}"
            )
        modules[kind] = checkpoint.module
        loaded[kind] = checkpoint
        if kind == "rec" and checkpoint.charset:
            charset = list(checkpoint.charset)
    sources = ", ".join(str(p) for p in paths.values())
    return Networks(base.model_set, modules, charset, f"{sources} (on {base.source})", loaded)


def _torch(files: ModelFiles) -> tuple[nn.Module, nn.Module]:
    try:
        return torch_modules(files)
    except ModelError as exc:
        raise ModelVersionError(str(exc)) from exc


def write_charset(labels: list[str], path: Path) -> Path:
    """A dictionary file for CTC ``labels`` (blank first, space last, as ``load_charset`` gives)."""
    if len(labels) < 3 or labels[0] != "<blank>" or labels[-1] != " ":
        raise ModelVersionError(f"{path}: labels must start with '<blank>' and end with ' '")
    path.write_text("".join(f"{c}\n" for c in labels[1:-1]), encoding="utf-8")
    return path


def export_networks(
    nets: Networks,
    kinds: Sequence[str],
    out: Path,
    images: Sequence[Path],
    *,
    sizes: dict[str, tuple[int, int]] | None = None,
    int8: bool = False,
    threads: int = 1,
) -> dict[str, Any]:
    """Export ``kinds`` of ``nets`` into ``out`` (det.onnx, rec.onnx, charset.txt), verify each
    against torch, optionally add INT8 copies; returns a report (also written to parity.json)."""
    import json

    sizes = sizes or {}
    out.mkdir(parents=True, exist_ok=True)
    charset = write_charset(nets.charset, out / "charset.txt")
    report: dict[str, Any] = {"source": nets.source, "model_set": nets.model_set, "files": {}, "parity": {}}
    written = {k: export_onnx(nets.modules[k], k, out / f"{k}.onnx", size=sizes.get(k)) for k in kinds}
    files = ModelFiles(
        nets.model_set, written.get("det", out / "det.onnx"), written.get("rec", out / "rec.onnx"), charset, "export"
    )
    for kind, path in written.items():
        parity = verify_onnx(kind, path, nets.modules, files, images, size=sizes.get(kind), threads=threads)
        report["files"][kind] = str(path)
        report["parity"][kind] = _checked(parity).to_dict()
        if int8 and kind == "det":
            # the detector is all convolutions: dynamic INT8 quantises only matrix products
            log.info("the detector has no matrix products to quantise: no INT8 copy")
        elif int8:
            quant = quantize_int8(path, out / f"{kind}.int8.onnx")
            # INT8 reads differently by design; its figures are reported, not enforced
            q = verify_onnx(kind, quant, nets.modules, files, images, size=sizes.get(kind), threads=threads)
            report["files"][f"{kind}_int8"] = str(quant)
            report["parity"][f"{kind}_int8"] = q.to_dict()
    report["files"]["charset"] = str(charset)
    (out / "parity.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return report


def _checked(parity: Parity) -> Parity:
    try:
        return parity.check()
    except ModelError as exc:
        raise ModelVersionError(str(exc)) from exc


@dataclass
class Added:
    """A registered version and how its exports compared with torch."""

    version: ModelVersion
    parity: dict[str, dict[str, Any]]


def add_from_checkpoints(
    registry: ModelRegistry,
    base: str,
    checkpoints: dict[str, Path],
    images: Sequence[Path],
    *,
    name: str | None = None,
    note: str = "",
    team: str | None = None,
    threads: int = 1,
) -> Added:
    """Register a version: ``base``'s networks with the checkpoints' put in, exported and verified.
    ``team`` owns it (its admins see it); None makes it the operators' (see ``visible_to``)."""
    if not checkpoints:
        raise ModelVersionError("give at least one checkpoint (--det or --rec)")
    check_team(team)
    base_version = registry.get(base)
    nets = with_checkpoints(networks_of(registry, base), checkpoints)
    changed = sorted(checkpoints)
    name = name or new_name(nets.model_set, "+".join(changed))
    base_files = registry.files(base)
    staging = registry.stage(name)
    try:
        charset = write_charset(nets.charset, staging / "charset.txt")
        saved: dict[str, str | None] = {"det": None, "rec": None}
        for kind in KINDS:
            if kind in checkpoints:
                export_onnx(nets.modules[kind], kind, staging / f"{kind}.onnx")
                saved[kind] = _save_checkpoint(nets, kind, staging / f"{kind}.pt")
            else:
                shutil.copyfile(getattr(base_files, kind), staging / f"{kind}.onnx")
                old = getattr(base_files, f"{kind}_checkpoint")
                if old is not None:
                    shutil.copyfile(old, staging / f"{kind}.pt")
                    saved[kind] = f"{kind}.pt"
        files = ModelFiles(nets.model_set, staging / "det.onnx", staging / "rec.onnx", charset, name)
        parity = {
            kind: {
                **_checked(
                    verify_onnx(kind, staging / f"{kind}.onnx", nets.modules, files, images, threads=threads)
                ).to_dict(),
                "onnx": f"{kind}.onnx",
            }
            for kind in changed
        }
        metrics: dict[str, Any] = {"parity": parity}
        for kind, checkpoint in nets.checkpoints.items():
            if checkpoint.meta.get("metrics"):
                metrics[kind] = checkpoint.meta["metrics"]
        manifest = ModelVersion(
            version=name,
            model_set=nets.model_set,
            created_at=_now(),
            change=f"fine-tune {'+'.join(changed)}",
            det="det.onnx",
            rec="rec.onnx",
            charset="charset.txt",
            parent=base_version.version,
            det_checkpoint=saved["det"],
            rec_checkpoint=saved["rec"],
            note=note,
            metrics=metrics,
            team=team,
        )
        return Added(registry.commit(staging, manifest), parity)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _save_checkpoint(nets: Networks, kind: str, path: Path) -> str:
    from engine.training.checkpoint import save_checkpoint

    checkpoint = nets.checkpoints[kind]
    save_checkpoint(
        path,
        kind=kind,
        model_set=nets.model_set,
        module=nets.modules[kind],
        charset=nets.charset if kind == "rec" else None,
        meta=checkpoint.meta,
    )
    return path.name


def add_from_onnx(
    registry: ModelRegistry,
    base: str,
    graphs: dict[str, Path],
    images: Sequence[Path],
    *,
    charset: Path | None = None,
    name: str | None = None,
    note: str = "",
    team: str | None = None,
    threads: int = 1,
) -> Added:
    """Register a version from ONNX graphs (the others from ``base``), checked to load and read
    ``images`` with ONNX Runtime. Such a version runs on the ONNX Runtime backend. ``team`` owns
    it, as for :func:`add_from_checkpoints`."""
    from config.settings import EngineSettings
    from engine.pipeline import build_engine

    if not graphs:
        raise ModelVersionError("give at least one ONNX graph (--det-onnx or --rec-onnx)")
    check_team(team)
    base_version = registry.get(base)
    base_files = registry.files(base)
    name = name or new_name(base_version.model_set, "+".join(sorted(graphs)))
    staging = registry.stage(name)
    try:
        for kind in KINDS:
            source = graphs.get(kind) or getattr(base_files, kind)
            if not Path(source).is_file():
                raise ModelVersionError(f"{source}: no such ONNX file")
            shutil.copyfile(source, staging / f"{kind}.onnx")
        shutil.copyfile(charset or base_files.charset, staging / "charset.txt")
        files = ModelFiles(
            base_version.model_set, staging / "det.onnx", staging / "rec.onnx", staging / "charset.txt", name
        )
        try:
            engine = build_engine(EngineSettings(backend="onnxruntime", threads=threads), files)
            lines = sum(len(engine.ocr(str(p)).lines) for p in images)
        except ModelError as exc:
            raise ModelVersionError(f"the ONNX graphs do not run: {exc}") from exc
        if images and lines == 0:
            raise ModelVersionError(f"the ONNX graphs read no text at all on {len(images)} test images")
        smoke = {"images": len(images), "lines": lines}
        manifest = ModelVersion(
            version=name,
            model_set=base_version.model_set,
            created_at=_now(),
            change=f"import onnx {'+'.join(sorted(graphs))}",
            det="det.onnx",
            rec="rec.onnx",
            charset="charset.txt",
            parent=base_version.version,
            note=note,
            metrics={"smoke": smoke},
            team=team,
        )
        return Added(registry.commit(staging, manifest), {"smoke": smoke})
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _now() -> float:
    import time

    return time.time()
