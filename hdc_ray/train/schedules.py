"""What changes with the step count: learning rate, ramp-up of the unsupervised terms, EMA decay."""

from __future__ import annotations

import math

from hdc_ray.config import Config
from hdc_ray.losses import sigmoid_rampup


def lr_at(cfg: Config, step: int) -> float:
    """Linear warm-up over ``train.warmup_iters``, then constant or cosine (``train.schedule``), the cosine
    reaching 0 after max(``train.cosine_steps``, the run's steps): a run shorter than ``cosine_steps`` is the
    start of that longer schedule."""
    tc = cfg.train
    total = max(tc.epochs * tc.iters_per_epoch, tc.cosine_steps or 0)
    if step < tc.warmup_iters:
        return tc.lr * (step + 1) / tc.warmup_iters
    if tc.schedule == "constant":
        return tc.lr
    progress = (step - tc.warmup_iters) / max(1, total - tc.warmup_iters)
    return tc.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def ramp_at(cfg: Config, step: int, start: int | None = 0) -> float:
    """ramp(t) of the unsupervised terms: sigmoid ramp-up over ``loss.ramp_fraction`` of all steps from ``start``
    (the step the class gate opened; None: still closed, 0); 1 for FixMatch / UniMatch, which have none, unless
    ``loss.fixmatch_ramp``."""
    if start is None:
        return 0.0
    if cfg.train.method in ("fixmatch", "unimatch") and not cfg.loss.fixmatch_ramp:
        return 1.0
    length = cfg.loss.ramp_fraction * cfg.train.epochs * cfg.train.iters_per_epoch
    return sigmoid_rampup(step - start, length)


def gate_start(cfg: Config, history: list[dict[str, float]], class_names: tuple[str, ...]) -> int | None:
    """The step the unsupervised terms start from: 0 without ``loss.class_gate``; with it, the end of the first epoch
    whose validation found every foreground class (Dice >= ``loss.class_gate_dice``), or None while none has. Read
    from the history, so a resumed run opens its gate where the uninterrupted one did."""
    if not cfg.loss.class_gate:
        return 0
    keys = [f"val_dice_{c}" for c in class_names[1:]]
    for record in history:
        if all(record.get(k, -1.0) >= cfg.loss.class_gate_dice for k in keys):
            return int(record["epoch"]) * cfg.train.iters_per_epoch
    return None


def ema_decay_at(cfg: Config, step: int) -> float:
    """min(1 - 1/(t+1), train.ema_decay): a short EMA memory while the student is young (Mean Teacher)."""
    return min(1.0 - 1.0 / (step + 1), cfg.train.ema_decay)
