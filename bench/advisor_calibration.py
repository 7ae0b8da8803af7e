"""Calibrate the budget advisor: fit it on small budgets, let it predict, then measure the truth at larger ones.

    python bench/advisor_calibration.py --task cervix --seeds 0 1 2 --results results/calibration
    python bench/advisor_calibration.py --task psfh --seeds 0 1 2 --results results/calibration --resume
    python bench/advisor_calibration.py --analyse-only --results results/calibration     # every task already run
    python bench/advisor_calibration.py --analyse-only --without-lost --results ...      # without runs that lost a class

Per task it runs the shipped ``study`` spec (the demo's compute, 320 steps per trial) through ``hdc-ray sweep``
at the labelled budgets ``--fit`` + ``--truth`` (supervised also with every label: the ceiling) on the same
splits, into ``RESULTS/calib-<task>/``; ``--resume`` finishes an interrupted sweep. Then, per task and arm:

- the advisor (``hdc_ray.analysis.answer.advise``, as the report calls it) sees only the ``--fit`` budgets and
  the all-labels ceiling, and predicts the labels needed for each target;
- the truth is the smallest budget at which the arm's mean curve over the splits, measured at every budget and
  linear in log budget between them, reaches the target;
- targets: 1/4, 1/2 and 3/4 of the way from the arm's mean at the largest fit budget to its mean at the largest
  truth budget (so the truth is measured, not extrapolated), plus any ``--targets``.

Printed per row: predicted (interval, where), truth, predicted / truth, whether the interval holds the truth.
Then the summary against the goals (within 0.7-1.4x of the truth; coverage near the nominal 95%) for the
package's limits and, side by side, for an advisor without them (the one before issue 22). A goal missed is
printed as MISSED; the script exits 1 when no row could be scored (nothing to calibrate on).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hdc_ray.analysis import read_results
from hdc_ray.analysis.evidence.advisor import EXTRAPOLATION_ERROR, MAX_EXTRAPOLATION, labels_needed
from hdc_ray.analysis.tables import LOST_DICE, finished_trials, lost_classes, with_arm

METRIC = "test_dice_fg"
HDC_RAY = [sys.executable, "-c", "import sys; from hdc_ray.cli import main; sys.exit(main())"]  # this interpreter's hdc-ray
GOAL = (0.7, 1.4)  # predicted / measured labels needed
FRACTIONS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class Row:
    task: str
    arm: str
    target: float
    predicted: float
    low: float
    high: float
    where: str
    truth: float
    limits: str  # "package" or "unlimited" (the advisor before issue 22: no ceiling, no refusals, no widening)

    @property
    def ratio(self) -> float:
        return self.predicted / self.truth if math.isfinite(self.predicted) and math.isfinite(self.truth) else math.nan

    @property
    def covered(self) -> bool | None:
        if math.isnan(self.low):
            return None
        return bool(self.low <= self.truth <= self.high)


def run_sweep(task: str, seeds: list[int], budgets: list[int], results: str, resume: bool) -> None:
    name = f"calib-{task}"
    grid = ", ".join(map(str, budgets))
    stored = Path(results) / name / "spec.yaml"
    if resume and stored.is_file():  # the spec as it started (the shipped one may have changed since)
        cmd = [*HDC_RAY, "sweep", str(stored), "--name", name, "--results", results, "--resume"]
    else:
        cmd = [*HDC_RAY, "sweep", "study", "--name", name, "--results", results,
               "--set", f"space.data.label_count.grid=[{grid}, null]", "--set", f"seeds={seeds}", "--set", "exclude=[{variant: hdc, data.label_count: null}]",
               "--set", f"overrides.data.task={task}", *(["--resume"] if resume else [])]  # fmt: skip
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def truth_of(curve: pd.Series, target: float) -> float:
    """Smallest budget where the mean curve (index: budgets) reaches ``target``, linear in log budget between measured
    ones; inf past the largest. (The truth is measured at every budget, so no gap rule applies here.)"""
    b, m = curve.index.to_numpy(float), curve.to_numpy(float)
    if m[0] >= target:
        return float(b[0])
    for i in range(1, len(b)):
        if m[i] >= target:
            x0, x1 = math.log(b[i - 1]), math.log(b[i])
            return float(math.exp(x0 + (target - m[i - 1]) * (x1 - x0) / (m[i] - m[i - 1])))
    return math.inf


def targets_for(curve: pd.Series, fit_top: int, extra: list[float]) -> list[float]:
    start, end = float(curve.loc[fit_top]), float(curve.iloc[-1])
    if end <= start:
        return list(extra)
    return sorted({round(start + f * (end - start), 3) for f in FRACTIONS} | set(extra))


def calibrate(trials: pd.DataFrame, task: str, fit: list[int], extra: list[float], n_boot: int, without_lost: bool = False) -> list[Row]:
    done = with_arm(finished_trials(trials))
    done = done[done[METRIC].notna()]
    if without_lost:
        done = drop_lost(done, task)
    regular = done[done["label_ratio"] < 0.999]
    seen = done[done["n_labeled"].isin(fit) | (done["label_ratio"] >= 0.999)]
    rows = []
    for arm, sub in regular.groupby("arm"):
        curve = sub.groupby("n_labeled")[METRIC].mean().sort_index()
        if not set(fit) <= set(curve.index) or curve.index.max() <= max(fit):
            print(f"{task}/{arm}: budgets {list(curve.index)} do not cover --fit {fit} and a larger one: skipped", flush=True)
            continue
        for target in targets_for(curve, max(fit), extra):
            truth = truth_of(curve, target)
            mine = seen[seen["arm"] == arm]
            for limits, kw in (("package", {"ceiling": _ceiling(seen)}), ("unlimited", {"max_extrapolation": math.inf, "error_factor": 1.0, "refuse_unidentified": False})):
                r = labels_needed(mine, target, METRIC, n_boot=n_boot, seed=0, **kw).iloc[0]  # type: ignore[arg-type]
                rows.append(Row(task, str(arm), target, float(r["n_needed"]), float(r["low"]), float(r["high"]), str(r["where"]), truth, limits))
    return rows


def drop_lost(done: pd.DataFrame, task: str) -> pd.DataFrame:
    """The trials that kept every class on validation: a lost class is a training failure the fit cannot model."""
    lost = lost_classes(done)
    for _, r in done[lost != ""].assign(lost=lost).iterrows():
        print(f"{task}/{r['arm']} at {r['n_labeled']:.0f} labels, split {r['seed']}: lost {r['lost']} on validation: dropped", flush=True)
    print(f"{task}: {int((lost != '').sum())} of {len(done)} trials dropped (a class under validation Dice {LOST_DICE})", flush=True)
    return done[lost == ""]


def _ceiling(seen: pd.DataFrame) -> float | None:
    """The all-labels ceiling the report gives the advisor: the upper end of supervised@all's t-interval."""
    from hdc_ray.analysis.evidence import t_interval

    full = seen[(seen["arm"] == "supervised") & (seen["label_ratio"] >= 0.999)]
    if full.empty:
        return None
    per_split = full.groupby("seed")[METRIC].mean()
    high = t_interval(tuple(per_split))[1]
    return float(per_split.max() if math.isnan(high) else high)


def print_rows(rows: list[Row]) -> None:
    print("\n| task | arm | target | advisor (95% interval) | where | measured | predicted / measured | interval holds it |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r.limits != "package":
            continue
        interval = "no interval" if math.isnan(r.low) else f"{_n(r.low)}-{_n(r.high)}"
        covered = {None: "–", True: "yes", False: "**no**"}[r.covered]
        print(f"| {r.task} | {r.arm} | {r.target:.3f} | {_n(r.predicted)} ({interval}) | {r.where} | {_n(r.truth)} | {_ratio(r.ratio)} | {covered} |")


def summarise(rows: list[Row]) -> int:
    scored = 0
    for limits in ("package", "unlimited"):
        mine = [r for r in rows if r.limits == limits]
        answered = [r for r in mine if r.where not in ("too far", "unidentified", "not fitted") and math.isfinite(r.ratio)]
        refused = [r for r in mine if r.where in ("too far", "unidentified")]
        ratios = np.array([r.ratio for r in answered])
        covered = [r.covered for r in answered if r.covered is not None]
        scored += len(answered)
        if not len(ratios):
            print(f"\n{limits} limits: no answered row to score ({len(refused)} refused of {len(mine)})")
            continue
        inside = float(np.mean((ratios >= GOAL[0]) & (ratios <= GOAL[1])))
        cover = float(np.mean(covered)) if covered else math.nan
        print(f"\n{limits} limits (max extrapolation {MAX_EXTRAPOLATION if limits == 'package' else math.inf:g}x, "
              f"interval widening x{EXTRAPOLATION_ERROR if limits == 'package' else 1.0:g}): {len(answered)} answered, {len(refused)} refused of {len(mine)}")  # fmt: skip
        print(f"  predicted / measured: {ratios.min():.2f}-{ratios.max():.2f} (median {np.median(ratios):.2f}); "
              f"within {GOAL[0]}-{GOAL[1]}x: {inside:.0%} {'ok' if inside == 1.0 else 'MISSED'}")
        print(f"  interval holds the truth: {sum(covered)} of {len(covered)} ({cover:.0%}; nominal 95%) "
              f"{'ok' if covered and cover >= 0.8 else 'MISSED'}")
    return 0 if scored else 1


def _n(x: float) -> str:
    return "never" if math.isinf(x) else "–" if math.isnan(x) else f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def _ratio(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", action="append", choices=("cervix", "psfh"), help="task(s) to train and calibrate (repeatable)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="splits (at least 3 for an interval)")
    p.add_argument("--fit", type=int, nargs="+", default=[4, 8, 16], help="budgets the advisor sees")
    p.add_argument("--truth", type=int, nargs="+", default=[32, 64], help="larger budgets, measured for the truth")
    p.add_argument("--targets", type=float, nargs="*", default=[], help="extra target Dice values")
    p.add_argument("--results", default="results/calibration")
    p.add_argument("--resume", action="store_true", help="finish interrupted sweeps")
    p.add_argument("--analyse-only", action="store_true", help="no training: read RESULTS/calib-* as they are")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--without-lost", action="store_true", help="drop the trials that lost a class on validation before fitting and measuring")
    args = p.parse_args(argv)
    tasks = args.task or ["cervix", "psfh"]
    if not args.analyse_only:
        for task in tasks:
            run_sweep(task, args.seeds, sorted(set(args.fit) | set(args.truth)), args.results, args.resume)
    rows = []
    for task in tasks:
        if not (Path(args.results) / f"calib-{task}").exists():
            print(f"{task}: no sweep at {args.results}/calib-{task}: run it first (without --analyse-only)", file=sys.stderr)
            continue
        rows += calibrate(read_results(args.results, [f"calib-{task}"]).trials, task, args.fit, args.targets, args.n_boot, args.without_lost)
    print_rows(rows)
    return summarise(rows)


if __name__ == "__main__":
    sys.exit(main())
