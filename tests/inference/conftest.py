"""A tiny trained run shared by the inference tests (one 2-epoch ``tiny`` training, seconds on a CPU)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from hdc_ray.cli import main
from hdc_ray.config import load_config
from hdc_ray.train.run import run_local


@dataclass(frozen=True)
class TinyRun:
    folder: Path  # the train output folder (best.pt, checkpoints/, metrics.json, config.yaml)
    summary: dict[str, Any]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tiny_run") / "run"
    cfg = load_config("tiny", ["train.epochs=2", "train.iters_per_epoch=3"])
    _, summary = run_local(cfg, folder, progress=False)
    return TinyRun(folder, summary)


def save_variant(src: Path, dst: Path, **changes: object) -> Path:
    """A copy of a checkpoint with top-level entries replaced (None: removed): old or foreign checkpoints."""
    state = torch.load(src, map_location="cpu", weights_only=True)
    for key, value in changes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, dst)
    return dst


def predict_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``hdc-ray predict ARGS --no-progress``: its exit code, stdout and stderr."""
    code = main(["predict", *args, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path
