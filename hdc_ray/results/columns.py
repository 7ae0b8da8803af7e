"""Facts about the results tables that writers, the training loop and the analysis all rely on: one home each.

Dependency-free on purpose (no pyarrow, no torch), so anything may import it.
"""

from __future__ import annotations

import re
from typing import Literal

SCHEMA_VERSION = 1  # of trials/history Parquet; readers refuse other versions (docs/results-schema.md)

STATUSES = ("completed", "early_stopped", "failed", "running")
FINISHED_STATUSES = ("completed", "early_stopped")  # the trials analyses average over

Direction = Literal["max", "min"]
METRIC_RE = re.compile(r"^(train|val|test)_(dice|jaccard|hd95|asd)_(.+)$")  # <split>_<metric>_<class>
DISTANCE_METRICS = ("hd95", "asd")


def metric_direction(metric: str) -> Direction | None:
    """Is a higher or a lower value of this column better? None when the name does not say."""
    m = METRIC_RE.match(metric)
    if m:
        return "min" if m.group(2) in DISTANCE_METRICS else "max"
    if "loss" in metric or metric.endswith("_time_s") or metric in ("label_ratio", "n_labeled"):
        return "min"
    if metric in ("images_per_s", "train_confident_fraction"):
        return "max"
    return None


def higher_is_better(metric: str) -> bool:
    """For model selection: Dice/Jaccard up, distances and losses down."""
    direction = metric_direction(metric)
    if direction is None:
        raise ValueError(f"cannot tell whether a higher or lower {metric!r} is better")
    return direction == "max"
