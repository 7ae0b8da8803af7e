"""The training loop: one code path for a single process and for every DDP rank.

``fit`` never imports Ray. Distributed runs pass a ``Shard`` (rank, world size), a ``wrap`` that puts the
trainable network into DistributedDataParallel, and an ``on_epoch`` callback that reports and checkpoints;
validation and test metrics are gathered over all ranks with ``torch.distributed`` when it is initialised.
The step itself is ``train.step.train_step``; evaluation and model selection are in ``train.evaluation``;
snapshots for resuming in ``train.checkpoint``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hdc_ray.config import Config
from hdc_ray.noise.seeds import derive_seed
from hdc_ray.train import checkpoint
from hdc_ray.train.batches import WEAK_TO_STRONG, Shard, make_batch
from hdc_ray.train.checkpoint import TrainState
from hdc_ray.train.evaluation import evaluate, mean_over_ranks, test_best, update_best
from hdc_ray.train.methods import Models, build_models, check_data_for_method, needs_unlabeled, scored_net
from hdc_ray.train.schedules import gate_start
from hdc_ray.train.step import StepResult, build_optimizer, build_scaler, train_step

EpochCallback = Callable[[dict[str, float], "dict[str, Any] | None"], None]
# Below this share of confident pixels after the ramp-up, pixel consistency hardly acts (issue 10: at a
# 0.95 threshold HDC's fraction stayed 0.000 for a whole CPU-schedule run, i.e. it had no pseudo-labels).
LOW_CONFIDENT_FRACTION = 0.05


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_val: dict[str, float]
    test: dict[str, float]
    best_weights: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Final record: best-epoch validation metrics and the test metrics of that checkpoint."""
        return {"epochs_done": len(self.history), "best_epoch": self.best_epoch, **self.best_val, **self.test}


def resolve_device(cfg: Config) -> torch.device:
    if cfg.train.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.train.device)


def fit(
    cfg: Config,
    data: Any,
    *,
    device: torch.device | None = None,
    shard: Shard = Shard(),
    wrap: Callable[[nn.Module], nn.Module] | None = None,
    on_epoch: EpochCallback | None = None,
    resume: dict[str, Any] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> FitResult:
    """Train ``cfg.train.method`` on a DataBundle, select on validation, test the selected weights."""
    check_data_for_method(cfg, data)  # before any step: an empty unlabelled pool would fail deep in batches.py
    device = device or resolve_device(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)  # same seed -> same initial weights on every rank
        models = build_models(cfg, len(data.class_names))
    models.trainable.to(device)
    if models.teacher is not None:
        models.teacher.to(device)
    optimizer = build_optimizer(cfg, models.trainable)
    scaler = build_scaler(cfg, device)
    state = TrainState()
    if resume is not None:
        state = checkpoint.restore(resume, models, optimizer, scaler)
        log(f"resumed after epoch {state.epoch}")
    model = wrap(models.trainable) if wrap else models.trainable
    test: dict[str, float] = {}
    warned = False
    for epoch in range(state.epoch, cfg.train.epochs):
        start = gate_start(cfg, state.history, data.class_names)
        record = _run_epoch(cfg, data, models, model, optimizer, scaler, epoch, shard, device, progress, start)
        if (epoch + 1) % cfg.train.eval_every == 0 or epoch + 1 == cfg.train.epochs:
            val = evaluate(scored_net(cfg, models), data.val, data.class_names, cfg, device, shard, "val")
            record |= val | _other_net_val(cfg, data, models, device, shard)
            update_best(cfg, state, epoch + 1, val, models)
        state.epoch = epoch + 1
        state.history.append(record | {"best_epoch": float(state.best_epoch)})
        log(_epoch_line(cfg, record))
        warning = None if warned else low_confidence_warning(cfg, record)
        if warning is not None:
            log(warning)
            warned = True
        final = state.epoch == cfg.train.epochs
        test = test_best(cfg, data, models, state, device, shard) if final else {}
        if on_epoch is not None:
            # The last epoch's report carries the test metrics of the selected weights: reported exactly once.
            due = state.epoch % cfg.train.checkpoint_every == 0 or final
            report = state.history[-1] | _prefixed_best(state) | ({**test, "done": 1.0} if final else {})
            on_epoch(report, checkpoint.snapshot(cfg, models, optimizer, scaler, state) if due else None)
    if not test:  # resumed after the last epoch (killed before its final report got through): report it again
        test = test_best(cfg, data, models, state, device, shard)
        if on_epoch is not None and state.history:
            on_epoch(state.history[-1] | _prefixed_best(state) | {**test, "done": 1.0}, None)
    return FitResult(state.history, state.best_epoch, state.best_val, test, state.best_weights)


def low_confidence_warning(cfg: Config, record: dict[str, float]) -> str | None:
    """A one-line warning when pixel consistency still has < 5% confident pixels well after the ramp-up, else None.

    The mask opens as the EMA teacher grows confident, which is after the weight's ramp (synthetic config,
    4 labels, 8 epochs, ramp to epoch 3.2: confident fraction 0.000 at epoch 4, 0.22-0.81 at epoch 8), so an
    epoch is judged from halfway between the ramp's end and the last epoch, and the last epoch always.
    ``fit`` logs it once per run.
    """
    fraction = record.get("train_confident_fraction")
    if fraction is None or record.get("ramp", 0.0) < 1.0 or fraction >= LOW_CONFIDENT_FRACTION:
        return None
    epochs = cfg.train.epochs
    ramp_end = cfg.loss.ramp_fraction * epochs
    if record["epoch"] < min(ramp_end + 0.5 * (epochs - ramp_end), epochs):
        return None
    lc = cfg.loss
    if cfg.train.method in WEAK_TO_STRONG:  # their own threshold, and only it
        return (f"WARNING: epoch {int(record['epoch'])}: only {fraction:.1%} of unlabelled pixels pass the pseudo-label threshold "
                f"(loss.fixmatch_threshold={lc.fixmatch_threshold}); the unlabelled terms barely act (a lower loss.fixmatch_threshold opens it)")  # fmt: skip
    threshold = f"fixed {lc.confidence_threshold}" if lc.threshold_kind == "fixed" else f"adaptive, now {record.get('train_pc_threshold', float('nan')):.3f}"
    return (
        f"WARNING: epoch {int(record['epoch'])}: only {fraction:.1%} of unlabelled pixels pass the pseudo-label threshold "
        f"({threshold}) well after the ramp-up; pixel consistency barely acts (a wider mask, loss.threshold_kind=adaptive or a lower "
        f"loss.confidence_threshold, opens it; on short schedules that measured worse: docs/benchmarks.md)"
    )


def _other_net_val(cfg: Config, data: Any, models: Models, device: torch.device, shard: Shard) -> dict[str, float]:
    """``train.log_classes``: the validation metrics of the network that is not scored (teacher vs student), as ``val_other_*``."""
    if not cfg.train.log_classes or models.teacher is None:
        return {}
    scored = scored_net(cfg, models)
    other = models.eval_net("student") if scored is models.teacher else models.teacher
    return {k.replace("val_", "val_other_", 1): v for k, v in evaluate(other, data.val, data.class_names, cfg, device, shard, "val").items()}


def _prefixed_best(state: TrainState) -> dict[str, float]:
    return {"best_epoch": float(state.best_epoch), **{f"best_{k}": v for k, v in state.best_val.items()}}


def _run_epoch(cfg, data, models: Models, model: nn.Module, optimizer, scaler, epoch: int, shard: Shard, device, progress: bool,  # type: ignore[no-untyped-def]
               unsup_start: int | None = 0) -> dict[str, float]:  # fmt: skip
    tc = cfg.train
    sums: dict[str, float] = defaultdict(float)
    images, start = 0, time.perf_counter()
    model.train()
    bar = _progress_bar(tc.iters_per_epoch, f"epoch {epoch + 1}/{tc.epochs}", progress and shard.rank == 0)
    for it in range(tc.iters_per_epoch):
        out, n_images = train_iteration(cfg, data, models, model, optimizer, scaler, epoch, it, shard, device, unsup_start)
        sums["loss"] += float(out.total)
        for key, value in out.terms.items():
            sums[f"loss_{key}"] += float(value)
        for key, value in out.stats.items():
            sums[key] += float(value)
        images += n_images
        bar.update(1)
        bar.set_postfix(loss=f"{float(out.total):.3f}")
    bar.close()
    seconds = time.perf_counter() - start
    means = mean_over_ranks({f"train_{k}": v / tc.iters_per_epoch for k, v in sums.items()})
    return {"epoch": float(epoch + 1), **means, "lr": out.lr, "ramp": out.ramp, "epoch_time_s": seconds, "images_per_s": images * shard.world_size / seconds}


def train_iteration(cfg, data, models: Models, model: nn.Module, optimizer, scaler, epoch: int, it: int, shard: Shard, device,  # type: ignore[no-untyped-def]
                    unsup_start: int | None = 0) -> tuple[StepResult, int]:  # fmt: skip
    """One iteration of the loop, all that a run pays for per step: seeding, this rank's batch (views
    included) and the step. Returns the step's result and the images the trainable network saw.
    ``bench/step_time.py`` times exactly this."""
    torch.manual_seed(derive_seed(cfg.train.seed, epoch, it, shard.rank))  # dropout draws, reproducible on resume
    batch = make_batch(cfg, data, epoch, it, shard, device, needs_unlabeled(cfg))
    return train_step(cfg, models, model, optimizer, scaler, batch, epoch * cfg.train.iters_per_epoch + it, unsup_start), batch.n_images


def _progress_bar(total: int, desc: str, enabled: bool):  # type: ignore[no-untyped-def]
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


def _epoch_line(cfg: Config, record: dict[str, float]) -> str:
    parts = [f"epoch {int(record['epoch'])}/{cfg.train.epochs}", f"loss {record['train_loss']:.4f}"]
    for key in ("train_confident_fraction", "train_pc_threshold", "val_dice_fg", "val_hd95_fg"):
        if key in record:
            parts.append(f"{key.removeprefix('train_')} {record[key]:.4f}")
    parts.append(f"{record['images_per_s']:.1f} img/s")
    return "  ".join(parts)
