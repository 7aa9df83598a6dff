"""The training loop shared by the detector and the recogniser.

A :class:`Task` knows its network, how to cut an epoch into batches, the loss of a batch and how
to score the test split; :func:`fit` does the rest: optimiser and schedule, frozen batch-norm,
progress, ``last.pt``/``best.pt`` each epoch, resuming, the test split before and after and the
``--guard`` set before and after.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict

import numpy as np
import torch
from torch import nn

from engine.training.checkpoint import read_payload, save_checkpoint
from engine.training.progress import Progress

log = logging.getLogger(__name__)

GUARD_DROP = 0.005  # a fall of half an accuracy point on the guard set is reported loudly


@dataclass(frozen=True)
class TrainOptions:
    """How long and how fast to train (CLI defaults are per kind, see rec.py / det.py)."""

    epochs: int
    batch_size: int
    lr: float
    device: str = "cpu"
    weight_decay: float = 1e-4
    max_steps: int | None = None  # stop after this many steps (smoke runs, benchmarks)
    freeze_bn: bool = True  # keep batch-norm statistics as pretrained (small data sets)
    clip: float = 5.0  # gradient-norm clip
    seed: int = 0
    eval_each_epoch: bool = True  # score the test split after each epoch to pick best.pt


class _Identity(TypedDict):
    """The keyword arguments of ``save_checkpoint`` that name what is saved."""

    kind: str
    model_set: str
    module: nn.Module
    charset: list[str] | None


class Task(Protocol):
    kind: str
    model_set: str
    module: nn.Module
    charset: list[str] | None

    def batches(self, rng: random.Random, batch_size: int) -> list[Sequence[int]]:
        """One epoch's batches (indices into the training samples)."""

    def loss(self, batch: Sequence[int], device: torch.device, rng: random.Random) -> torch.Tensor: ...

    def evaluate(self, tag: str, device: str) -> dict[str, Any] | None:
        """Score the test split (None without one); writes ``predictions/test_<tag>.jsonl``."""


Guard = Callable[[str], dict[str, Any]]  # tag -> metrics on the guard set with the current weights


def fit(
    task: Task,
    options: TrainOptions,
    workdir: Path,
    progress: Progress,
    *,
    resume: Path | None = None,
    guard: Guard | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train, save checkpoints in ``workdir``; report the result to ``progress.done`` and return it."""
    started = time.monotonic()
    torch.manual_seed(options.seed)
    np.random.seed(options.seed)
    device = torch.device(options.device)
    module = task.module.to(device)
    params = [p for p in module.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    per_epoch = len(task.batches(random.Random(0), options.batch_size))
    total = options.epochs * per_epoch
    if options.max_steps:
        total = min(total, options.max_steps)
    warmup = min(100, max(1, total // 10))
    state: dict[str, Any] = {"epoch": 0, "step": 0, "best": None, "best_epoch": None, "history": []}
    if resume is not None:
        payload = read_payload(resume)
        module.load_state_dict(payload["state_dict"])
        training = payload.get("training") or {}
        optimiser.load_state_dict(training["optimiser"])
        state.update(
            {
                k: training[k]
                for k in ("epoch", "step", "best", "best_epoch", "history", "test_before", "test_after", "guard_before")
                if k in training
            }
        )
        log.info("resuming %s from epoch %d, step %d", resume, state["epoch"], state["step"])
    else:
        state["test_before"] = task.evaluate("before", options.device)
        _log_metrics("test split before training", state["test_before"])
        state["guard_before"] = guard("before") if guard else None

    def lr_at(step: int) -> float:
        if step < warmup:
            return options.lr * (step + 1) / warmup
        return options.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    meta = dict(meta or {})
    workdir.mkdir(parents=True, exist_ok=True)
    step = state["step"]
    for epoch in range(state["epoch"] + 1, options.epochs + 1):
        if step >= total:
            break
        _train_mode(module, options.freeze_bn)
        epoch_rng = random.Random(options.seed * 1000 + epoch)
        losses = []
        for batch in task.batches(epoch_rng, options.batch_size):
            if step >= total:
                break
            lr = lr_at(step)
            for group in optimiser.param_groups:
                group["lr"] = lr
            loss = task.loss(batch, device, epoch_rng)
            optimiser.zero_grad(set_to_none=True)
            if torch.isfinite(loss):
                loss.backward()
                nn.utils.clip_grad_norm_(params, options.clip)
                optimiser.step()
            step += 1
            losses.append(float(loss.detach()))
            progress.step(epoch, step, total, losses[-1], lr)
        progress.end_epoch()
        mean_loss = float(np.mean([x for x in losses if math.isfinite(x)] or [math.nan]))
        last_epoch = step >= total or epoch == options.epochs
        metrics = task.evaluate(f"epoch{epoch}", options.device) if options.eval_each_epoch or last_epoch else None
        # best.pt: the best test accuracy, else the lowest training loss; without per-epoch scoring, the last
        score = (metrics["accuracy"] if metrics else -mean_loss) if options.eval_each_epoch else float(epoch)
        state["history"].append({"epoch": epoch, "loss": round(mean_loss, 6), "test": metrics})
        log.info(
            "epoch %d: mean loss %.4f%s",
            epoch,
            mean_loss,
            f", test accuracy {metrics['accuracy']:.4f}" if metrics else "",
        )
        # a tie goes to the later epoch (so does a NaN, so that best.pt always exists)
        improved = state["best"] is None or not score < state["best"]
        if improved:
            state.update(best=score, best_epoch=epoch, test_after=metrics)
        state.update(epoch=epoch, step=step)
        common: _Identity = {"kind": task.kind, "model_set": task.model_set, "module": module, "charset": task.charset}
        info = {
            **meta,
            "epoch": epoch,
            "step": step,
            "loss": mean_loss,
            "test": metrics,
            "test_before": state.get("test_before"),
        }
        if improved:
            save_checkpoint(workdir / "best.pt", meta=info, **common)
        save_checkpoint(
            workdir / "last.pt",
            meta=info,
            training={"optimiser": optimiser.state_dict(), **{k: v for k, v in state.items() if v is not None}},
            **common,
        )
    best = workdir / "best.pt"
    module.load_state_dict(read_payload(best)["state_dict"])
    module.eval()
    test_after = state.get("test_after")
    _log_metrics("test split after training (best.pt)", test_after)
    guard_after = guard("after") if guard else None
    if guard:
        _judge_guard(state.get("guard_before"), guard_after)
    result = {
        "kind": task.kind,
        "model_set": task.model_set,
        "checkpoint": str(best),
        "last": str(workdir / "last.pt"),
        "epochs": state["epoch"],
        "best_epoch": state["best_epoch"],
        "steps": step,
        "seconds": round(time.monotonic() - started, 1),
        "test_before": state.get("test_before"),
        "test_after": test_after,
        "guard_before": state.get("guard_before"),
        "guard_after": guard_after,
    }
    progress.done(result)
    return result


def _train_mode(module: nn.Module, freeze_bn: bool) -> None:
    module.train()
    if freeze_bn:
        for sub in module.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                sub.eval()


def _log_metrics(what: str, metrics: dict[str, Any] | None) -> None:
    if metrics:
        log.info("%s: accuracy %.4f over %d images", what, metrics["accuracy"], metrics["images"])
    else:
        log.info("%s: no test split, skipped", what)


def _judge_guard(before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    if not before or not after:
        return
    drop = before["accuracy"] - after["accuracy"]
    if drop > GUARD_DROP:
        log.warning(
            "!!! GUARD: accuracy on the guard set fell by %.1f points (%.4f -> %.4f): the model is "
            "forgetting what it knew; lower --lr or --epochs, or add general data !!!",
            100 * drop,
            before["accuracy"],
            after["accuracy"],
        )
    else:
        log.info("guard set: accuracy %.4f -> %.4f", before["accuracy"], after["accuracy"])
