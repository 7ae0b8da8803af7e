"""In-process training (no Ray): ``hdc-ray train CONFIG`` without ``--workers``.

Writes into ``OUT``: ``config.yaml`` (resolved), ``checkpoints/epoch_NNNN.pt`` (resume points),
``best.pt`` (eval-network weights of the best validation epoch), ``history.csv`` (one row per epoch) and
``metrics.json`` (best-epoch validation + test metrics, split hash, label ratio).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from hdc_ray.config import Config, dump_yaml, flatten
from hdc_ray.errors import UserError
from hdc_ray.outputs import check_writable
from hdc_ray.train import checkpoint
from hdc_ray.train.loop import FitResult, fit
from hdc_ray.train.methods import check_data_for_method
from hdc_ray.train.store import CheckpointFolder

# Keys that may change between a run and its resumption (more epochs, another device).
RESUMABLE_CHANGES = {"train.epochs", "train.device", "dist.workers", "dist.use_gpu", "dist.storage_path"}


class ResumeError(UserError, ValueError):
    """A resume was asked for, but the checkpoint belongs to a different configuration."""


def run_local(cfg: Config, out_dir: Path, resume: bool = False, progress: bool = True) -> tuple[FitResult, dict[str, Any]]:
    from hdc_ray.data import build_data

    # Everything that can refuse the run comes before the first byte is written: a failed start leaves
    # OUT exactly as it was (no half-made run folder for the next attempt to trip over).
    check_writable(out_dir, "--out")
    store = CheckpointFolder(str(out_dir / "checkpoints"), cfg.train.keep_checkpoints)
    snapshot = _resume_state(cfg, store) if resume else None
    if not resume and store.names():
        raise ResumeError(f"{out_dir} already holds checkpoints: pass --resume to continue, or choose another --out")
    data = build_data(cfg.data, progress=progress)
    check_data_for_method(cfg, data)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_text(out_dir / "config.yaml", dump_yaml(cfg))
    print(f"data: {len(data.labeled)} labelled, {len(data.unlabeled)} unlabelled, {len(data.val)} val, {len(data.test)} test; split {data.split_hash}")

    history: list[dict[str, float]] = list(snapshot["history"]) if snapshot else []

    def on_epoch(record: dict[str, float], state: dict[str, Any] | None) -> None:
        history.append(record)
        _write_csv(out_dir / "history.csv", history)
        if state is not None:
            store.save(state)

    result = fit(cfg, data, on_epoch=on_epoch, resume=snapshot, progress=progress)
    summary = run_summary(cfg, data, result)
    checkpoint.save_atomic(checkpoint.best_checkpoint(cfg, result.best_weights, summary), out_dir / "best.pt")
    _write_json(out_dir / "metrics.json", summary)
    return result, summary


def run_metadata(cfg: Config, data: Any) -> dict[str, Any]:
    """What identifies a run's data and method: in ``metrics.json`` and in every Ray Train report."""
    return {
        "method": cfg.train.method,
        "task": data.task,
        "label_ratio": data.label_ratio,
        "n_labeled": len(data.labeled),
        "seed": cfg.train.seed,
        "split_hash": data.split_hash,
        "class_names": ",".join(data.class_names[1:]),
        "distance_unit": "mm" if any(s is not None for s in data.test.spacing) else "px",
    }


def run_summary(cfg: Config, data: Any, result: FitResult) -> dict[str, Any]:
    """The final record of an in-process run (``metrics.json``)."""
    return {**run_metadata(cfg, data), **result.summary(), "config": flatten(cfg)}


def final_line(summary: dict[str, Any]) -> str:
    """The one line a finished run prints: selected epoch, its validation and test metrics, the split."""
    keys = ("val_dice_fg", "test_dice_fg", "test_hd95_fg", "test_asd_fg")
    shown = "  ".join(f"{k} {summary[k]:.4f}" for k in keys if k in summary)
    return f"best epoch {int(summary['best_epoch'])}: {shown}  (split {summary.get('split_hash')}, {summary.get('n_labeled')} labelled)"


def _resume_state(cfg: Config, store: CheckpointFolder) -> dict[str, Any] | None:
    """The newest readable checkpoint (an unreadable newer one is named and skipped), checked against ``cfg``."""
    state, path, skipped = store.load_latest()
    for note in skipped:
        print(f"note: {note}")
    if state is None:
        if skipped:
            raise checkpoint.CheckpointError(f"--resume: no checkpoint in {store.uri} can be read ({skipped[-1]}); start afresh in another --out")
        print(f"--resume: no checkpoint in {store.uri}; starting from scratch")
        return None
    current = flatten(cfg)
    changed = sorted(k for k, v in state["config"].items() if current.get(k) != v and k not in RESUMABLE_CHANGES)
    if changed:
        diffs = ", ".join(f"{k}: {state['config'][k]!r} -> {current.get(k)!r}" for k in changed[:5])
        raise ResumeError(f"{path} was written by a different configuration ({diffs}); use another --out")
    print(f"resuming from {path}")
    return state


def _write_csv(path: Path, rows: list[dict[str, float]]) -> None:
    """Rewrite the whole file: epochs without validation have fewer columns than those with it."""
    fields = list(dict.fromkeys(k for row in rows for k in row))
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    _write_text(path, json.dumps(obj, indent=2, default=str))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
