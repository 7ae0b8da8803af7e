"""The training loop: one code path for a single process and for every DDP rank.

``fit`` never imports Ray. Distributed runs pass a ``Shard`` (rank, world size), a ``wrap`` that puts the
trainable network into DistributedDataParallel, and an ``on_epoch`` callback that reports and checkpoints;
validation and test metrics are gathered over all ranks with ``torch.distributed`` when it is initialised.
"""

from __future__ import annotations

import copy
import math
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import distributed as torch_dist
from torch import nn
from torch.nn import functional as F

from hdc_ray.config import Config, flatten
from hdc_ray.losses import sigmoid_rampup, weighted_total
from hdc_ray.metrics import aggregate, evaluate_case
from hdc_ray.model import SegNet
from hdc_ray.noise.seeds import derive_seed
from hdc_ray.train import checkpoint
from hdc_ray.train.batches import Shard, make_batch
from hdc_ray.train.methods import Models, build_models, compute_losses, loss_weights, needs_unlabeled

EpochCallback = Callable[[dict[str, float], "dict[str, Any] | None"], None]


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


@dataclass
class _State:
    epoch: int = 0  # completed epochs
    best_epoch: int = 0
    best_value: float = -math.inf
    best_val: dict[str, float] = field(default_factory=dict)
    best_weights: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)


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
    device = device or resolve_device(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)  # same seed -> same initial weights on every rank
        models = build_models(cfg, len(data.class_names))
    models.trainable.to(device)
    if models.teacher is not None:
        models.teacher.to(device)
    optimizer = _optimizer(cfg, models.trainable)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.train.precision == "fp16")
    state = _State()
    if resume is not None:
        state = _restore(resume, models, optimizer, scaler)
        log(f"resumed after epoch {state.epoch}")
    model = wrap(models.trainable) if wrap else models.trainable
    test: dict[str, float] = {}
    for epoch in range(state.epoch, cfg.train.epochs):
        record = _run_epoch(cfg, data, models, model, optimizer, scaler, epoch, shard, device, progress)
        if (epoch + 1) % cfg.train.eval_every == 0 or epoch + 1 == cfg.train.epochs:
            val = evaluate(models.eval_net(cfg.train.eval_model), data.val, data.class_names, cfg, device, shard, "val")
            record |= val
            _update_best(cfg, state, epoch + 1, val, models)
        state.epoch = epoch + 1
        state.history.append(record | {"best_epoch": float(state.best_epoch)})
        log(_epoch_line(cfg, record))
        final = state.epoch == cfg.train.epochs
        test = _test_best(cfg, data, models, state, device, shard) if final else {}
        if on_epoch is not None:
            # The last epoch's report carries the test metrics of the selected weights: reported exactly once.
            due = state.epoch % cfg.train.checkpoint_every == 0 or final
            report = state.history[-1] | _prefixed_best(state) | ({**test, "done": 1.0} if final else {})
            on_epoch(report, _snapshot(cfg, models, optimizer, scaler, state) if due else None)
    if not test:  # resumed after the last epoch (killed before its final report got through): report it again
        test = _test_best(cfg, data, models, state, device, shard)
        if on_epoch is not None and state.history:
            on_epoch(state.history[-1] | _prefixed_best(state) | {**test, "done": 1.0}, None)
    return FitResult(state.history, state.best_epoch, state.best_val, test, state.best_weights)


def _prefixed_best(state: _State) -> dict[str, float]:
    return {"best_epoch": float(state.best_epoch), **{f"best_{k}": v for k, v in state.best_val.items()}}


def _optimizer(cfg: Config, net: nn.Module) -> torch.optim.Optimizer:
    tc = cfg.train
    if tc.optimizer == "sgd":
        return torch.optim.SGD(net.parameters(), lr=tc.lr, momentum=0.9, weight_decay=tc.weight_decay)
    return torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)


def lr_at(cfg: Config, step: int) -> float:
    tc = cfg.train
    total = tc.epochs * tc.iters_per_epoch
    if step < tc.warmup_iters:
        return tc.lr * (step + 1) / tc.warmup_iters
    if tc.schedule == "constant":
        return tc.lr
    progress = (step - tc.warmup_iters) / max(1, total - tc.warmup_iters)
    return tc.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def _autocast(cfg: Config, device: torch.device):  # type: ignore[no-untyped-def]
    if cfg.train.precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if cfg.train.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _run_epoch(cfg, data, models: Models, model: nn.Module, optimizer, scaler, epoch: int, shard: Shard, device, progress: bool) -> dict[str, float]:  # type: ignore[no-untyped-def]
    tc, weights = cfg.train, loss_weights(cfg)
    ramp_len = cfg.loss.ramp_fraction * tc.epochs * tc.iters_per_epoch
    sums: dict[str, float] = defaultdict(float)
    images, start = 0, time.perf_counter()
    model.train()
    bar = _progress_bar(tc.iters_per_epoch, f"epoch {epoch + 1}/{tc.epochs}", progress and shard.rank == 0)
    for it in range(tc.iters_per_epoch):
        step = epoch * tc.iters_per_epoch + it
        for group in optimizer.param_groups:
            group["lr"] = lr_at(cfg, step)
        torch.manual_seed(derive_seed(tc.seed, epoch, it, shard.rank))  # dropout draws, reproducible on resume
        batch = make_batch(cfg, data, epoch, it, shard, device, needs_unlabeled(cfg))
        ramp = sigmoid_rampup(step, ramp_len)
        with _autocast(cfg, device):
            terms = compute_losses(cfg, model, models.teacher, batch)
            total = weighted_total({k: v for k, v in terms.items() if k in weights}, weights, ramp)
        _backward_step(cfg, model, optimizer, scaler, total)
        models.after_step(min(1.0 - 1.0 / (step + 1), tc.ema_decay))  # short EMA memory while the student is young
        sums["loss"] += float(total.detach())
        for key, value in terms.items():
            sums[key if key == "confident_fraction" else f"loss_{key}"] += float(value.detach())
        images += batch.x_w.shape[0] + (0 if batch.u_s is None else batch.u_s.shape[0])
        bar.update(1)
        bar.set_postfix(loss=f"{float(total.detach()):.3f}")
    bar.close()
    seconds = time.perf_counter() - start
    means = _mean_over_ranks({f"train_{k}": v / tc.iters_per_epoch for k, v in sums.items()})
    return {"epoch": float(epoch + 1), **means, "lr": lr_at(cfg, step), "ramp": ramp, "epoch_time_s": seconds, "images_per_s": images * shard.world_size / seconds}


def _backward_step(cfg: Config, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, total: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    if cfg.train.grad_clip > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
    scaler.step(optimizer)
    scaler.update()


def _progress_bar(total: int, desc: str, enabled: bool):  # type: ignore[no-untyped-def]
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


def _mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=_collective_device())
    torch_dist.all_reduce(t)
    return {k: float(v) / torch_dist.get_world_size() for k, v in zip(keys, t, strict=True)}


def _collective_device() -> torch.device:
    """Where a tensor for a collective must live: NCCL reduces CUDA tensors only (a CPU tensor fails with
    "No backend type associated with device type cpu"), gloo reduces CPU tensors. Ray Train sets each
    worker's current CUDA device before the loop starts."""
    if torch_dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _gather(cases: list[dict[str, float]]) -> list[dict[str, float]]:
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return cases
    parts: list[Any] = [None] * torch_dist.get_world_size()
    torch_dist.all_gather_object(parts, cases)
    return [c for part in parts for c in part]


@torch.no_grad()
def evaluate(net: SegNet, dataset: Any, class_names: tuple[str, ...], cfg: Config, device: torch.device, shard: Shard = Shard(), prefix: str = "val") -> dict[str, float]:
    """Metrics over the WHOLE split: each rank scores every N-th image, the cases are gathered, then averaged.

    Predictions are made at training size and resized (nearest) to each image's native size before scoring.
    """
    was_training = net.training
    net.eval()
    indices = list(range(shard.rank, len(dataset), shard.world_size))
    cases = []
    for start in range(0, len(indices), cfg.eval.batch_size):
        chunk = indices[start : start + cfg.eval.batch_size]
        x = torch.from_numpy(dataset.images[chunk])[:, None].to(device)
        pred = net(x).logits.argmax(1)  # (B, H, W)
        for i, p in zip(chunk, pred, strict=True):
            cases.append(_score(p, dataset, i, class_names, cfg))
    net.train(was_training)
    metrics = aggregate(_gather(cases))
    return {f"{prefix}_{k}": float(v) for k, v in metrics.items()}


def _score(pred: torch.Tensor, dataset: Any, i: int, class_names: tuple[str, ...], cfg: Config) -> dict[str, float]:
    gt = dataset.native_masks[i] if dataset.native_masks is not None else dataset.masks[i]
    if tuple(pred.shape) != gt.shape:
        pred = F.interpolate(pred[None, None].float(), size=gt.shape, mode="nearest")[0, 0].long()
    penalty: str | float = cfg.eval.empty_penalty
    if penalty not in ("diagonal", "inf"):
        penalty = float(penalty)
    return evaluate_case(
        pred.cpu().numpy(), gt, class_names, dataset.spacing[i],
        hd_percentile=cfg.eval.hd_percentile, hd_convention=cfg.eval.hd_convention, empty_penalty=penalty,
    )


def _higher_is_better(metric: str) -> bool:
    return not any(tag in metric for tag in ("hd95", "asd", "loss"))


def _update_best(cfg: Config, state: _State, epoch: int, val: dict[str, float], models: Models) -> None:
    name = cfg.train.select_metric
    if name not in val:
        raise KeyError(f"train.select_metric {name!r} is not among the validation metrics {sorted(val)}")
    value = val[name] if _higher_is_better(name) else -val[name]
    if value > state.best_value or state.best_epoch == 0:
        state.best_value, state.best_epoch, state.best_val = value, epoch, dict(val)
        net = models.eval_net(cfg.train.eval_model)
        state.best_weights = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _test_best(cfg: Config, data: Any, models: Models, state: _State, device: torch.device, shard: Shard) -> dict[str, float]:
    """Test metrics of the weights selected on validation (a copy: the training weights stay as they are)."""
    net = copy.deepcopy(models.eval_net(cfg.train.eval_model))
    if state.best_weights:
        net.load_state_dict(state.best_weights)
    return evaluate(net, data.test, data.class_names, cfg, device, shard, "test")


def _snapshot(cfg: Config, models: Models, optimizer, scaler, state: _State) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Everything needed to continue exactly: weights, optimiser, best-so-far, history (no pickled objects)."""
    return {
        "format": checkpoint.FORMAT,
        "epoch": state.epoch,
        "trainable": {k: v.detach().cpu() for k, v in models.trainable.state_dict().items()},
        "teacher": None if models.teacher is None else {k: v.detach().cpu() for k, v in models.teacher.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "best": {"epoch": state.best_epoch, "value": state.best_value, "val": state.best_val},
        "best_weights": state.best_weights,
        "history": state.history,
        "config": {k: v for k, v in flatten(cfg).items()},
    }


def _restore(snap: dict[str, Any], models: Models, optimizer, scaler) -> _State:  # type: ignore[no-untyped-def]
    models.trainable.load_state_dict(snap["trainable"])
    if models.teacher is not None and snap["teacher"] is not None:
        models.teacher.load_state_dict(snap["teacher"])
    optimizer.load_state_dict(snap["optimizer"])
    if snap.get("scaler"):
        scaler.load_state_dict(snap["scaler"])
    best = snap["best"]
    return _State(snap["epoch"], best["epoch"], best["value"], dict(best["val"]), dict(snap["best_weights"]), list(snap["history"]))


def _epoch_line(cfg: Config, record: dict[str, float]) -> str:
    parts = [f"epoch {int(record['epoch'])}/{cfg.train.epochs}", f"loss {record['train_loss']:.4f}"]
    for key in ("val_dice_fg", "val_hd95_fg"):
        if key in record:
            parts.append(f"{key} {record[key]:.4f}")
    parts.append(f"{record['images_per_s']:.1f} img/s")
    return "  ".join(parts)
