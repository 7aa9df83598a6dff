"""The ``teamocr`` parser and entry point: the options every command shares, settings and logging.

Each command lives in a module of its own that registers itself with ``add_commands``:
:mod:`cli.ocr` (``ocr``), :mod:`cli.service` (``run``, ``watch``, ``worker``, ``web``),
:mod:`cli.models` (``export onnx``, ``model list|add|use``), :mod:`cli.train` (``train det|rec``,
``corrections export``) and :mod:`cli.users` (``user add``). A handler is called as
``handler(args, settings, engine_factory)`` and returns the exit code. The engine, the daemon and
the web are imported only when a command needs them, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cli import keys, models, ocr, service, train, users
from cli.argtypes import positive_int
from config.errors import ConfigError
from config.settings import Settings, apply_overrides, load_settings
from config.values import CHOICES
from daemon.errors import DaemonError
from daemon.ports import EngineFactory

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``teamocr`` and all its commands."""
    parser = argparse.ArgumentParser(prog="teamocr", description="Collaborative shared-folder OCR for zh/en images.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, metavar="FILE", help="settings file (TOML); default: $TEAMOCR_CONFIG")
    common.add_argument("--log-level", choices=CHOICES["log_level"], help="override log_level")
    common.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="OCR processes, each loading the engine once (ocr: 1; run: daemon.workers)",
    )
    common.add_argument("--model-set", choices=CHOICES["engine.model_set"], help="override engine.model_set")
    common.add_argument("--det-box-thresh", type=float, metavar="F", help="override engine.det_box_thresh (0-1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ocr.add_commands(commands, common)  # ocr
    service.add_commands(commands, common)  # run, watch, worker, web
    models.add_commands(commands, common)  # export onnx, model list|add|use
    train.add_commands(commands, common)  # train det|rec, corrections export
    users.add_commands(commands, common)  # user add
    keys.add_commands(commands, common)  # key add|list|revoke
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
    if engine_factory is None:
        from daemon.offline.batch import build_default_engine

        engine_factory = build_default_engine
    try:
        code: int = args.handler(args, settings, engine_factory)
    except DaemonError as exc:
        log.error("%s", exc)
        return 2
    return code


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    overrides: dict[str, Any] = {
        "log_level": args.log_level,
        "engine.model_set": args.model_set,
        "engine.det_box_thresh": args.det_box_thresh,
    }
    chosen = {key: value for key, value in overrides.items() if value is not None}
    return apply_overrides(settings, chosen, "command line") if chosen else settings
