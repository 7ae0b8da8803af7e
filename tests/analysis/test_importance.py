"""Parameter importance from the trials table (no study file), with a known answer for the ANOVA."""

from __future__ import annotations

import importlib.util

import numpy as np
import optuna
import pytest

from hdc_ray.analysis import AnalysisError, parameter_importance


def _table(trials_of, n: int = 8):
    a = [i % 2 for i in range(n)]
    b = [(i // 2) % 2 for i in range(n)]
    rows = [
        {
            "seed": i,
            "cfg.train.seed": i,
            "cfg.loss.w_cg": float(ai),
            "cfg.train.optimizer": ["adam", "sgd"][bi],
            "cfg.run.path": f"/out/{i}",
            "cfg.model.depth": 4,
            "test_dice_fg": 0.5 + 0.2 * ai,
        }
        for i, (ai, bi) in enumerate(zip(a, b, strict=True))
    ]
    return trials_of(rows)


def test_anova_known_answer(trials_of) -> None:
    imp = parameter_importance(_table(trials_of), evaluator="anova").set_index("param")
    assert imp.index.tolist() == ["cfg.loss.w_cg", "cfg.train.optimizer"]  # no seed, path or constant
    assert imp.loc["cfg.loss.w_cg", "importance"] == pytest.approx(1.0)
    assert imp.loc["cfg.train.optimizer", "importance"] == pytest.approx(0.0)
    assert (imp["evaluator"] == "anova").all()


def test_optuna_evaluator_ranks_the_driving_parameter_first(trials_of) -> None:
    rng = np.random.default_rng(0)
    rows = [
        {
            "seed": i,
            "cfg.train.lr": float(lr),
            "cfg.loss.w_mi": float(w),
            "cfg.dist.use_gpu": bool(i % 2),
            "test_dice_fg": 0.4 + 0.5 * lr + 0.01 * w,
        }
        for i, (lr, w) in enumerate(zip(rng.uniform(0, 1, 30), rng.uniform(0, 1, 30), strict=True))
    ]
    kind = "fanova" if importlib.util.find_spec("sklearn") else "ped_anova"
    verbosity = optuna.logging.get_verbosity()
    imp = parameter_importance(trials_of(rows), evaluator="auto")
    assert imp["evaluator"].iloc[0] == kind and imp["param"].iloc[0] == "cfg.train.lr"
    assert imp["importance"].sum() == pytest.approx(1.0)
    assert optuna.logging.get_verbosity() == verbosity


def test_too_few_trials_or_nothing_varies(trials_of) -> None:
    with pytest.raises(AnalysisError, match="at least 4 finished trials"):
        parameter_importance(_table(trials_of, 3))
    rows = [{"seed": i, "cfg.model.depth": 4, "test_dice_fg": 0.5} for i in range(5)]
    with pytest.raises(AnalysisError, match=r"no cfg\.\* parameter varies"):
        parameter_importance(trials_of(rows))


def test_unknown_evaluator(trials_of) -> None:
    with pytest.raises(AnalysisError, match="unknown evaluator"):
        parameter_importance(_table(trials_of), evaluator="magic")  # type: ignore[arg-type]


def test_without_optuna_the_table_anova_stands_in(trials_of, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("optuna", "sklearn") else real(name, *a))
    assert parameter_importance(_table(trials_of))["evaluator"].iloc[0] == "anova"
    with pytest.raises(AnalysisError, match="needs optuna"):
        parameter_importance(_table(trials_of), evaluator="ped_anova")
