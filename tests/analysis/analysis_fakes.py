"""A fake RESULTS folder that follows docs/results-schema.md exactly, with known answers baked in.

Sweep ``budget`` (cervix, pool of 100 images): supervised, mean_teacher and hdc at label ratios
5/10/20/50% over seeds 0-2. Seed offsets are -0.01/0/+0.01, so the mean test Dice is exactly:

    supervised   0.60 0.70 0.78 0.86
    mean_teacher 0.66 0.75 0.81 0.87
    hdc          0.72 0.80 0.84 0.88

hence hdc reaches supervised@50% (0.86) at 35% labels (halfway between 20% and 50%): 30% saved.
One hdc trial failed, two are still running (partial sweep).

Sweep ``ablation`` (10%, seeds 0-3, split hashes shared with ``budget``): full ``hdc``, ``no_cg``
(variant null, cfg.loss.w_cg = 0, so inferred as ``hdc-no_cg``), ``no_mi``, ``no_pc`` and the
``supervised`` baseline, each a known per-seed difference from hdc (see ``ABLATION_DIFFS``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CLASSES = ("anterior_lip", "posterior_lip")
RATIOS = (0.05, 0.1, 0.2, 0.5)
POOL = 100
BUDGET_MEANS = {
    "supervised": (0.60, 0.70, 0.78, 0.86),
    "mean_teacher": (0.66, 0.75, 0.81, 0.87),
    "hdc": (0.72, 0.80, 0.84, 0.88),
}
SEED_OFFSETS = (-0.01, 0.0, 0.01)
ABLATION_HDC = (0.78, 0.80, 0.81, 0.81)  # hdc test Dice per seed 0-3 at 10%
ABLATION_DIFFS = {  # (variant, method, cfg.loss weights) -> per-seed difference from hdc
    ("no_cg", "hdc", (1.0, 0.0, 1.0)): (-0.025, -0.035, -0.025, -0.035),  # mean -0.03
    ("no_mi", "hdc", (1.0, 1.0, 0.0)): (0.01, -0.012, 0.008, -0.01),  # mean -0.001: unclear
    ("no_pc", "hdc", (0.0, 1.0, 1.0)): (-0.05, -0.07, -0.06, -0.06),  # mean -0.06
    ("supervised", "supervised", (0.0, 0.0, 0.0)): (-0.09, -0.11, -0.10, -0.10),  # mean -0.10
}
CFG_TYPES: dict[str, pa.DataType] = {
    "cfg.train.method": pa.string(),
    "cfg.train.seed": pa.int64(),
    "cfg.train.epochs": pa.int64(),
    "cfg.train.lr": pa.float64(),
    "cfg.data.label_ratio": pa.float64(),
    "cfg.loss.w_pc": pa.float64(),
    "cfg.loss.w_cg": pa.float64(),
    "cfg.loss.w_mi": pa.float64(),
    "cfg.loss.cg_levels": pa.string(),  # a tuple in the config: comma-joined
    "cfg.noise.feature_noise": pa.float64(),
    "cfg.dist.use_gpu": pa.bool_(),
}
T0 = datetime(2025, 5, 1, tzinfo=UTC)


def _metric_fields(splits: Iterable[str], metrics: Iterable[str]) -> list[pa.Field]:
    return [pa.field(f"{s}_{m}_{c}", pa.float64()) for s in splits for m in metrics for c in ("fg", *CLASSES)]


def trials_schema() -> pa.Schema:
    """trials.parquet, column for column as in docs/results-schema.md."""
    head = [
        ("schema_version", pa.int32()),
        ("sweep", pa.string()),
        ("trial_id", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("method", pa.string()),
        ("variant", pa.string()),
        ("label_ratio", pa.float64()),
        ("n_labeled", pa.int64()),
        ("seed", pa.int64()),
        ("split_hash", pa.string()),
        ("task", pa.string()),
        ("class_names", pa.string()),
        ("distance_unit", pa.string()),
    ]
    tail = [
        ("train_time_s", pa.float64()),
        ("images_per_s", pa.float64()),
        ("checkpoint_path", pa.string()),
        ("node", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("hdc_ray_version", pa.string()),
        ("git_commit", pa.string()),
    ]
    return pa.schema(
        [pa.field(n, t) for n, t in head]
        + [pa.field(n, t) for n, t in CFG_TYPES.items()]
        + [pa.field("epochs_done", pa.int64()), pa.field("best_epoch", pa.int64())]
        + _metric_fields(["val"], ["dice", "jaccard", "hd95", "asd"])
        + _metric_fields(["test"], ["dice", "jaccard", "hd95", "asd"])
        + [pa.field(n, t) for n, t in tail]
    )


def history_schema() -> pa.Schema:
    """history.parquet, column for column as in docs/results-schema.md."""
    losses = [
        "train_loss",
        "train_loss_sup",
        "train_loss_pc",
        "train_loss_cg",
        "train_loss_mi",
        "train_loss_cps",
        "train_confident_fraction",
        "train_pc_threshold",
    ]
    return pa.schema(
        [
            pa.field("schema_version", pa.int32()),
            pa.field("sweep", pa.string()),
            pa.field("trial_id", pa.string()),
            pa.field("epoch", pa.int64()),
        ]
        + [pa.field(n, pa.float64()) for n in losses]
        + _metric_fields(["val"], ["dice", "jaccard", "hd95", "asd"])
        + [pa.field(n, pa.float64()) for n in ("lr", "ramp", "epoch_time_s", "images_per_s")]
    )


def write_table(path: Path, rows: list[dict[str, Any]], schema: pa.Schema, version: int) -> None:
    """Write rows (missing keys are null) with the fixed schema, atomically like the sweep."""
    full = [{**{f.name: None for f in schema}, **r, "schema_version": version} for r in rows]
    table = pa.Table.from_pylist(full, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def write_sweep(
    root: Path,
    name: str,
    trials: list[dict[str, Any]],
    history: list[dict[str, Any]] | None = None,
    *,
    version: int = 1,
) -> Path:
    folder = root / name
    write_table(folder / "trials.parquet", trials, trials_schema(), version)
    if history is not None:
        write_table(folder / "history.parquet", history, history_schema(), version)
    return folder


def trial_row(
    sweep: str,
    trial_id: str,
    method: str,
    ratio: float,
    seed: int,
    dice: float | None,
    *,
    status: str = "completed",
    variant: str | None = None,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> dict[str, Any]:
    """One trials.parquet row; metrics follow from ``dice`` (null for failed/running trials)."""
    cost = {"supervised": 1.0, "mean_teacher": 1.6, "hdc": 1.8}.get(method, 2.0)
    row: dict[str, Any] = {
        "sweep": sweep,
        "trial_id": trial_id,
        "status": status,
        "method": method,
        "variant": variant,
        "label_ratio": ratio,
        "n_labeled": round(ratio * POOL),
        "seed": seed,
        "split_hash": f"s{seed}-r{ratio}",
        "task": "cervix",
        "class_names": ",".join(CLASSES),
        "distance_unit": "px",
        "cfg.train.method": method,
        "cfg.train.seed": seed,
        "cfg.train.epochs": 5,
        "cfg.train.lr": 1e-4,
        "cfg.data.label_ratio": ratio,
        "cfg.loss.w_pc": weights[0],
        "cfg.loss.w_cg": weights[1],
        "cfg.loss.w_mi": weights[2],
        "cfg.loss.cg_levels": "bottleneck,dec_last",
        "cfg.noise.feature_noise": 0.3 if method == "hdc" else 0.0,
        "cfg.dist.use_gpu": False,
        "node": "node-1",
        "hdc_ray_version": "0.1.0",
        "git_commit": "abc1234",
        "started_at": T0 + timedelta(minutes=seed),
    }
    if status == "failed":
        row["error"] = "RuntimeError: CUDA out of memory"
    if dice is None or status in ("failed", "running"):
        return row
    epochs = 5 if status == "completed" else 2
    row.update(
        {
            "epochs_done": epochs,
            "best_epoch": epochs,
            "train_time_s": cost * (60 + 200 * ratio) + seed,
            "images_per_s": 50.0 / cost,
            "checkpoint_path": f"/ckpt/{sweep}/{trial_id}",
            "finished_at": T0 + timedelta(hours=1, minutes=seed),
        }
    )
    for split, shift in (("val", 0.01), ("test", 0.0)):
        for cls, d in (("fg", dice), (CLASSES[0], dice + 0.02), (CLASSES[1], dice - 0.02)):
            row[f"{split}_dice_{cls}"] = d + shift
            row[f"{split}_hd95_{cls}"] = 40 * (1 - d - shift)
            row[f"{split}_jaccard_{cls}"] = (d + shift) / (2 - d - shift)
            row[f"{split}_asd_{cls}"] = 10 * (1 - d - shift)
    return row


def history_rows(trial: dict[str, Any], epochs: int) -> list[dict[str, Any]]:
    """Per-epoch rows converging to the trial's validation Dice (or 0.7 for running trials)."""
    final = trial.get("val_dice_fg") or 0.7
    hdc = trial["method"] == "hdc"
    rows = []
    for e in range(1, epochs + 1):
        loss = 1.2 * math.exp(-0.4 * e) + 0.1
        rows.append(
            {
                "sweep": trial["sweep"],
                "trial_id": trial["trial_id"],
                "epoch": e,
                "train_loss": loss,
                "train_loss_sup": 0.6 * loss,
                "train_loss_pc": 0.2 * loss if hdc else None,
                "train_loss_cg": 0.1 * loss if hdc else None,
                "train_loss_mi": 0.1 * loss if hdc else None,
                "train_confident_fraction": min(1.0, 0.5 + 0.1 * e) if hdc else None,
                "val_dice_fg": final * (1 - 0.5 * math.exp(-e)),
                "val_hd95_fg": 40 * (1 - final * (1 - 0.5 * math.exp(-e))),
                "lr": 1e-4 * (1 - e / 6),
                "ramp": math.exp(-5 * (1 - e / 5) ** 2),
                "epoch_time_s": 12.0,
                "images_per_s": 50.0,
            }
        )
    return rows


def budget_trials() -> list[dict[str, Any]]:
    rows = []
    for method, means in BUDGET_MEANS.items():
        for ratio, mean in zip(RATIOS, means, strict=True):
            for seed, off in enumerate(SEED_OFFSETS):
                tid = f"{method}_{ratio}_{seed}"
                rows.append(trial_row("budget", tid, method, ratio, seed, round(mean + off, 6)))
    rows.append(trial_row("budget", "hdc_0.1_3", "hdc", 0.1, 3, None, status="failed"))
    rows.append(trial_row("budget", "hdc_0.5_3", "hdc", 0.5, 3, None, status="running"))
    rows.append(trial_row("budget", "sup_0.5_3", "supervised", 0.5, 3, None, status="running"))
    return rows


def ablation_trials() -> list[dict[str, Any]]:
    rows = [trial_row("ablation", f"hdc_{s}", "hdc", 0.1, s, d, variant="hdc") for s, d in enumerate(ABLATION_HDC)]
    for (variant, method, weights), diffs in ABLATION_DIFFS.items():
        for s, (base, diff) in enumerate(zip(ABLATION_HDC, diffs, strict=True)):
            given = None if variant == "no_cg" else variant  # no_cg must be inferred from cfg
            status = "early_stopped" if (variant, s) == ("no_pc", 3) else "completed"
            rows.append(
                trial_row(
                    "ablation", f"{variant}_{s}", method, 0.1, s, round(base + diff, 6), variant=given, weights=weights, status=status
                )
            )
    return rows


def _history_for(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for t in trials:
        if t["status"] != "failed":
            rows += history_rows(t, t.get("epochs_done") or 3)
    return rows


def write_fake_results(root: Path) -> Path:
    """Both sweeps under ``root``; returns ``root``."""
    for name, trials in (("budget", budget_trials()), ("ablation", ablation_trials())):
        write_sweep(root, name, trials, _history_for(trials))
    return root


def make_trials(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A hand-built trials table: each row needs its metrics; the bookkeeping columns get defaults."""
    defaults: dict[str, Any] = {"sweep": "s", "status": "completed", "method": "hdc", "variant": None, "label_ratio": 0.1, "seed": 0}
    full = [{**defaults, **r} for r in rows]
    for i, r in enumerate(full):
        r.setdefault("trial_id", f"t{i}")
        r.setdefault("split_hash", f"split{r['seed']}-{r['label_ratio']}")
        r.setdefault("n_labeled", round(r["label_ratio"] * POOL))
    return pd.DataFrame(full)
