"""Which swept parameters move the metric: parameter importance computed from the trials table.

No Optuna study file is needed: finished trials are loaded into an in-memory Optuna study and
scored with an Optuna evaluator (fANOVA when scikit-learn is installed, else PED-ANOVA). Without
Optuna, a one-way ANOVA on the table (share of variance explained by each parameter alone) stands in.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from hdc_ray.analysis.tables import (
    AnalysisError,
    Direction,
    metric_direction,
    require_metric,
    varying_config,
)

Evaluator = Literal["auto", "fanova", "ped_anova", "anova"]
MIN_TRIALS = 4


def parameter_importance(
    trials: pd.DataFrame,
    metric: str = "test_dice_fg",
    *,
    params: Sequence[str] | None = None,
    evaluator: Evaluator = "auto",
    direction: Direction | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """How much does each swept ``cfg.*`` parameter matter for ``metric``?

    ``params`` defaults to every ``cfg.*`` column that varies across finished trials, minus seeds
    and per-trial identifiers. Returns ``param``, ``importance`` (normalised to sum to 1) and
    ``evaluator``, most important first. Raises :class:`AnalysisError` under ``MIN_TRIALS``
    finished trials or when no parameter varies.
    """
    done = require_metric(trials, metric)
    if len(done) < MIN_TRIALS:
        raise AnalysisError(f"parameter importance needs at least {MIN_TRIALS} finished trials with '{metric}', found {len(done)}")
    names = list(params) if params is not None else _swept_params(done)
    if not names:
        raise AnalysisError("no cfg.* parameter varies across finished trials: nothing to rank")
    kind = _resolve(evaluator)
    direction = direction or metric_direction(metric)
    scores = _anova(done, metric, names) if kind == "anova" else _optuna_importance(done, metric, names, kind, direction, seed)
    out = pd.DataFrame({"param": list(scores), "importance": list(scores.values())})
    out["evaluator"] = kind
    return out.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def _swept_params(done: pd.DataFrame) -> list[str]:
    """Varying cfg columns, without per-trial identifiers (a string unique to every trial)."""
    names = []
    for col in varying_config(done):
        values = done[col]
        text = not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if text and values.nunique() == len(values) > MIN_TRIALS:
            continue  # e.g. an output path per trial
        names.append(col)
    return names


def _resolve(evaluator: Evaluator) -> str:
    has_optuna = importlib.util.find_spec("optuna") is not None
    if evaluator == "auto":
        if has_optuna and importlib.util.find_spec("sklearn") is not None:
            return "fanova"
        return "ped_anova" if has_optuna else "anova"
    if evaluator in ("fanova", "ped_anova") and not has_optuna:
        raise AnalysisError(f"evaluator '{evaluator}' needs optuna; use evaluator='anova'")
    if evaluator == "fanova" and importlib.util.find_spec("sklearn") is None:
        raise AnalysisError("Optuna's fANOVA needs scikit-learn; use 'ped_anova' or 'anova'")
    if evaluator not in ("fanova", "ped_anova", "anova"):
        raise AnalysisError(f"unknown evaluator '{evaluator}'")
    return evaluator


def _optuna_importance(done: pd.DataFrame, metric: str, names: list[str], kind: str, direction: str, seed: int) -> dict[str, float]:
    """Score parameters with an Optuna evaluator on an in-memory study built from the table."""
    import optuna

    dists = {n: _distribution(done[n]) for n in names}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line per call
    try:
        study = optuna.create_study(direction="maximize" if direction == "max" else "minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    study.add_trials(
        [
            optuna.trial.create_trial(
                value=float(row[metric]),
                params={n: _param_value(row[n], dists[n]) for n in names},
                distributions=dists,
            )
            for _, row in done.iterrows()
        ]
    )
    if kind == "fanova":
        ev: Any = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    else:  # PED-ANOVA's top quantile must hold a few trials to mean anything
        ev = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=min(0.5, max(0.1, 3 / len(done))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = optuna.importance.get_param_importances(study, evaluator=ev, params=names)
    return {n: float(scores.get(n, 0.0)) for n in names}


def _distribution(values: pd.Series) -> Any:
    """An Optuna distribution covering a column's values (NaN/None become the category 'none')."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    categorical = pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values)
    if categorical or values.isna().any():
        choices: set[Any] = {_category(v) for v in values}
        return CategoricalDistribution(sorted(choices, key=str))
    low, high = float(values.min()), float(values.max())
    if pd.api.types.is_integer_dtype(values):
        return IntDistribution(int(low), int(high))
    return FloatDistribution(low, high, log=low > 0 and high / low >= 100)


def _category(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def _param_value(value: object, dist: Any) -> object:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return _category(value)
    if isinstance(dist, IntDistribution):
        return int(value)  # type: ignore[call-overload]
    return float(value)  # type: ignore[arg-type]


def _anova(done: pd.DataFrame, metric: str, names: list[str]) -> dict[str, float]:
    """Share of the metric's variance explained by each parameter alone (eta squared), normalised.

    Numeric parameters with more than 4 values are binned into quartiles.
    """
    y = done[metric].astype(float)
    total = float(((y - y.mean()) ** 2).sum())
    raw = {}
    for n in names:
        groups = _bins(done[n])
        means = y.groupby(groups, dropna=False).transform("mean")
        raw[n] = float(((means - y.mean()) ** 2).sum()) / total if total > 0 else 0.0
    norm = sum(raw.values())
    return {n: (v / norm if norm > 0 else 0.0) for n, v in raw.items()}


def _bins(values: pd.Series) -> pd.Series:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > 4:
        return pd.qcut(values, 4, duplicates="drop").astype(str)
    return values.map(_category).astype(str)
