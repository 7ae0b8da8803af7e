"""From what the user names (a train folder, a checkpoint file, a sweep's results) to weights and their card.

    resolve("runs/tiny")                                  # best.pt of an in-process run
    resolve("runs/tiny/checkpoints/epoch_0002.pt")        # any checkpoint file (its best-validation weights)
    resolve("results/demo", best=1, labels=4)             # the sweep trial with the best validation score at 4 labels
    resolve("results/demo", trials=["c28499c0"])          # one trial of a sweep

Selection in a sweep is by the validation metric the runs selected on (``train.select_metric``), never by a
test metric. Every resolved checkpoint says how it was found (``Resolved.note``), so the user sees which
file was used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hdc_ray.config import Config, ConfigError, load_config
from hdc_ray.errors import UserError
from hdc_ray.train import checkpoint
from hdc_ray.train.card import ModelCard, card_of, config_from_flat
from hdc_ray.train.checkpoint import CheckpointError

STATE_FILE = "state.pt"  # what Ray Train and in-trial Tune checkpoints hold (distributed.worker.STATE_FILE)


class SourceError(UserError, ValueError):
    """SOURCE names no usable checkpoint, or a choice among trials is missing or impossible."""


@dataclass(frozen=True)
class Resolved:
    """One checkpoint file and how it was found; ``recorded``: what training reported for it (test/val metrics)."""

    path: Path
    note: str
    recorded: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedModel:
    path: Path
    note: str
    card: ModelCard
    weights: dict[str, torch.Tensor] = field(repr=False)
    config: Config | None  # the run's full config (evaluate rebuilds its split from it); None if unknown
    recorded: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def resolve(source: str | Path, *, trials: Sequence[str] = (), best: int | None = None, labels: int | None = None) -> list[Resolved]:
    """The checkpoint file(s) SOURCE names; several with ``best=K`` or several ``trials`` (an ensemble)."""
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(f"{source}: no such file or folder (expected a train output folder, a checkpoint file or a sweep's results folder)")
    sweep = _is_sweep(path)
    if (trials or best is not None or labels is not None) and not sweep:
        raise SourceError(f"{source}: --trial / --best / --top / --labels choose among the trials of a sweep, but this is not a sweep's results folder (no trials.parquet)")
    if sweep:
        if not trials and best is None:
            raise SourceError(f"{source} is a sweep's results folder: choose a trial with --trial ID, or --best (the best validation score; --labels N: at one budget; --top K: an ensemble of the K best)")
        return _from_sweep(path, trials, best, labels)
    return [_from_path(path)]


def _is_sweep(path: Path) -> bool:
    return path.is_dir() and ((path / "trials.parquet").exists() or any((p / "trials.parquet").exists() for p in path.iterdir() if p.is_dir()))


def _from_path(path: Path) -> Resolved:
    if path.is_file():
        return Resolved(path, f"checkpoint {path}", _recorded_beside(path))
    if (path / "best.pt").is_file():
        return Resolved(path / "best.pt", f"{path / 'best.pt'} (the best-validation weights of the run in {path})", _recorded_beside(path / "best.pt"))
    if (path / STATE_FILE).is_file():
        return Resolved(path / STATE_FILE, f"{path / STATE_FILE} (its best-validation weights)")
    ray_checkpoints = sorted(p / STATE_FILE for p in path.glob("checkpoint_*") if (p / STATE_FILE).is_file())
    if ray_checkpoints:
        latest = ray_checkpoints[-1]
        return Resolved(latest, f"{latest} (the latest Ray checkpoint of {path}: its best-validation weights)", _recorded_beside(latest.parent))
    epochs = checkpoint.list_epochs(path / "checkpoints")
    if epochs:
        return Resolved(epochs[-1], f"{epochs[-1]} (no best.pt: the run did not finish; the best-validation weights so far)")
    raise SourceError(f"{path}: no checkpoint here (expected best.pt, checkpoint_*/{STATE_FILE}, checkpoints/epoch_*.pt, or a sweep's trials.parquet)")


def _recorded_beside(path: Path) -> dict[str, float]:
    """The run's recorded metrics: ``metrics.json`` of its folder (in-process and Ray Train runs)."""
    import json

    for folder in (path.parent, path.parent.parent):
        metrics = folder / "metrics.json"
        if metrics.is_file():
            try:
                data = json.loads(metrics.read_text())
            except (OSError, ValueError):
                return {}
            return {k: float(v) for k, v in data.items() if k.startswith(("val_", "test_")) and isinstance(v, (int, float))}
    return {}


# ------------------------------------------------------------------------------------------- sweeps


def _from_sweep(path: Path, trials: Sequence[str], best: int | None, labels: int | None) -> list[Resolved]:
    from hdc_ray.analysis import read_results
    from hdc_ray.analysis.tables import AnalysisError

    try:
        results = read_results(path)
    except AnalysisError as exc:
        raise SourceError(str(exc)) from None
    if len(results.sweeps) > 1:
        raise SourceError(f"{path} holds several sweeps ({', '.join(results.sweeps)}); name one: {path}/<sweep>")
    sweep_dir = path if (path / "trials.parquet").exists() else path / results.sweeps[0]
    table = results.finished
    if trials:
        return [_trial(sweep_dir, table, results.trials, tid) for tid in trials]
    if labels is not None:
        budgets = sorted({int(n) for n in table["n_labeled"].dropna()})
        table = table[table["n_labeled"] == labels]
        if table.empty:
            raise SourceError(f"--labels {labels}: no finished trial of {sweep_dir} trained with {labels} labelled images; budgets there: {budgets}")
    metric = _select_metric(table)
    scored = table[table[metric].notna()] if metric in table else table.iloc[0:0]
    if scored.empty:
        raise SourceError(f"{sweep_dir}: no finished trial with a {metric} score to choose by")
    from hdc_ray.results.columns import higher_is_better

    ranked = scored.sort_values(metric, ascending=not higher_is_better(metric), kind="stable")
    k = max(1, int(best or 1))
    if k > len(ranked):
        raise SourceError(f"--top {k}: only {len(ranked)} finished trial(s) to choose from in {sweep_dir}")
    where = f" at {labels} labelled images" if labels is not None else ""
    chosen = []
    for rank, (_, row) in enumerate(ranked.head(k).iterrows(), start=1):
        resolved = _trial(sweep_dir, table, results.trials, str(row["trial_id"]))
        why = f"rank {rank} of {len(ranked)} finished trials{where} by {metric} {row[metric]:.4f}"
        chosen.append(Resolved(resolved.path, f"{resolved.note}; {why}", resolved.recorded))
    return chosen


def _select_metric(table: Any) -> str:
    """What the runs selected their weights on (``train.select_metric``), also the fair way to rank trials."""
    column = "cfg.train.select_metric"
    if column in table and table[column].notna().any():
        return str(table[column].dropna().iloc[0])
    return "val_dice_fg"


def _trial(sweep_dir: Path, finished: Any, every: Any, trial_id: str) -> Resolved:
    rows = finished[finished["trial_id"] == trial_id]
    if rows.empty:
        known = every[every["trial_id"] == trial_id]
        if not known.empty:
            raise SourceError(f"--trial {trial_id}: the trial is {known.iloc[-1]['status']}, not finished; its weights were never tested")
        ids = ", ".join(sorted(map(str, finished["trial_id"]))[:8])
        raise SourceError(f"--trial {trial_id}: no such trial in {sweep_dir} (finished trials: {ids})")
    row = rows.iloc[-1]
    recorded = {k: float(v) for k, v in row.items() if str(k).startswith(("val_", "test_")) and isinstance(v, (int, float)) and not math.isnan(v)}
    path = _trial_checkpoint(sweep_dir, trial_id, row.get("checkpoint_path"))
    return Resolved(path, f"trial {trial_id} of {sweep_dir.name} ({path})", recorded)


def _trial_checkpoint(sweep_dir: Path, trial_id: str, recorded: Any) -> Path:
    """The trial's last checkpoint: where the sweep recorded it, else found in the sweep folder (moved results).

    In-trial runs record a file (``train/TRIAL_ID/checkpoints/epoch_N.pt``), Train runs a folder holding ``state.pt``.
    """
    if isinstance(recorded, str) and "://" not in recorded:
        if Path(recorded).is_file():
            return Path(recorded)
        if (Path(recorded) / STATE_FILE).is_file():
            return Path(recorded) / STATE_FILE
    own = sorted(sweep_dir.glob(f"train/{trial_id}/checkpoints/epoch_*.pt"), key=lambda p: p.name)
    if own:
        return own[-1]
    candidates = [*sweep_dir.glob(f"tune/{trial_id}/checkpoint_*/{STATE_FILE}"), *sweep_dir.glob(f"train/*-{trial_id}/checkpoint_*/{STATE_FILE}")]
    if candidates:
        return sorted(candidates, key=lambda p: p.parent.name)[-1]
    where = f" (recorded at {recorded})" if isinstance(recorded, str) else ""
    raise SourceError(f"trial {trial_id}: no checkpoint found{where} nor under {sweep_dir}/train/{trial_id}/checkpoints/, "
                      f"{sweep_dir}/train/ or {sweep_dir}/tune/{trial_id}/")


# ------------------------------------------------------------------------------------------- loading


def load_model(resolved: Resolved) -> LoadedModel:
    """Weights, card and config of one checkpoint; a checkpoint without a card falls back to its config."""
    state = checkpoint.load(resolved.path)
    weights = state.get("weights") if "weights" in state else state.get("best_weights")
    if not weights:
        raise CheckpointError(f"{resolved.path}: holds no selected weights (no validation epoch finished yet); use a later checkpoint")
    config, warnings = _config_of(state, resolved.path)
    if state.get("card") is not None:
        try:
            card = ModelCard.from_dict(state["card"])
        except ValueError as exc:
            raise CheckpointError(f"{resolved.path}: {exc}") from None
    elif config is not None:
        card = card_of(config)
        warnings.append(f"{resolved.path} predates model cards: task, classes and input size come from the run's config")
    else:
        raise CheckpointError(
            f"{resolved.path}: no model card and no config (in the file or as config.yaml beside it): cannot tell its task, "
            "classes or input size; put the run's config.yaml next to it, or retrain with this hdc-ray"
        )
    _check_weights(resolved.path, card, weights)
    return LoadedModel(resolved.path, resolved.note, card, dict(weights), config, resolved.recorded, tuple(warnings))


def _config_of(state: dict[str, Any], path: Path) -> tuple[Config | None, list[str]]:
    """The run's config: in the checkpoint (snapshots: ``config``; best.pt: ``metrics.config``), else config.yaml beside it."""
    flat = state.get("config") or (state.get("metrics") or {}).get("config")
    warnings: list[str] = []
    if isinstance(flat, dict):
        try:
            cfg, dropped = config_from_flat(flat)
        except ValueError as exc:
            raise CheckpointError(f"{path}: its stored config is not valid for this hdc-ray: {exc}") from None
        if dropped:
            warnings.append(f"{path}: config keys unknown to this hdc-ray ignored: {', '.join(dropped[:5])}")
        return cfg, warnings
    for folder in (path.parent, path.parent.parent):
        if (folder / "config.yaml").is_file():
            try:
                return load_config(folder / "config.yaml"), [f"{path}: config taken from {folder / 'config.yaml'}"]
            except ConfigError as exc:
                raise CheckpointError(f"{path}: the config.yaml beside it is not valid: {exc}") from None
    return None, warnings


def _check_weights(path: Path, card: ModelCard, weights: dict[str, torch.Tensor]) -> None:
    from hdc_ray.model import build_segnet

    net = build_segnet(card.model, card.num_classes)
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{path}: its weights do not fit the architecture its card describes ({card.describe()}): {first}") from None


def load_models(resolved: Sequence[Resolved], expect_task: str | None = None, what: str = "") -> list[LoadedModel]:
    """Load every checkpoint and refuse a mix (an ensemble of other tasks, classes or input sizes) or another task."""
    models = [load_model(r) for r in resolved]
    first = models[0]
    for other in models[1:]:
        if (other.card.task, other.card.class_names) != (first.card.task, first.card.class_names):
            raise CheckpointError(f"--ensemble: {other.path} segments {_classes(other.card)} but {first.path} segments {_classes(first.card)}; "
                                  "an ensemble averages one task's classes")  # fmt: skip
        if other.card.input_size != first.card.input_size:
            raise CheckpointError(f"--ensemble: {other.path} works at {other.card.input_size} px but {first.path} at {first.card.input_size} px")
    from hdc_ray.data.tasks import CLASS_NAMES

    if expect_task is not None and (first.card.task, first.card.class_names) != (expect_task, CLASS_NAMES[expect_task]):
        expected = f"{expect_task} ({', '.join(CLASS_NAMES[expect_task][1:])})"
        raise CheckpointError(f"{first.path} segments {_classes(first.card)}, but {what} is {expected}: use a checkpoint of that task")
    return models


def _classes(card: ModelCard) -> str:
    return f"{card.task} ({card.num_classes} classes: {', '.join(card.class_names[1:])})"
