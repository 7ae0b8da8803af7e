"""Paired differences per budget: every arm against the baseline, matched on the labelled split and checked.

The unit of evidence is the labelled split: a seed draws one, and every arm of a seed trains on the same labelled
subset (its ``split_hash``). Per task, arm and budget, :func:`paired_differences` pairs each split's arm score
with the same split's baseline score and keeps ``arm - baseline`` per split, in seed order (the order the study
added splits in, which the confidence sequences of :mod:`.control` need).

Pairing is checked, not assumed: two finished trials of one (arm, budget, split) are refused, as is a split
whose arm and baseline trained on different labelled images (their ``split_hash`` differ); each error names the
trials. Arms are every arm but the baseline, whatever their names (``hdc_lam3`` is an arm like ``hdc``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from hdc_ray.analysis.budget import budget_column, fmt_budget
from hdc_ray.analysis.evidence.control import anytime_p
from hdc_ray.analysis.tables import AnalysisError, metric_direction, normalise_ratio, require_metric, with_arm

BASELINE = "supervised"
CONFIDENCE = 0.95  # the raw (per-look, uncorrected) t-intervals shown beside the adjusted ones
MIN_INTERVAL_SPLITS = 3  # a t-interval from 2 splits is ~13x their spread
MIN_CONCLUSION_SPLITS = 6  # three-split conclusions were overturned on six (docs/benchmarks.md)


class PairingError(AnalysisError):
    """The trials cannot be paired on the split: a duplicate trial, or arms that trained on different labelled images."""


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (NaN under 2 values)."""
    x = np.asarray(values, float)
    if len(x) < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return float(x.mean() - half), float(x.mean() + half)


@dataclass(frozen=True)
class PairedDifference:
    """``arm - baseline`` at one budget, paired on the labelled split (Dice points are x100 in words)."""

    task: str
    arm: str
    budget: float
    unit: str
    seeds: tuple[int, ...]
    per_split: tuple[float, ...]  # arm minus baseline, one per seed, in seed order
    arm_mean: float
    baseline_mean: float
    sign: float = 1.0  # +1 where higher is better

    @property
    def n(self) -> int:
        return len(self.per_split)

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_split)) if self.per_split else math.nan

    @property
    def sd(self) -> float:
        return float(np.std(self.per_split, ddof=1)) if self.n >= 2 else math.nan

    @property
    def raw_interval(self) -> tuple[float, float]:
        """The per-look Student-t 95% interval (uncorrected: secondary); NaN under :data:`MIN_INTERVAL_SPLITS` splits."""
        return t_interval(self.per_split) if self.n >= MIN_INTERVAL_SPLITS else (math.nan, math.nan)

    @property
    def ahead(self) -> int:
        return int(sum(self.sign * d > 0 for d in self.per_split))

    @property
    def p_value(self) -> float:
        """Anytime-valid p-value of "no difference", over every look at these splits (:mod:`.control`)."""
        return float(anytime_p(np.asarray(self.per_split, float)))


def by_task(done: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The trials per task ('' when the results hold one task)."""
    if "task" not in done.columns or done["task"].nunique() <= 1:
        return [("", done)]
    return [(str(t), d) for t, d in done.groupby("task", sort=True)]


def finished_with_budget(trials: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, str, float]:
    """Finished trials with ``metric`` and an ``arm``, their budget column, and the metric's sign (+1: higher is better)."""
    done = with_arm(require_metric(trials, metric))
    done["label_ratio"] = normalise_ratio(done["label_ratio"])
    return done, budget_column(done), 1.0 if metric_direction(metric) == "max" else -1.0


def baseline_arm(arms: set[str], methods: pd.DataFrame, baseline: str) -> str | None:
    """The baseline's arm: the arm named ``baseline``, else the one arm whose method it is (None when absent)."""
    if baseline in arms:
        return baseline
    named = sorted(set(methods.loc[methods["method"] == baseline, "arm"]))
    return named[0] if len(named) == 1 else None


def paired_differences(trials: pd.DataFrame, metric: str, *, baseline: str = BASELINE, arm_col: str = "arm") -> tuple[list[PairedDifference], list[str]]:
    """Every arm against ``baseline`` at every budget both measured, per task; and why a task has none (plain reasons)."""
    done, unit, sign = finished_with_budget(trials, metric)
    out: list[PairedDifference] = []
    problems: list[str] = []
    for task, rows in by_task(done):
        base = baseline_arm(set(rows[arm_col]), rows.rename(columns={arm_col: "arm"})[["arm", "method"]], baseline)
        others = sorted(set(rows[arm_col]) - {base})
        if base is None:
            problems.append(f"{_task(task)}no {baseline} arm in these results ({', '.join(sorted(set(rows[arm_col])))})")
            continue
        if not others:
            problems.append(f"{_task(task)}only the {baseline} baseline was run")
            continue
        _check_pairing(rows, unit, arm_col, base)
        table = rows.set_index([arm_col, unit, "seed"])[metric]
        for arm in others:
            out += _arm_differences(table, task, arm, base, unit, sign)
    return out, problems


def _arm_differences(table: pd.Series, task: str, arm: str, base: str, unit: str, sign: float) -> list[PairedDifference]:
    own, ref = table.loc[arm], table.loc[base]
    diffs = []
    for budget in sorted(set(own.index.get_level_values(0)) & set(ref.index.get_level_values(0))):
        pair = pd.concat([own.loc[budget], ref.loc[budget]], axis=1, keys=["arm", "base"]).dropna().sort_index()
        if pair.empty:
            continue
        d = pair["arm"] - pair["base"]
        diffs.append(PairedDifference(task, arm, float(budget), unit, tuple(int(s) for s in pair.index), tuple(float(x) for x in d),
                                      float(pair["arm"].mean()), float(pair["base"].mean()), sign))  # fmt: skip
    return diffs


def _check_pairing(rows: pd.DataFrame, unit: str, arm_col: str, base: str) -> None:
    """Refuse duplicates of one (arm, budget, split) and splits whose arms trained on different labelled images."""
    keys = [arm_col, unit, "seed"]
    dup = rows[rows.duplicated(keys, keep=False)]
    if not dup.empty:
        (arm, budget, seed), group = next(iter(dup.groupby(keys, sort=True)))
        raise PairingError(f"{len(dup)} finished trials share an (arm, budget, split): e.g. {arm} at {fmt_budget(float(budget), unit)}, split {seed}: "
                           f"trials {', '.join(_ids(group))}; a paired answer needs one trial per cell: report one sweep (--sweep), "
                           "or rerun the study without repeating cells")  # fmt: skip
    if "split_hash" not in rows.columns:
        return
    hashes = rows.dropna(subset=["split_hash"])
    for (budget, seed), cell in hashes.groupby([unit, "seed"], sort=True):
        if base not in set(cell[arm_col]) or cell["split_hash"].nunique() <= 1:
            continue
        ref = cell.loc[cell[arm_col] == base, "split_hash"].iloc[0]
        odd = cell[cell["split_hash"] != ref]
        raise PairingError(f"split {seed} at {fmt_budget(float(budget), unit)}: {', '.join(map(str, odd[arm_col]))} trained on other labelled images "
                           f"than {base} (split_hash {', '.join(map(str, odd['split_hash']))} vs {ref}; trials {', '.join(_ids(cell))}); "
                           "arms compared on a split must share its data config (data.*, seed): rerun them with the same one")  # fmt: skip


def _ids(rows: pd.DataFrame) -> list[str]:
    sweep = rows["sweep"].astype(str) + "/" if "sweep" in rows.columns else ""
    return list((sweep + rows["trial_id"].astype(str)).head(6))


def _task(task: str) -> str:
    return f"{task}: " if task else ""


__all__ = ["BASELINE", "CONFIDENCE", "MIN_CONCLUSION_SPLITS", "MIN_INTERVAL_SPLITS", "PairedDifference", "PairingError", "by_task",
           "paired_differences", "t_interval"]  # fmt: skip
