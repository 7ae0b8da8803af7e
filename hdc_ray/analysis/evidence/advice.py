"""The advisor per task: each task's all-labels ceiling caps its arms' asymptotes, plateaus are named, and where the
advisor extrapolated or refused, the budgets whose measurement would replace it (as data; the words are in render)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from hdc_ray.analysis.evidence.advisor import BEYOND, REFUSED, labels_needed
from hdc_ray.analysis.evidence.paired import MIN_INTERVAL_SPLITS, by_task, t_interval
from hdc_ray.analysis.tables import require_metric, with_arm

PLATEAU_TOLERANCE = 0.005  # all labels scoring no more than this above a fraction of them: a compute-limited plateau


@dataclass(frozen=True)
class Plateau:
    """Supervised with every label (``n_all``) scored no better than with ``best_n``: the curve is flat against compute."""

    task: str
    n_all: int
    score_all: float
    best_n: int
    best_score: float


@dataclass(frozen=True)
class Advice:
    """The advisor's verdicts for every task: :func:`labels_needed` rows (with ``task``), plateaus, and what to measure."""

    table: pd.DataFrame
    plateaus: tuple[Plateau, ...]
    measure: tuple[int, ...]  # budgets whose measurement would replace the extrapolations and refusals (empty: none needed)
    seeds: tuple[int, ...]  # the splits to measure them on


def advise(done: pd.DataFrame, metric: str, target: float, *, arm_col: str = "arm", n_boot: int = 1000) -> Advice:
    """Labels needed per arm to reach ``target``, each task's asymptotes capped at its all-labels ceiling."""
    done = with_arm(require_metric(done, metric))
    tables, plateaus = [], []
    for task, rows in by_task(done):
        ceiling, plateau = _ceiling(rows, metric, arm_col)
        if plateau is not None:
            plateaus.append(Plateau(task, *plateau))
        tables.append(labels_needed(rows, target, metric, arm_col=arm_col, n_boot=n_boot, seed=0, ceiling=ceiling).assign(task=task))
    table = pd.concat(tables, ignore_index=True)
    seeds = tuple(sorted(int(s) for s in done["seed"].dropna().unique())[:MIN_INTERVAL_SPLITS])
    return Advice(table, tuple(plateaus), tuple(_to_measure(table, done)), seeds)


def _ceiling(rows: pd.DataFrame, metric: str, arm_col: str) -> tuple[float | None, tuple[int, float, int, float] | None]:
    """Supervised with every label: the upper end of its interval over splits; and the plateau, if it is one."""
    sup = rows[rows[arm_col].astype(str).str.endswith("supervised")]
    full = sup[sup["label_ratio"] >= 0.999]
    if full.empty:
        return None, None
    per_split = full.groupby("seed")[metric].mean()
    _, high = t_interval(tuple(per_split))
    ceiling = float(per_split.max() if math.isnan(high) else high)
    smaller = sup[sup["label_ratio"] < 0.999].groupby("n_labeled")[metric].mean()
    if smaller.empty or per_split.mean() > smaller.max() + PLATEAU_TOLERANCE:
        return ceiling, None
    return ceiling, (int(full["n_labeled"].max()), float(per_split.mean()), int(smaller.idxmax()), float(smaller.max()))


def _to_measure(table: pd.DataFrame, done: pd.DataFrame) -> list[int]:
    """Where the advisor extrapolated or refused: the next budgets up from where it reached out, under the pool."""
    if "where" not in table.columns:
        return []
    outside = table[table["where"].isin([BEYOND, *REFUSED])]
    if outside.empty:
        return []
    # Reach out from the budget the answer extrapolated from, not the largest measured: with supervised measured at
    # 4, 8, 16 and all 400, a target refused past 16 is decided by 32 and 64, not by 800.
    start = outside["reach_from"].where(outside["reach_from"].notna(), outside["max_measured"])
    top = int(start.max())
    ok = done["label_ratio"] > 0
    pool = round(float((done.loc[ok, "n_labeled"] / done.loc[ok, "label_ratio"]).median()))
    return [b for b in (2 * top, 4 * top) if b < pool] or [pool]
