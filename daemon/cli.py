"""The ``teamocr`` command line: ``ocr`` (files to JSON Lines), ``run``, ``watch`` and ``worker``.

This is the one place that wires settings, logging and the engine together. The engine is
imported only when a command needs it, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from config.errors import ConfigError
from config.settings import Settings, apply_overrides, load_settings
from config.values import CHOICES
from daemon import cli_models, cli_train
from daemon.argtypes import positive_int
from daemon.batch import EngineFactory, build_default_engine, expand_paths, run_ocr
from daemon.errors import DaemonError

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``teamocr`` and its subcommands."""
    return make_parser()[0]


def make_parser() -> tuple[argparse.ArgumentParser, Any, argparse.ArgumentParser]:
    """The parser, its subcommand collection and the options every subcommand shares, so the
    web (which sits on top of the daemon) can add its own commands."""
    parser = argparse.ArgumentParser(
        prog="teamocr", description="Collaborative shared-folder OCR for zh/en images."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, metavar="FILE", help="settings file (TOML); default: $TEAMOCR_CONFIG"
    )
    common.add_argument("--log-level", choices=CHOICES["log_level"], help="override log_level")
    common.add_argument(
        "--workers", type=positive_int, default=None, metavar="N",
        help="OCR processes, each loading the engine once (ocr: 1; run: daemon.workers)",
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
        "run", parents=[common], help="run the whole service on this host",
        description="Watch shared_dir, OCR every new file with worker processes, store results in "
        "data_dir and announce them; Redis is embedded unless redis_url is set. Stop with Ctrl-C.",
    )
    run.set_defaults(handler=_cmd_run)
    watch = commands.add_parser(
        "watch", parents=[common], help="watch the shared folder and keep the store (no OCR here)",
        description="Watcher, intake and result store only; OCR happens in `teamocr worker` processes "
        "that reach the same Redis (redis_url).",
    )
    watch.set_defaults(handler=_cmd_watch)
    worker = commands.add_parser(
        "worker", parents=[common], help="one OCR worker taking jobs from Redis",
        description="Load the engine once and OCR jobs from the Redis queue until stopped "
        "(first SIGTERM: finish the batch; second: stop now).",
    )
    worker.add_argument("--follow-parent", action="store_true",
                        help="stop (after the batch in hand) when the process that started this one is gone; "
                        "given by `teamocr run` to its workers")
    worker.set_defaults(handler=_cmd_worker)
    cli_models.add_commands(commands, common)  # export onnx, model list|add|use
    cli_train.add_commands(commands, common)  # train det|rec, corrections export
    return parser, commands, common


def main(argv: Sequence[str] | None = None, *, engine_factory: EngineFactory | None = None,
         parser: argparse.ArgumentParser | None = None) -> int:
    """Run ``teamocr``; return the exit code (0 ok, 1 some images failed, 2 could not run).

    ``engine_factory`` replaces ``engine.pipeline.build_engine`` (tests pass a fake);
    ``parser`` is the web's extended parser when ``teamocr`` starts from there.
    """
    args = (parser or build_parser()).parse_args(argv)
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
            paths, out, settings.engine, workers=args.workers or 1, engine_factory=factory,
            progress=sys.stderr,
        )
    log.info("%d images, %d failed", len(paths), failed)
    return 1 if failed else 0


def _cmd_run(args: argparse.Namespace, settings: Settings, factory: EngineFactory) -> int:
    return _serve(args, settings, workers=args.workers or settings.daemon.workers, watch=True)


def _cmd_watch(args: argparse.Namespace, settings: Settings, factory: EngineFactory) -> int:
    return _serve(args, settings, workers=0, watch=True)


def _cmd_worker(args: argparse.Namespace, settings: Settings, factory: EngineFactory) -> int:
    from daemon.service import install_signals, work

    stop = threading.Event()
    install_signals(stop)
    return work(settings, stop, follow_parent=args.follow_parent)


def _serve(args: argparse.Namespace, settings: Settings, *, workers: int, watch: bool) -> int:
    from daemon.service import install_signals, serve

    make_dirs(settings.shared_dir, settings.data_dir)
    stop = threading.Event()
    install_signals(stop)

    def ready(handle: Any) -> None:
        print(f"teamocr: watching {settings.shared_dir}, {workers} worker(s), results in "
              f"{settings.data_dir}, Redis {handle.url}", flush=True)

    return serve(settings, workers=workers, watch=watch, config_file=args.config, stop=stop, ready=ready)


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """The JSONL destination: a UTF-8 file, or stdout (switched to UTF-8) when ``path`` is None."""
    if path is None:
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(encoding="utf-8")
        yield sys.stdout
        return
    make_dirs(path.parent)
    try:
        out = open(path, "w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise DaemonError(f"cannot write {path}: {exc.strerror or exc}") from exc
    with out:
        yield out


def make_dirs(*folders: Path) -> None:
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DaemonError(f"cannot create folder {folder}: {exc.strerror or exc}") from exc


if __name__ == "__main__":
    sys.exit(main())
