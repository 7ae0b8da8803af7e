"""Rows of ``trials.parquet`` and ``history.parquet`` from what a trial reported (plain values in: no Ray, no Tune).

The live Tune callback and ``hdc-ray export`` (both in ``hdc_ray.tune``) build rows with these same functions, so a rebuilt file equals
the one written during the sweep.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from hdc_ray.config import Config, flatten
from hdc_ray.results.columns import SCHEMA_VERSION
from hdc_ray.results.schema import metric_columns

_RUN_KEYS = ("label_ratio", "n_labeled", "split_hash", "task", "class_names", "distance_unit", "node")


def trial_row(
    sweep: str,
    trial_id: str,
    cfg: Config,
    *,
    status: str,
    results: list[dict[str, Any]],
    variant: str | None = None,
    error: str | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    epochs: list[dict[str, Any]] | None = None,
    checkpoint_path: str | None = None,
) -> dict[str, Any]:
    """One trial: its config, the best-epoch validation and the test metrics of its final report.

    ``epochs`` (default ``results``): every epoch of the trial, for the time totals, including epochs
    reported before a restart that ``results`` may not hold. ``checkpoint_path``: the trial's latest
    checkpoint when the reports do not name it (a trial that trains in-trial checkpoints through Tune).
    """
    last = results[-1] if results else {}
    row: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "sweep": sweep, "trial_id": trial_id, "status": status, "error": error,
        "method": cfg.train.method, "variant": variant, "seed": cfg.train.seed,
        **{k: last.get(k) for k in _RUN_KEYS},
        **{f"cfg.{k}": v for k, v in flatten(cfg).items()},
        "epochs_done": last.get("epoch"), "best_epoch": last.get("best_epoch"),
        **{c: last.get(f"best_{c}") for c in metric_columns(cfg, "val")},
        **{c: last.get(c) for c in metric_columns(cfg, "test")},
        "checkpoint_path": next((r["checkpoint_path"] for r in reversed(results) if r.get("checkpoint_path")), checkpoint_path),
        "started_at": started_at, "finished_at": finished_at,
        "hdc_ray_version": _version(), "git_commit": git_commit(),
    }  # fmt: skip
    timed = [r for r in (results if epochs is None else epochs) if r.get("epoch_time_s") is not None]
    if timed:
        row["train_time_s"] = sum(r["epoch_time_s"] for r in timed)
        row["images_per_s"] = sum(r["images_per_s"] for r in timed) / len(timed)
    return row


def history_row(sweep: str, trial_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """One reported epoch; the schema keeps its columns and drops Tune's bookkeeping."""
    return {**result, "schema_version": SCHEMA_VERSION, "sweep": sweep, "trial_id": trial_id}


# A report's key holding, as JSON, the epoch records of the checkpoint a trial resumed from (its first report after
# a resume only): the driver may have died before it wrote those epochs, and rewriting them makes the history whole.
RESTORED_EPOCHS = "restored_epochs"


def restored_epochs(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The epoch records a resumed trial's first report carries (empty for every other report)."""
    text = result.get(RESTORED_EPOCHS)
    return list(json.loads(text)) if isinstance(text, str) else []


def final_status(results: list[dict[str, Any]]) -> str:
    """A trial that ended without its final (``done``) report was stopped early by the scheduler."""
    return "completed" if results and results[-1].get("done") == 1 else "early_stopped"


def error_line(error: BaseException | str | None) -> str | None:
    """The last meaningful line of an error (Ray wraps the worker's exception in several layers)."""
    if error is None:
        return None
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else type(error).__name__


def _version() -> str:
    from hdc_ray import __version__

    return __version__


@cache
def git_commit() -> str | None:
    """The commit of the code that ran, when it runs from a git checkout (None for an installed wheel)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None
