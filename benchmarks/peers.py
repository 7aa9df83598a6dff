"""The peer OCR packages of the speed benchmark, installed for the benchmark only.

RapidOCR 3.10 (``rapidocr``) and RapidOCR 5 (``rapidocr_ng``, its native C++ PP-OCRv6 engine) both
install a package named ``rapidocr``, so they cannot share an environment. Each goes with
``pip install --target`` (``--no-deps``: their dependencies are teamocr's own or already beside it)
into its own folder under a packages folder the benchmark owns, never into the project's
environment; a worker process puts that folder first on ``sys.path``.

``rapidocr_ng`` is pointed at the model files RapidOCR 3.10 ships in its wheel (PP-OCRv6 small
detector and recogniser) and at the dictionary RapidOCR 3.10 reads, which is stored in the
recogniser graph's metadata (``character``): both systems run the same networks.

:func:`peer_reader` builds a peer in a benchmark's worker process: image paths in, score.py's
lines out.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("benchmarks.peers")

Lines = list[dict[str, Any]]
Reader = Callable[[Sequence[str]], list[Lines]]  # image paths -> score.py lines per image


@dataclass(frozen=True)
class Peer:
    """A peer system: its PyPI requirement and the folder name it installs under."""

    name: str
    requirement: str

    def folder(self, packages: Path) -> Path:
        return packages / self.requirement.replace("==", "-")


RAPIDOCR = Peer("rapidocr", "rapidocr==3.10.0")
RAPIDOCR_NG = Peer("rapidocr_ng", "rapidocr_ng==5.0.0a5")
PEERS = {peer.name: peer for peer in (RAPIDOCR, RAPIDOCR_NG)}

# In RapidOCR 3.10's wheel, under rapidocr/models/.
DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
DICT_FILE = "ppocrv6_dict_from_rec_small.txt"


def install(peer: Peer, packages: Path) -> Path:
    """Install ``peer`` into its own folder under ``packages`` (once); return that folder."""
    target = peer.folder(packages)
    if (target / "rapidocr" / "__init__.py").is_file():
        return target
    log.info("installing %s into %s (for the benchmark only)", peer.requirement, target)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by an interrupted install
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(partial), peer.requirement],
        check=True,
    )
    partial.rename(target)  # whole or absent: an interrupted install is redone
    return target


@dataclass(frozen=True)
class SharedModels:
    """The PP-OCRv6 small files RapidOCR 3.10 runs, for ``rapidocr_ng``."""

    det: Path
    rec: Path
    charset: Path


def shared_models(packages: Path) -> SharedModels:
    """RapidOCR 3.10's packaged detector and recogniser, and its dictionary written out as a file."""
    models = install(RAPIDOCR, packages) / "rapidocr" / "models"
    det, rec = models / DET_MODEL, models / REC_MODEL
    for path in (det, rec):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not in the {RAPIDOCR.requirement} wheel")
    charset = packages / DICT_FILE
    if not charset.is_file():
        import onnxruntime as ort

        meta = ort.InferenceSession(str(rec), providers=["CPUExecutionProvider"]).get_modelmeta()
        characters = meta.custom_metadata_map.get("character")
        if not characters:
            raise ValueError(f"{rec}: no 'character' list in the graph's metadata")
        partial = charset.with_suffix(".partial")
        partial.write_text(characters.rstrip("\n") + "\n", encoding="utf-8")
        partial.rename(charset)
    return SharedModels(det, rec, charset)


def peer_reader(name: str, threads: int, packages: Path) -> Reader:
    """The peer ``name`` ("rapidocr" or "rapidocr_ng") built with ``threads`` threads, from its
    folder under ``packages``."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r} (expected one of: {', '.join(PEERS)})")
    return rapidocr_ng_reader(threads, packages) if name == RAPIDOCR_NG.name else rapidocr_reader(threads, packages)


def rapidocr_reader(threads: int, packages: Path) -> Reader:
    """Build RapidOCR 3.10 (its defaults, ``threads`` intra-op threads); return paths -> scorer lines."""
    sys.path.insert(0, str(RAPIDOCR.folder(packages)))
    from rapidocr import RapidOCR

    ocr = RapidOCR(
        params={
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )

    return lambda paths: [peer_lines(ocr(path)) for path in paths]


def peer_lines(result: Any) -> Lines:
    """A RapidOCR output (3.10 and 5 alike) as scorer lines."""
    boxes, txts = getattr(result, "boxes", None), getattr(result, "txts", None)
    if boxes is None or txts is None:
        return []
    return [{"text": t, "points": [[float(x), float(y)] for x, y in b]} for b, t in zip(boxes, txts)]


def rapidocr_ng_reader(threads: int, packages: Path) -> Reader:
    """Build ``rapidocr_ng`` on RapidOCR 3.10's PP-OCRv6 small files, no angle classifier, ``threads``
    threads; return paths -> scorer lines."""
    models = shared_models(packages)
    # Read by the native library when its pool starts (default min(16, cores)).
    os.environ["PPOCR_BENCH_THREADS"] = str(threads)
    sys.path.insert(0, str(RAPIDOCR_NG.folder(packages)))
    from rapidocr import RapidOCR, _native

    defaults = _native.default_options

    def capped() -> Any:
        # The recogniser also runs crops side by side in an outer pool (12 by default, capped by the
        # cores): held to the budget like the inner pool.
        options = defaults()
        for field in ("rec_parallelism", "batch_preprocess_parallelism", "image_batch_parallelism"):
            setattr(options, field, max(1, min(getattr(options, field), threads)))
        return options

    _native.default_options = capped
    ocr = RapidOCR(
        params={
            "Det.model_path": str(models.det),
            "Rec.model_path": str(models.rec),
            "Rec.rec_keys_path": str(models.charset),
            "Global.use_cls": False,
            "Global.log_level": "warning",
        }
    )
    return lambda paths: [peer_lines(ocr(path)) for path in paths]
