"""The study's decision as data: every comparison judged under one error control, labels saved, why to stop, what next.

:func:`decide` is the whole of the study's reasoning. It pairs every arm with the baseline at every budget
(:mod:`.paired`), tests the family of comparisons with anytime-valid confidence sequences and Holm's step-down
(:mod:`.control`: at most ``alpha`` chance that any claim is wrong, at every look), inverts labels saved where a gain
is claimed (:mod:`.saved`), and says whether the runs had converged (:mod:`.convergence`). ``hdc_ray.tune.rounds``
stops on it and the report renders it (``hdc_ray.analysis.render``): the same object, so the rule that stops a
study and the answer it prints cannot disagree. No prose, no Ray, no CLI syntax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hdc_ray.analysis.budget import fmt_budget
from hdc_ray.analysis.evidence.control import ALPHA, confidence_sequence, holm, splits_to_decide
from hdc_ray.analysis.evidence.convergence import Convergence, compute_of, convergence
from hdc_ray.analysis.evidence.paired import (
    BASELINE,
    MIN_CONCLUSION_SPLITS,
    PairedDifference,
    baseline_arm,
    by_task,
    finished_with_budget,
    paired_differences,
)
from hdc_ray.analysis.evidence.saved import SavedLabels, saved_labels
from hdc_ray.analysis.tables import lost_classes

WIDTH = 0.03  # a confidence sequence narrower than 3 Dice points decides "no difference that matters" (bench/study_rule.py)
ADD_SPLITS = 3  # splits a next round adds


@dataclass(frozen=True)
class Judged:
    """One comparison under the family's error control: claimed or not, at which level, its adjusted interval."""

    diff: PairedDifference
    p: float  # anytime-valid p-value of no difference
    level: float  # the error level Holm tested it at
    claimed: bool
    low: float  # the confidence sequence at ``level`` (may be infinite: too few splits to exclude anything)
    high: float
    saved: SavedLabels | None = None  # only for a claimed gain

    @property
    def verdict(self) -> str:
        """``gain``, ``loss``, ``not established``, or ``too few splits`` (fewer than 2)."""
        if self.diff.n < 2:
            return "too few splits"
        if not self.claimed:
            return "not established"
        return "gain" if self.diff.sign * self.diff.mean > 0 else "loss"

    def decided(self, width: float) -> bool:
        """Claimed, or pinned down: its adjusted interval narrower than ``width``."""
        return self.claimed or (math.isfinite(self.low) and math.isfinite(self.high) and self.high - self.low < width)

    @property
    def splits_needed(self) -> int | None:
        """Splits at which the interval at this level would exclude zero if the mean difference and spread held."""
        d = self.diff
        if self.claimed or d.n < 2 or not abs(d.mean) > 0:
            return None
        return splits_to_decide(d.sd, 2 * abs(d.mean), self.level)

    @property
    def label(self) -> str:
        """``hdc@4 images`` (``cervix: hdc@4 images`` with several tasks): what rounds.json and messages call it."""
        return f"{self.diff.task + ': ' if self.diff.task else ''}{self.diff.arm}@{fmt_budget(self.diff.budget, self.diff.unit)}"


@dataclass(frozen=True)
class Lost:
    """A trial that lost a class on validation (a training failure a mean would hide)."""

    task: str
    arm: str
    budget: float
    seed: int
    classes: str  # "symphysis 0.00"


@dataclass(frozen=True)
class Decision:
    metric: str
    alpha: float
    width: float
    unit: str
    comparisons: tuple[Judged, ...]
    problems: tuple[str, ...] = ()  # why a task has no comparison
    convergence: tuple[Convergence, ...] = ()
    compute: dict[str, int] | None = None
    lost: tuple[Lost, ...] = ()
    n_trials: int = 0
    seeds: tuple[int, ...] = field(default=())

    @property
    def n_splits(self) -> int:
        return min((j.diff.n for j in self.comparisons), default=0)

    @property
    def decided(self) -> bool:
        return bool(self.comparisons) and all(j.decided(self.width) for j in self.comparisons)

    def open(self) -> list[Judged]:
        return [j for j in self.comparisons if not j.decided(self.width)]

    def open_budgets(self) -> list[str]:
        return [j.label for j in self.open()]

    def next_seeds(self, add: int = ADD_SPLITS) -> list[int]:
        start = max(self.seeds) + 1 if self.seeds else 0
        return list(range(start, start + add))

    def stop(self, n_seeds: int, min_seeds: int, max_seeds: int) -> tuple[str, str]:
        """Why a study in rounds stops after ``n_seeds`` splits: (kind, reason), kind ``decided``/``max_seeds``, or ("", "")."""
        if self.decided and n_seeds >= min_seeds:
            return "decided", (f"decided after {n_seeds} splits: every comparison is claimed by the {self.alpha:.0%} family-wise rule "
                               f"or its adjusted interval is narrower than {self.width:g}")  # fmt: skip
        if n_seeds >= max_seeds:
            return "max_seeds", f"max_seeds reached ({n_seeds} splits); still open: {', '.join(self.open_budgets()) or 'none'}"
        return "", ""

    def records(self) -> list[dict[str, object]]:
        """Plain values per comparison, for ``rounds.json``."""
        def plain(x: float) -> float | None:  # JSON has neither NaN nor infinity
            return None if not math.isfinite(x) else round(x, 6)

        out = []
        for j in self.comparisons:
            d = j.diff
            raw = d.raw_interval
            out.append({"task": d.task, "arm": d.arm, "budget": d.budget, "n": d.n, "mean": plain(d.mean), "low": plain(j.low), "high": plain(j.high),
                        "level": round(j.level, 6), "p": plain(j.p), "raw_low": plain(raw[0]), "raw_high": plain(raw[1]), "verdict": j.verdict,
                        "decided": j.decided(self.width)})  # fmt: skip
        return out


def decide(trials: pd.DataFrame, metric: str, *, width: float = WIDTH, baseline: str = BASELINE, history: pd.DataFrame | None = None,
           alpha: float = ALPHA) -> Decision:  # fmt: skip
    """The decision from the trials table (finished trials are used; pairing is checked, see :mod:`.paired`)."""
    diffs, problems = paired_differences(trials, metric, baseline=baseline)
    done, unit, sign = finished_with_budget(trials, metric)
    family = holm([d.p_value for d in diffs], alpha)
    judged = []
    for d, claimed, level in zip(diffs, family.claimed, family.levels, strict=True):
        low, high = confidence_sequence(d.per_split, level) if d.n >= 2 else (math.nan, math.nan)
        gain = claimed and sign * d.mean > 0
        saved = _saved(done, d, metric, unit, baseline, level, sign) if gain else None
        judged.append(Judged(d, d.p_value, level, claimed, low, high, saved))
    lost = lost_classes(done)
    bad = done[lost != ""]
    return Decision(
        metric, alpha, width, unit, tuple(judged), tuple(problems), tuple(convergence(done, history, unit)), compute_of(done),
        tuple(Lost(str(r.get("task") or ""), str(r["arm"]), float(r[unit]), int(r["seed"]), str(lost[i])) for i, r in bad.iterrows()),
        len(done), tuple(sorted(int(s) for s in done["seed"].dropna().unique())),
    )  # fmt: skip


def _saved(done: pd.DataFrame, d: PairedDifference, metric: str, unit: str, baseline: str, level: float, sign: float) -> SavedLabels:
    rows = dict(by_task(done))[d.task]
    base = baseline_arm(set(rows["arm"]), rows[["arm", "method"]], baseline)
    curves = rows[rows["arm"] == base].pivot_table(index=unit, columns="seed", values=metric, aggfunc="first").sort_index()
    own = rows[(rows["arm"] == d.arm) & np.isclose(rows[unit].astype(float), d.budget)].set_index("seed")[metric]
    return saved_labels(curves, own[own.index.isin(d.seeds)], d.budget, level, sign)


def needs_more_splits(decision: Decision) -> bool:
    """Fewer than the splits a conclusion needs, or comparisons still open."""
    return decision.n_splits < MIN_CONCLUSION_SPLITS or bool(decision.open())


__all__ = ["ADD_SPLITS", "WIDTH", "Decision", "Judged", "Lost", "decide", "needs_more_splits"]
