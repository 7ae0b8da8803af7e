"""Checkpoints: plain dicts of tensors and numbers, so ``torch.load(path, weights_only=True)`` reads them.

Layout of a folder of checkpoints: ``epoch_0003.pt`` (the most recent ``train.keep_checkpoints`` are kept)
and ``best.pt`` (eval network weights of the best validation epoch). Every write is atomic (write to a
temporary file, then rename), so a crash never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

FORMAT = 1
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.pt$")


def save_atomic(obj: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def load(path: Path) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not an hdc-ray checkpoint (format {FORMAT})")
    return state


def save_epoch(state: dict[str, Any], folder: Path, keep: int) -> Path:
    path = save_atomic(state, folder / f"epoch_{state['epoch']:04d}.pt")
    for old in list_epochs(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_epochs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _EPOCH_FILE.search(p.name)), key=lambda p: p.name)


def latest(folder: Path) -> Path | None:
    found = list_epochs(folder)
    return found[-1] if found else None
