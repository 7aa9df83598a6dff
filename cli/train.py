"""``teamocr train det|rec`` (fine-tuning) and ``teamocr corrections export``.

Wiring only: reading options, building the task from engine.training, and reporting. Training
runs in this process on ``--device``; checkpoints go to ``<workdirs>/<name>/`` (``last.pt`` each
epoch, ``best.pt`` the best on the test split).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from cli.argtypes import positive_int
from config.settings import Settings
from daemon.errors import DaemonError

log = logging.getLogger(__name__)

DEFAULT_WORKDIRS = Path("workdirs")


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``train`` and ``corrections`` on the ``teamocr`` parser."""
    train = commands.add_parser(
        "train",
        help="fine-tune the detector or the recogniser on your own data",
        description="Fine-tune a pretrained network (engine.model_set) and save checkpoints. The data "
        "are checked first; every problem found is listed with its file and line.",
    )
    kinds = train.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, blurb in (
        ("det", "the text detector, on ICDAR 2015-style pages"),
        ("rec", "the text recogniser, on line crops"),
    ):
        sub = kinds.add_parser(kind, parents=[common], help=f"fine-tune {blurb}")
        _train_options(sub, kind)
        sub.set_defaults(handler=_cmd_train)

    corrections = commands.add_parser("corrections", help="dashboard corrections as training data")
    actions = corrections.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        parents=[common],
        help="write corrected lines as a `train rec` data set",
        description="Cut every corrected line from its source image and write DIR/crops/, "
        "DIR/train.txt and DIR/test.txt (path<TAB>text), split by image, deterministically.",
    )
    export.add_argument("folder", type=Path, metavar="DIR")
    export.add_argument("--team", help="only this team's channels (teams.channels); default: all")
    export.add_argument(
        "--test-fraction", type=float, default=0.1, metavar="F", help="share of images in the test split (default 0.1)"
    )
    export.set_defaults(handler=_cmd_export)


def _train_options(sub: argparse.ArgumentParser, kind: str) -> None:
    from engine.training.defaults import DEFAULTS

    defaults = DEFAULTS[kind]
    sub.add_argument("--data", type=Path, required=True, metavar="DIR", help="the data set folder")
    sub.add_argument("--name", help=f"run name (default {kind}-YYYYmmdd-HHMMSS)")
    sub.add_argument(
        "--workdirs",
        type=Path,
        default=DEFAULT_WORKDIRS,
        metavar="DIR",
        help="where runs are saved, each in DIR/NAME (default ./workdirs)",
    )
    sub.add_argument("--workdir", type=Path, metavar="DIR", help="this run's own folder (instead of --workdirs/--name)")
    sub.add_argument(
        "--epochs", type=positive_int, default=defaults["epochs"], metavar="N", help=f"default {defaults['epochs']}"
    )
    sub.add_argument(
        "--batch-size",
        type=positive_int,
        default=defaults["batch_size"],
        metavar="N",
        help=f"default {defaults['batch_size']}",
    )
    sub.add_argument(
        "--lr",
        type=float,
        default=defaults["lr"],
        metavar="F",
        help=f"peak learning rate (AdamW, warm-up then cosine; default {defaults['lr']:g})",
    )
    sub.add_argument("--max-steps", type=positive_int, metavar="N", help="stop after N steps")
    sub.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    sub.add_argument(
        "--resume", type=Path, metavar="LAST_PT", help="continue a run from its last.pt (same data and options)"
    )
    sub.add_argument(
        "--progress",
        choices=("bar", "json", "none"),
        default="bar",
        help="bar on stderr (default), or one JSON object per line on stdout",
    )
    sub.add_argument(
        "--guard",
        type=Path,
        metavar="DATASET_DIR",
        help="labelled set (labels.jsonl + images) scored before and after, to catch forgetting",
    )
    sub.add_argument("--guard-limit", type=positive_int, metavar="N", help="only the first N guard images")
    sub.add_argument("--test-limit", type=positive_int, metavar="N", help="score only the first N test samples")
    sub.add_argument(
        "--no-epoch-eval",
        action="store_true",
        help="score the test split only before and after (best.pt is then the last epoch)",
    )
    sub.add_argument(
        "--max-problems", type=positive_int, default=50, metavar="N", help="data problems listed at most (default 50)"
    )
    sub.add_argument(
        "--train-bn",
        action="store_true",
        help="update batch-norm statistics too (default: frozen, right for small sets)",
    )
    if kind == "rec":
        sub.add_argument(
            "--extend-dict",
            action="store_true",
            help="add characters missing from the dictionary and grow the CTC head",
        )
        sub.add_argument("--no-augment", action="store_true", help="train on the crops as they are")
    else:
        sub.add_argument(
            "--crop-size",
            type=positive_int,
            default=640,
            metavar="PX",
            help="side of the square training crops (default 640)",
        )


def _cmd_train(args: argparse.Namespace, settings: Settings, factory: Any) -> int:
    import torch

    from engine.backends import resolve_threads
    from engine.errors import EngineError
    from engine.training.progress import make_progress

    if args.device == "cuda" and not torch.cuda.is_available():
        raise DaemonError("--device cuda: no CUDA device is available to torch")
    if args.device == "cpu":
        torch.set_num_threads(resolve_threads(settings.engine.threads))
    try:
        return _train(args, settings, make_progress(args.progress))
    except EngineError as exc:
        log.error("%s", exc)
        return 2


def _train(args: argparse.Namespace, settings: Settings, progress: Any) -> int:
    from engine.training.checkpoint import load_checkpoint
    from engine.training.data import read_det_dataset, read_rec_dataset
    from engine.training.loop import TrainOptions, fit
    from engine.training.runtime import make_ocr, pretrained

    model_set = settings.engine.model_set
    if args.resume is not None:
        workdir = args.resume.parent
        start = load_checkpoint(args.resume)
        if start.kind != args.kind:
            raise DaemonError(f"{args.resume}: a {start.kind} checkpoint, not {args.kind}")
        model_set, module, charset = start.model_set, start.module, start.charset
    else:
        name = args.name or f"{args.kind}-{time.strftime('%Y%m%d-%H%M%S')}"
        workdir = args.workdir or args.workdirs / name
        if (workdir / "last.pt").exists():
            raise DaemonError(f"{workdir} already holds a run; pick another --name or --resume it")
        module, charset = pretrained(args.kind, model_set)
    base_det, _ = pretrained("det", model_set)
    base_rec, base_charset = pretrained("rec", model_set)
    engine_settings = settings.engine
    options = TrainOptions(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        max_steps=args.max_steps,
        freeze_bn=not args.train_bn,
        eval_each_epoch=not args.no_epoch_eval,
    )
    meta: dict[str, Any] = {
        "data": str(args.data.resolve()),
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "base": f"PP-OCRv6-{model_set}",
    }
    if args.kind == "rec":
        from engine.training.rec import RecTask, extend_charset

        assert charset is not None
        data = read_rec_dataset(args.data, charset, extend_dict=args.extend_dict, cap=args.max_problems)
        if data.new_chars:
            charset = extend_charset(module, charset, data.new_chars)
            log.info("dictionary extended by %d character(s): %s", len(data.new_chars), "".join(data.new_chars))
            meta["added_chars"] = "".join(data.new_chars)
        log.info("%s: %d training and %d test lines", args.data, len(data.train), len(data.test))
        task: Any = RecTask(
            model_set, module, charset, data.train, data.test[: args.test_limit], workdir, augment=not args.no_augment
        )

        def candidate() -> Any:
            return make_ocr(base_det, task.module, task.charset, engine_settings, args.device)
    else:
        from engine.training.det import DetTask

        pages = read_det_dataset(args.data, cap=args.max_problems)
        log.info("%s: %d training and %d test images", args.data, len(pages.train), len(pages.test))
        task = DetTask(
            model_set,
            module,
            pages.train,
            pages.test[: args.test_limit],
            workdir,
            lambda det: make_ocr(det, base_rec, base_charset, engine_settings, args.device),
            size=args.crop_size,
        )

        def candidate() -> Any:
            return make_ocr(task.module, base_rec, base_charset, engine_settings, args.device)

    if not task.test:
        log.info("no test split in %s: best.pt is the epoch with the lowest training loss", args.data)
    guard = _guard(args, workdir, candidate)
    result = fit(task, options, workdir, progress, resume=args.resume, guard=guard, meta=meta)
    log.info("checkpoint: %s", result["checkpoint"])
    return 0


def _guard(args: argparse.Namespace, workdir: Path, candidate: Any) -> Any:
    from engine.training.evaluate import read_labels, run_pages

    if args.guard is None:
        log.info("no --guard set given: forgetting is not checked")
        return None
    if not (args.guard / "labels.jsonl").is_file():
        raise DaemonError(f"--guard {args.guard}: no labels.jsonl there")
    labels = read_labels(args.guard, args.guard_limit)

    def run(tag: str) -> dict[str, Any]:
        metrics = run_pages(candidate(), args.guard, labels, workdir / "predictions" / f"guard_{tag}.jsonl")
        log.info(
            "guard set %s (%d images) %s training: accuracy %.4f", args.guard, len(labels), tag, metrics["accuracy"]
        )
        return metrics

    return run


def _cmd_export(args: argparse.Namespace, settings: Settings, factory: Any) -> int:
    from cli.users import first_team
    from daemon.offline.corrections import export_corrections
    from daemon.results.store import STORE_NAME
    from daemon.results.teams import TeamMap, is_default_team

    scope = None
    if args.team:
        teams = TeamMap.from_spec(settings.teams.channels)
        is_default = is_default_team(args.team, settings.teams.default_team, first_team(settings))
        scope = teams.scope_for(args.team, is_default)
    summary = export_corrections(
        settings.data_dir / STORE_NAME,
        args.folder,
        scope=scope,
        test_fraction=args.test_fraction,
        max_pixels=settings.engine.max_image_pixels,
        max_bytes=settings.engine.max_file_bytes,
    )
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(summary.skipped.items())) or "none"
    print(
        f"teamocr: {summary.train} training and {summary.test} test lines from {summary.images} "
        f"image(s) in {summary.folder} (skipped: {skipped})"
    )
    return 0
