"""The state of the self-adaptive pseudo-label threshold (``loss.threshold_kind="adaptive"``).

The arithmetic is pure (``losses.consistency``); this object only carries it from step to step. It lives in
``Models.pc_threshold`` and goes into every checkpoint (``checkpoint.snapshot``), so a resumed run continues
with exactly the threshold it had. Under DDP each rank sees a shard of the global batch: the statistic is
a vector of sums, all-reduced before the update, so every rank holds the same threshold (the one a single
process would have on the whole batch, up to summation order).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch import distributed as torch_dist

from hdc_ray.losses.consistency import adaptive_thresholds, confidence_sums, ema_confidence_update, initial_confidence


class AdaptiveThreshold:
    """FreeMatch self-adaptive threshold: global tau and per-class confidences, updated by EMA each step."""

    def __init__(self, num_classes: int, momentum: float, per_class: bool) -> None:
        if num_classes < 2:
            raise ValueError(f"an adaptive threshold needs >= 2 classes, got {num_classes}")
        self.momentum, self.per_class = momentum, per_class
        self.tau, self.class_conf = initial_confidence(num_classes)
        self.updates = 0

    @torch.no_grad()
    def update(self, teacher_logits: Tensor, valid: Tensor | None = None) -> None:
        """Fold one batch of teacher logits (B, C, H, W) into the EMA, summed over DDP ranks first."""
        sums = confidence_sums(teacher_logits, valid)
        if torch_dist.is_available() and torch_dist.is_initialized():
            torch_dist.all_reduce(sums)
        self.tau, self.class_conf = ema_confidence_update(self.tau, self.class_conf, sums.cpu(), self.momentum)
        self.updates += 1

    def thresholds(self) -> Tensor:
        """(C,) float32 per-class thresholds of the current state."""
        return adaptive_thresholds(self.tau, self.class_conf, self.per_class).float()

    def state_dict(self) -> dict[str, Tensor | int]:
        return {"tau": self.tau.clone(), "class_conf": self.class_conf.clone(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Tensor | int]) -> None:
        tau, class_conf = state["tau"], state["class_conf"]
        assert isinstance(tau, Tensor) and isinstance(class_conf, Tensor)
        if class_conf.shape != self.class_conf.shape:
            raise ValueError(f"adaptive threshold state has {class_conf.shape[0]} classes, the model {self.class_conf.shape[0]}")
        self.tau, self.class_conf = tau.to(torch.float64).clone(), class_conf.to(torch.float64).clone()
        self.updates = int(state["updates"])
