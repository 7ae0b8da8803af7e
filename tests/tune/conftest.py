"""One real smoke sweep (Tune + Optuna + Train on the session cluster), shared by the sweep tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class SweepRun:
    folder: Path
    grid: Any  # ray.tune.ResultGrid
    n_trials: int


@pytest.fixture(scope="session")
def smoke_sweep(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> SweepRun:
    from hdc_ray.tune.spec import load_spec
    from hdc_ray.tune.sweep import run_sweep

    spec = load_spec("smoke", ["search.trials=3"])
    folder, grid = run_sweep(spec, results=str(tmp_path_factory.mktemp("sweeps")), name="smoke_test")
    return SweepRun(Path(folder), grid, 3)
