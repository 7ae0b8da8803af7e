"""bench/advisor_calibration.py: the truth is read off the measured mean curve, and --without-lost drops the runs
that lost a class on validation (a training failure no power law models) before fitting and measuring."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from tests.bench_scripts import load_bench

REPO = Path(__file__).resolve().parents[2]
POOL = 400


def _bench() -> ModuleType:
    return load_bench("advisor_calibration")


def _study(collapse: bool) -> pd.DataFrame:
    """Supervised on 3 splits along 0.85 - 0.5 n^-0.5, at 4..64 labels and all 400; split 1 at 32 loses a class if asked."""
    rows = []
    for n in (4, 8, 16, 32, 64, POOL):
        for seed, shift in enumerate((-0.01, 0.0, 0.01)):
            dice, symph = 0.85 - 0.5 * n**-0.5 + shift, 0.6
            if collapse and (n, seed) == (32, 1):
                dice, symph = 0.45, 0.0
            rows.append({"trial_id": f"sup-{n}-{seed}", "status": "completed", "method": "supervised", "arm": "supervised",
                         "n_labeled": n, "label_ratio": n / POOL, "seed": seed, "test_dice_fg": dice,
                         "val_dice_head": 0.8, "val_dice_pubic_symphysis": symph})  # fmt: skip
    return pd.DataFrame(rows)


def test_drop_lost_removes_exactly_the_runs_that_lost_a_class_on_validation(capsys: pytest.CaptureFixture[str]) -> None:
    kept = _bench().drop_lost(_study(collapse=True), "psfh")
    assert len(kept) == 17 and not ((kept["n_labeled"] == 32) & (kept["seed"] == 1)).any()
    assert "psfh/supervised at 32 labels, split 1: lost pubic_symphysis 0.00" in capsys.readouterr().out


def test_a_collapsed_run_moves_the_truth_and_without_lost_restores_the_healthy_one() -> None:
    bench = _bench()
    healthy = {r.target: r.truth for r in bench.calibrate(_study(False), "psfh", [4, 8, 16], [0.75], 50) if r.limits == "package"}
    collapsed = {r.target: r.truth for r in bench.calibrate(_study(True), "psfh", [4, 8, 16], [0.75], 50) if r.limits == "package"}
    dropped = {r.target: r.truth for r in bench.calibrate(_study(True), "psfh", [4, 8, 16], [0.75], 50, without_lost=True) if r.limits == "package"}
    assert collapsed[0.75] > 1.5 * healthy[0.75]  # one lost class in three splits pushes the measured need past 32 labels
    assert dropped[0.75] == pytest.approx(healthy[0.75], rel=0.02)  # the two kept splits' mean sits on the same curve
