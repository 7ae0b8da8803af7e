"""Checkpoints: plain dicts of tensors and numbers, so ``torch.load(path, weights_only=True)`` reads them.

Layout of a folder of checkpoints: ``epoch_0003.pt`` (the most recent ``train.keep_checkpoints`` are kept;
written and pruned by :class:`hdc_ray.train.store.CheckpointFolder`) and ``best.pt`` (eval network weights
of the best validation epoch). Every write is atomic (write to a temporary file, then rename), so a crash
never leaves a half-written checkpoint behind. Every checkpoint
carries a ``"card"`` (``hdc_ray.train.card``: task, class names, input size, normalisation,
architecture), so ``hdc-ray predict`` can use it without a config.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch

from hdc_ray.config import Config, flatten
from hdc_ray.errors import UserError
from hdc_ray.train.card import card_of

if TYPE_CHECKING:
    from hdc_ray.train.methods import Models

FORMAT = 1
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.pt$")


def save_atomic(obj: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


class CheckpointError(UserError, ValueError):
    """A checkpoint file is corrupt, truncated, or not one hdc-ray wrote."""


def load(path: Path | IO[bytes], label: str | None = None) -> dict[str, Any]:
    """A checkpoint from a file (or an open binary stream, named by ``label`` in errors)."""
    where = label or path
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types; its text advises weights_only=False, unsafe to repeat
        raise CheckpointError(f"{where}: corrupt or not a checkpoint ({type(exc).__name__}); delete it to resume from an earlier checkpoint, or start afresh in another folder") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{where}: a PyTorch file, but not an hdc-ray checkpoint (no 'format': {FORMAT} entry); start afresh in another folder")
    return state


def list_epochs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _EPOCH_FILE.search(p.name)), key=lambda p: p.name)


@dataclass
class TrainState:
    """What a run has done so far: completed epochs, the best validation epoch and its weights, the history."""

    epoch: int = 0  # completed epochs
    best_epoch: int = 0
    best_value: float = -math.inf
    best_val: dict[str, float] = field(default_factory=dict)
    best_weights: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)


def snapshot(cfg: Config, models: Models, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, state: TrainState) -> dict[str, Any]:
    """Everything needed to continue exactly: weights, optimiser, best-so-far, history (no pickled objects)."""
    return {
        "format": FORMAT,
        "epoch": state.epoch,
        "trainable": {k: v.detach().cpu() for k, v in models.trainable.state_dict().items()},
        "teacher": None if models.teacher is None else {k: v.detach().cpu() for k, v in models.teacher.state_dict().items()},
        # The adaptive pseudo-label threshold is an EMA over all steps so far: without it a resume would
        # restart from 1/C and diverge from the uninterrupted run.
        "pc_threshold": None if models.pc_threshold is None else models.pc_threshold.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "best": {"epoch": state.best_epoch, "value": state.best_value, "val": state.best_val},
        "best_weights": state.best_weights,
        "history": state.history,
        "config": dict(flatten(cfg)),
        "card": card_of(cfg).to_dict(),  # what best_weights are, for hdc-ray predict
    }


def best_checkpoint(cfg: Config, weights: dict[str, torch.Tensor], metrics: dict[str, Any]) -> dict[str, Any]:
    """``best.pt``: the selected weights, the run's summary and the card that says what they are."""
    return {"format": FORMAT, "weights": weights, "metrics": metrics, "card": card_of(cfg).to_dict()}


def restore(snap: dict[str, Any], models: Models, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> TrainState:
    models.trainable.load_state_dict(snap["trainable"])
    if models.teacher is not None and snap["teacher"] is not None:
        models.teacher.load_state_dict(snap["teacher"])
    optimizer.load_state_dict(snap["optimizer"])
    if models.pc_threshold is not None:
        if snap.get("pc_threshold") is None:
            raise ValueError("the checkpoint has no adaptive-threshold state (loss.threshold_kind differs?); cannot resume exactly")
        models.pc_threshold.load_state_dict(snap["pc_threshold"])
    if snap.get("scaler"):
        scaler.load_state_dict(snap["scaler"])
    best = snap["best"]
    return TrainState(snap["epoch"], best["epoch"], best["value"], dict(best["val"]), dict(snap["best_weights"]), list(snap["history"]))
