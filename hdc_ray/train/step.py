"""One optimisation step of any method, in one place.

    L = w_sup L_sup + ramp(t) * (w_pc L_pc + w_cg L_cg + w_mi L_mi + w_cps L_cps)

``methods.method_terms`` computes the unweighted terms a method has (HDC: sup, pc, cg, mi; mean teacher:
sup, pc; CPS: sup, cps; supervised and supervised_ema: sup) and its statistics apart; ``losses.weighted_total`` forms L and
refuses a term that has no weight, so nothing can be logged without being optimised.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hdc_ray.config import Config
from hdc_ray.losses import weighted_total
from hdc_ray.train.batches import Batch
from hdc_ray.train.methods import Models, Stats, Terms, loss_weights, method_terms
from hdc_ray.train.schedules import ema_decay_at, lr_at, ramp_at
from hdc_ray.train.thresholds import AdaptiveThreshold


@dataclass(frozen=True)
class StepResult:
    total: Tensor  # the weighted total that was optimised (detached)
    terms: Terms  # each unweighted loss term (detached)
    stats: Stats  # statistics, e.g. the confident fraction of pixel consistency (detached)
    ramp: float  # ramp(t) used for the unsupervised terms
    lr: float


def step_losses(
    cfg: Config, model: nn.Module, teacher: nn.Module | None, batch: Batch, ramp: float, threshold: AdaptiveThreshold | None = None
) -> tuple[Tensor, Terms, Stats]:
    """Forward pass and the weighted total, with grad: ``(total, terms, stats)``.

    ``threshold`` (``Models.pc_threshold``, adaptive pixel consistency only) is advanced by this batch.
    """
    terms, stats = method_terms(cfg, model, teacher, batch, threshold)  # type: ignore[arg-type]
    return weighted_total(terms, loss_weights(cfg), ramp), terms, stats


def train_step(cfg: Config, models: Models, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, batch: Batch, step: int,
               unsup_start: int | None = 0) -> StepResult:  # fmt: skip
    """Set the step's lr, compute L, back-propagate, update the weights and then the EMA teacher.

    ``model`` is ``models.trainable`` or its DDP wrapper; the teacher is never wrapped and has no gradients.
    ``unsup_start``: the step the unsupervised terms ramp up from (``schedules.gate_start``; None: not yet).
    """
    lr, ramp = lr_at(cfg, step), ramp_at(cfg, step, unsup_start)
    for group in optimizer.param_groups:
        group["lr"] = lr
    with autocast(cfg, batch.x_w.device):
        total, terms, stats = step_losses(cfg, model, models.teacher, batch, ramp, models.pc_threshold)
    backward_step(cfg, model, optimizer, scaler, total)
    models.after_step(ema_decay_at(cfg, step))
    detached = {k: v.detach() for k, v in terms.items()}
    return StepResult(total.detach(), detached, {k: v.detach() for k, v in stats.items()}, ramp, lr)


def backward_step(cfg: Config, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, total: Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    if cfg.train.grad_clip > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
    scaler.step(optimizer)
    scaler.update()


def build_optimizer(cfg: Config, net: nn.Module) -> torch.optim.Optimizer:
    tc = cfg.train
    if tc.optimizer == "sgd":
        return torch.optim.SGD(net.parameters(), lr=tc.lr, momentum=0.9, weight_decay=tc.weight_decay)
    return torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)


def build_scaler(cfg: Config, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling only for fp16 (bf16 has fp32's exponent range)."""
    return torch.amp.GradScaler(device.type, enabled=cfg.train.precision == "fp16")


def autocast(cfg: Config, device: torch.device):  # type: ignore[no-untyped-def]
    if cfg.train.precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if cfg.train.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
