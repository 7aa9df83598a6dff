"""The ``teamocr`` command line: ``teamocr ocr PATH...`` and ``teamocr run``.

This is the one place that wires settings, logging and the engine together. The engine is
imported only when a command needs it, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from config.errors import ConfigError
from config.settings import Settings, apply_overrides, load_settings
from config.values import CHOICES
from daemon.batch import EngineFactory, build_default_engine, expand_paths, run_ocr
from daemon.errors import DaemonError

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
RESULTS_NAME = "results.jsonl"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``teamocr`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="teamocr", description="Collaborative shared-folder OCR for zh/en images."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, metavar="FILE", help="settings file (TOML); default: $TEAMOCR_CONFIG"
    )
    common.add_argument("--log-level", choices=CHOICES["log_level"], help="override log_level")
    common.add_argument(
        "--workers", type=_positive_int, default=1, metavar="N",
        help="OCR processes, each loading the engine once (default 1)",
    )
    common.add_argument(
        "--model-set", choices=CHOICES["engine.model_set"], help="override engine.model_set"
    )
    common.add_argument(
        "--det-box-thresh", type=float, metavar="F", help="override engine.det_box_thresh (0-1)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ocr = commands.add_parser(
        "ocr", parents=[common], help="OCR image files and folders to JSON Lines",
        description="OCR image files and folders (recursively) and write one JSON object per "
        "image. Exit code 1 if any image failed.",
    )
    ocr.add_argument("paths", nargs="+", metavar="PATH", help="image file or folder")
    ocr.add_argument("--jsonl", type=Path, metavar="OUT", help="write here instead of stdout")
    ocr.set_defaults(handler=_cmd_ocr)

    run = commands.add_parser(
        "run", parents=[common], help="OCR the shared folder into data_dir/results.jsonl",
        description="OCR every image under shared_dir into data_dir/results.jsonl "
        "(the folder-watching daemon replaces this in a later version).",
    )
    run.set_defaults(handler=_cmd_run)
    return parser


def main(argv: Sequence[str] | None = None, *, engine_factory: EngineFactory | None = None) -> int:
    """Run ``teamocr``; return the exit code (0 ok, 1 some images failed, 2 could not run).

    ``engine_factory`` replaces ``engine.pipeline.build_engine`` (tests pass a fake).
    """
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"teamocr: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT, stream=sys.stderr)
    try:
        return args.handler(args, settings, engine_factory or build_default_engine)
    except DaemonError as exc:
        log.error("%s", exc)
        return 2


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    overrides: dict[str, Any] = {
        "log_level": args.log_level,
        "engine.model_set": args.model_set,
        "engine.det_box_thresh": args.det_box_thresh,
    }
    chosen = {key: value for key, value in overrides.items() if value is not None}
    return apply_overrides(settings, chosen, "command line") if chosen else settings


def _cmd_ocr(args: argparse.Namespace, settings: Settings, factory: EngineFactory) -> int:
    paths = expand_paths(args.paths)
    if not paths:
        log.warning("no images found in %s", ", ".join(map(str, args.paths)))
    with _output(args.jsonl) as out:
        failed = run_ocr(
            paths, out, settings.engine, workers=args.workers, engine_factory=factory,
            progress=sys.stderr,
        )
    log.info("%d images, %d failed", len(paths), failed)
    return 1 if failed else 0


def _cmd_run(args: argparse.Namespace, settings: Settings, factory: EngineFactory) -> int:
    results = settings.data_dir / RESULTS_NAME
    partial = results.with_name(RESULTS_NAME + ".part")
    _make_dirs(settings.shared_dir, settings.data_dir)
    paths = expand_paths([settings.shared_dir])
    with _output(partial) as out:
        failed = run_ocr(
            paths, out, settings.engine, workers=args.workers, engine_factory=factory,
            progress=sys.stderr,
        )
    try:
        os.replace(partial, results)  # readers never see a half-written file
    except OSError as exc:
        raise DaemonError(f"cannot write {results}: {exc.strerror or exc}") from exc
    print(f"OCR of {len(paths)} images in {settings.shared_dir}: {failed} failed")
    print(f"results: {results}")
    return 1 if failed else 0


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """The JSONL destination: a UTF-8 file, or stdout (switched to UTF-8) when ``path`` is None."""
    if path is None:
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(encoding="utf-8")
        yield sys.stdout
        return
    _make_dirs(path.parent)
    try:
        out = open(path, "w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise DaemonError(f"cannot write {path}: {exc.strerror or exc}") from exc
    with out:
        yield out


def _make_dirs(*folders: Path) -> None:
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DaemonError(f"cannot create folder {folder}: {exc.strerror or exc}") from exc


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
