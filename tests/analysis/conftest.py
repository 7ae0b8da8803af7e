"""Fixtures for the analysis tests; the fake RESULTS generator lives in ``analysis_fakes.py``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from analysis_fakes import history_rows, make_trials, trial_row, write_fake_results, write_sweep


@pytest.fixture(scope="session")
def fake_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RESULTS folder with the ``budget`` and ``ablation`` sweeps (read-only: do not modify)."""
    return write_fake_results(tmp_path_factory.mktemp("results"))


@pytest.fixture
def results_root(tmp_path: Path) -> Path:
    """An empty RESULTS folder for tests that write their own sweeps."""
    root = tmp_path / "results"
    root.mkdir()
    return root


@pytest.fixture
def trials_of() -> Callable[[list[dict[str, Any]]], pd.DataFrame]:
    """Build a hand-made trials table from a few dicts (see ``make_trials``)."""
    return make_trials


@pytest.fixture
def sweep_writer() -> Callable[..., Path]:
    """``write_sweep(root, name, trials, history=None, version=1)`` with the fixed schema."""
    return write_sweep


@pytest.fixture
def trial_factory() -> Callable[..., dict[str, Any]]:
    """``trial_row(sweep, trial_id, method, ratio, seed, dice, status=..., variant=..., weights=...)``."""
    return trial_row


@pytest.fixture
def history_factory() -> Callable[[dict[str, Any], int], list[dict[str, Any]]]:
    return history_rows
