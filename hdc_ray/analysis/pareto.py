"""Which settings are Pareto-optimal: trials no other trial beats on every objective."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hdc_ray.analysis.tables import AnalysisError

FRONT_COLUMN = "on_front"


def pareto_front(
    df: pd.DataFrame,
    objectives: Mapping[str, str],
    *,
    keep_all: bool = False,
) -> pd.DataFrame:
    """Which rows are non-dominated for ``objectives`` (column -> ``"max"`` or ``"min"``)?

    A row is dominated when another row is at least as good on every objective and strictly
    better on one. Rows with a NaN objective are never on the front; exact ties are all kept.
    Returns the front rows (``keep_all=False``) or every row, each with a boolean ``on_front``.
    """
    values = _oriented(df, objectives)
    valid = ~np.isnan(values).any(axis=1)
    on_front = np.zeros(len(df), dtype=bool)
    on_front[np.flatnonzero(valid)] = _non_dominated(values[valid])
    out = df.assign(**{FRONT_COLUMN: on_front})
    return out if keep_all else out[on_front]


def _oriented(df: pd.DataFrame, objectives: Mapping[str, str]) -> np.ndarray:
    """Objective values as a (rows, objectives) array where larger is always better."""
    if not objectives:
        raise AnalysisError("pareto_front needs at least one objective")
    bad = {k: v for k, v in objectives.items() if v not in ("max", "min")}
    if bad:
        raise AnalysisError(f"objective directions must be 'max' or 'min', got {bad}")
    missing = [k for k in objectives if k not in df.columns]
    if missing:
        raise AnalysisError(f"objective column(s) not in the table: {', '.join(missing)}")
    cols = [pd.to_numeric(df[k], errors="coerce").to_numpy(dtype=float) * (1 if d == "max" else -1) for k, d in objectives.items()]
    return np.column_stack(cols) if cols else np.empty((len(df), 0))


def _non_dominated(values: np.ndarray) -> np.ndarray:
    """Boolean mask of rows of ``values`` (larger is better) that no other row dominates."""
    n = len(values)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        at_least = (values >= values[i]).all(axis=1)
        strictly = (values > values[i]).any(axis=1)
        keep[i] = not (at_least & strictly).any()
    return keep
