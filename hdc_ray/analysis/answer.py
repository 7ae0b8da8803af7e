"""The study's answer as data: per-budget paired evidence, the headline, convergence, the next round.

The unit of evidence is the labelled split (a seed draws one; every arm of a seed trains on the same labelled
subset). Every comparison of an arm with the supervised baseline is paired on the split: per budget the mean of
``arm - supervised`` over splits, a Student-t interval, and "ahead on k of n". Labels saved are inverted per
split (where does *this* split's supervised curve reach *this* split's SSL score?) so their interval carries the
split-to-split spread. The Markdown/HTML report and the terminal summary both render one :class:`Answer`.

The headline summarises every measured budget; it never picks the budget with the largest gain.
"""

from __future__ import annotations

import itertools
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from hdc_ray.analysis.advisor import labels_needed
from hdc_ray.analysis.budget import budget_column, crossing, fmt_budget, fmt_pct
from hdc_ray.analysis.tables import LOST_DICE, AnalysisError, lost_classes, metric_direction, normalise_ratio, require_metric, with_arm

BASELINE = "supervised"
MIN_INTERVAL_SPLITS = 3  # a t-interval from 2 splits is ~13x their spread, a bootstrap has 3 distinct draws
MIN_CONCLUSION_SPLITS = 6  # three-split conclusions were overturned on six (docs/benchmarks.md)
CONFIDENCE = 0.95
ADD_SPLITS = 3  # splits a next round adds


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
    def interval(self) -> tuple[float, float]:
        """Student-t 95% interval of the mean difference; NaN under :data:`MIN_INTERVAL_SPLITS` splits."""
        return t_interval(self.per_split) if self.n >= MIN_INTERVAL_SPLITS else (math.nan, math.nan)

    @property
    def ahead(self) -> int:
        return int(sum(self.sign * d > 0 for d in self.per_split))

    @property
    def verdict(self) -> str:
        """``gain``, ``loss``, ``not established`` (the interval includes zero) or ``too few splits``."""
        low, high = self.interval
        if math.isnan(low):
            return "too few splits"
        low, high = sorted((self.sign * low, self.sign * high))
        return "gain" if low > 0 else "loss" if high < 0 else "not established"

    def words(self) -> str:
        """``+1.4 points (95% interval -0.6 to +3.4; ahead on 4 of 6 splits)``."""
        low, high = self.interval
        spread = f"95% {_pts(low)} to {_pts(high)}" if not math.isnan(low) else f"no interval from {self.n} split(s)"
        return f"{_pts(self.mean)} points ({spread}; ahead on {self.ahead} of {self.n} splits)"


@dataclass(frozen=True)
class SavedLabels:
    """How many labels supervised needs to match ``arm`` at ``budget``, inverted split by split.

    ``matched``: per split, the budget at which that split's supervised curve (linear in log budget between
    its measured budgets) reaches that split's ``arm`` score; ``inf`` when it never does within them. The
    interval is a t-interval of ``log(matched / budget)`` over splits; censored splits (never reached, or
    reached already at the smallest budget) enter at their bound, and ``censored`` counts them.
    """

    task: str
    arm: str
    budget: float
    unit: str
    matched: tuple[float, ...]
    censored: int
    top_budget: float  # the largest supervised budget measured (a censored split's bound)

    @property
    def n(self) -> int:
        return len(self.matched)

    @property
    def measurable(self) -> bool:
        """An interval needs 3 splits, and at least one split whose match lies inside the measured budgets."""
        return self.n >= MIN_INTERVAL_SPLITS and self.censored < self.n

    def _log_ratios(self) -> np.ndarray:
        bounded = np.minimum(np.asarray(self.matched, float), self.top_budget)
        return np.log(bounded / self.budget)

    @property
    def matched_mean(self) -> float:
        """Geometric mean over splits of the matched budget (bounds for censored splits)."""
        return float(self.budget * np.exp(self._log_ratios().mean())) if self.n else math.nan

    @property
    def matched_interval(self) -> tuple[float, float]:
        if self.n < MIN_INTERVAL_SPLITS:
            return math.nan, math.nan
        low, high = t_interval(tuple(self._log_ratios()))
        return float(self.budget * math.exp(low)), float(self.budget * math.exp(high))

    def words(self) -> str:
        """``supervised needs ~7 labelled images (95% 5 to 10) to match it: -43% annotation (-20% to -60%)``."""
        if self.n < MIN_INTERVAL_SPLITS:
            return f"labels saved not established with {self.n} split(s) (an interval needs {MIN_INTERVAL_SPLITS})"
        if self.censored == self.n and self.budget >= self.top_budget:
            return "labels saved not measurable: no larger supervised budget was run"
        if self.censored == self.n:
            return f"supervised does not reach it on any split within its measured budgets (up to {_images(self.top_budget, self.unit).lstrip('~')})"
        low, high = self.matched_interval
        m = self.matched_mean
        text = (
            f"supervised needs {_images(m, self.unit)} (95% {_images(low, self.unit)} to {_images(high, self.unit)}) "
            f"to match it: {self.budget / m - 1:+.0%} annotation ({self.budget / low - 1:+.0%} to {self.budget / high - 1:+.0%})"
        )
        if self.censored:
            text += f"; on {self.censored} of {self.n} splits outside the measured budgets, counted at the bound"
        return text


@dataclass(frozen=True)
class Convergence:
    """Had the runs of one arm at one budget stopped improving? ``peaked_last``: trials whose best epoch is their last."""

    task: str
    arm: str
    budget: float
    unit: str
    n_trials: int
    peaked_last: int
    rising: int  # trials whose validation score still rose over their last epochs (history), -1 if unknown

    @property
    def still_rising(self) -> bool:
        return 2 * max(self.peaked_last, self.rising) >= self.n_trials > 0


@dataclass(frozen=True)
class ArmAnswer:
    """One SSL arm against supervised on one task: the evidence behind its headline."""

    task: str
    arm: str
    differences: tuple[PairedDifference, ...]
    saved: tuple[SavedLabels, ...]

    @property
    def n_splits(self) -> int:
        return min((d.n for d in self.differences), default=0)

    def budgets(self, verdict: str) -> list[float]:
        return [d.budget for d in self.differences if d.verdict == verdict]


@dataclass(frozen=True)
class Answer:
    """What the Answer section says, as data: headline lines, per-arm evidence, compute and next steps."""

    metric: str
    arms: tuple[ArmAnswer, ...]
    convergence: tuple[Convergence, ...]
    compute: str  # "320 training steps per trial (8 epochs x 40 iterations, batch 8 labelled + 8 unlabelled)"
    headline: tuple[str, ...]
    next_steps: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # why a task or arm has no answer
    advice: Advice | None = None  # the budget advisor's verdicts, when a target was asked for
    lost: str = ""  # the trials that lost a class on validation, in words ('' if none)

    def lines(self) -> list[str]:
        advice = [*self.advice.lines, *self.advice.next_steps] if self.advice else []
        return [*self.headline, *self.problems, *([self.lost] if self.lost else []), *self.convergence_lines(), *advice, *self.next_steps]

    def convergence_lines(self) -> list[str]:
        compute = self.compute or "the training schedule these trials ran (not recorded in the results)"
        shown = {(a.task, a.arm) for a in self.arms} | {(a.task, BASELINE) for a in self.arms}
        rising = [c for c in self.convergence if c.still_rising and (c.task, c.arm) in shown]
        if not rising:
            return [f"Compute: this answer holds for {compute}; every arm and budget had stopped improving before its last epoch."]
        cells = []
        for (task, arm), group in itertools.groupby(sorted(rising, key=lambda c: (c.task, c.arm, c.budget)), key=lambda c: (c.task, c.arm)):
            rows = list(group)
            peaked, trials = sum(c.peaked_last for c in rows), sum(c.n_trials for c in rows)
            cells.append(f"{_task(task)}{arm} at {_budget_range([c.budget for c in rows], rows[0].unit)} "
                         f"({peaked} of {trials} trials peaked at their last epoch)")  # fmt: skip
        return [
            f"Compute: this answer holds for {compute}. **Not converged: still improving at the last epoch**: {'; '.join(cells)}. "
            "Longer runs may separate the methods more (or less) than this."
        ]


def build_answer(trials: pd.DataFrame, metric: str, *, history: pd.DataFrame | None = None, arm_col: str = "arm",
                 sweep_hint: SweepHint | None = None, baseline: str = BASELINE) -> Answer:  # fmt: skip
    """The answer from finished trials: paired evidence per task, arm and budget, and the headline."""
    done = with_arm(require_metric(trials, metric))
    done["label_ratio"] = normalise_ratio(done["label_ratio"])
    unit = budget_column(done)
    sign = 1.0 if metric_direction(metric) == "max" else -1.0
    arms, problems = [], []
    for task, rows in _by_task(done):
        found, why = _task_arms(rows, task, metric, unit, sign, arm_col, baseline)
        arms += found
        problems += why
    convergence = tuple(_convergence(done, history, unit, arm_col))
    hint = sweep_hint or SweepHint()
    headline = tuple(_headline(a, unit) for a in arms)
    steps = tuple(next_steps(arms, convergence, hint, done))
    return Answer(metric, tuple(arms), convergence, compute_words(done), headline, steps, tuple(problems), lost=lost_words(done, unit, arm_col))


def lost_words(done: pd.DataFrame, unit: str, arm_col: str = "arm") -> str:
    """One sentence naming the trials that lost a class on validation: a mean over splits would hide them."""
    lost = lost_classes(done)
    bad = done[lost != ""].assign(lost=lost[lost != ""]).sort_values([arm_col, unit, "seed"])
    if bad.empty:
        return ""
    several = "task" in bad.columns and done["task"].nunique() > 1  # name the task only where there is more than one
    cells = [f"{_task(str(r['task']) if several else '')}{r[arm_col]} at {fmt_budget(r[unit], unit)}, split {r['seed']} ({r['lost']})" for _, r in bad.iterrows()]
    return (f"**{len(bad)} of {len(done)} trials lost a class** (validation Dice under {LOST_DICE}): {'; '.join(cells)}. Their scores "
            "count in every mean and interval here: a lost class is a training failure, not what the budget buys; "
            "a study that meets it at a budget should rerun that budget on more splits before trusting its mean.")


def _task_arms(rows: pd.DataFrame, task: str, metric: str, unit: str, sign: float, arm_col: str, baseline: str = BASELINE) -> tuple[list[ArmAnswer], list[str]]:
    present = set(rows[arm_col])
    if baseline not in present:
        return [], [f"{_task(task)}No supervised arm in these results ({', '.join(sorted(present))}): the labels a method saves cannot be measured; run the supervised baseline at the same budgets."]
    methods = sorted(a for a in present - {baseline} if a in set(rows["method"]) or baseline != BASELINE)  # ablation variants are not methods
    if not methods:
        return [], [f"{_task(task)}Only the supervised baseline was run: there is no semi-supervised method to compare it with."]
    table = _split_table(rows, metric, unit, arm_col)
    return [_arm_answer(table, task, m, unit, sign, baseline) for m in methods], []


def _split_table(rows: pd.DataFrame, metric: str, unit: str, arm_col: str) -> pd.DataFrame:
    """(arm, budget) x seed -> mean score; a seed is a split (``split_hash`` pairs them where present)."""
    return rows.pivot_table(index=[arm_col, unit], columns="seed", values=metric, aggfunc="mean").rename_axis(index=["arm", "budget"])


def _arm_answer(table: pd.DataFrame, task: str, arm: str, unit: str, sign: float, baseline: str = BASELINE) -> ArmAnswer:
    base = table.loc[baseline]
    own = table.loc[arm]
    diffs, saved = [], []
    for budget in sorted(b for b in own.index if b in base.index):
        pair = pd.concat([own.loc[budget], base.loc[budget]], axis=1, keys=["arm", "base"]).dropna()
        if pair.empty:
            continue
        d = pair["arm"] - pair["base"]
        seeds = tuple(int(s) for s in pair.index)
        diffs.append(PairedDifference(task, arm, float(budget), unit, seeds, tuple(float(x) for x in d),
                                      float(pair["arm"].mean()), float(pair["base"].mean()), sign))  # fmt: skip
        saved.append(_saved_labels(base, pair["arm"], task, arm, float(budget), unit, sign))
    return ArmAnswer(task, arm, tuple(diffs), tuple(saved))


def _saved_labels(base: pd.DataFrame, arm_scores: pd.Series, task: str, arm: str, budget: float, unit: str, sign: float) -> SavedLabels:
    """Per split: the budget where that split's supervised curve reaches that split's arm score."""
    budgets = base.index.to_numpy(float)
    matched, censored = [], 0
    for seed, target in arm_scores.items():
        curve = base[seed].to_numpy(float)
        ok = ~np.isnan(curve)
        b, m = budgets[ok], sign * curve[ok]
        found = crossing(b, m, sign * float(target))
        censored += int(math.isinf(found) or (found == b[0] and m[0] > sign * float(target)))
        matched.append(found)
    return SavedLabels(task, arm, budget, unit, tuple(matched), censored, float(budgets.max()))


def _headline(a: ArmAnswer, unit: str) -> str:
    """One sentence per arm that names every measured budget: where a gain is shown, and where not."""
    where = f"{_task(a.task)}{a.arm} vs supervised"
    if a.n_splits < MIN_INTERVAL_SPLITS:
        cells = "; ".join(f"{fmt_budget(d.budget, unit)}: {_pts(d.mean)} points (splits: {', '.join(_pts(x) for x in d.per_split)})" for d in a.differences)
        return f"**{where}: not established with {a.n_splits} split(s)** (an interval needs {MIN_INTERVAL_SPLITS}, a conclusion {MIN_CONCLUSION_SPLITS}); {cells}."
    gains, losses = a.budgets("gain"), a.budgets("loss")
    cells = "; ".join(_cell(d, s) for d, s in zip(a.differences, a.saved, strict=True))
    if not gains and not losses:
        verdict = f"no saving shown at any measured budget ({_budget_list(a.differences, unit)}): every paired interval includes zero"
    else:
        parts = [f"ahead at {_budget_range(gains, unit)}" if gains else "", f"behind at {_budget_range(losses, unit)}" if losses else ""]
        rest = [d.budget for d in a.differences if d.budget not in gains + losses]
        verdict = " and ".join(p for p in parts if p) + (f"; not established at {_budget_range(rest, unit)}" if rest else "")
    caveat = (f" Fewer than {MIN_CONCLUSION_SPLITS} splits ({a.n_splits}): treat this as preliminary." if a.n_splits < MIN_CONCLUSION_SPLITS else "")
    return f"**{where}: {verdict}.** {cells}.{caveat}"


def _cell(d: PairedDifference, s: SavedLabels) -> str:
    text = f"@{fmt_budget(d.budget, d.unit)}: {d.arm_mean:.3f} vs {d.baseline_mean:.3f}, {d.words()}"
    if d.verdict == "gain":
        text += f"; {s.words()}"
    return text


def compute_words(done: pd.DataFrame) -> str:
    """The training compute the answer holds for, from the trials' resolved configs."""
    cols = ("cfg.train.epochs", "cfg.train.iters_per_epoch")
    if not all(c in done.columns for c in cols) or done[list(cols)].isna().all().any():
        return ""
    steps = (pd.to_numeric(done[cols[0]]) * pd.to_numeric(done[cols[1]])).dropna().astype(int)
    batch = ""
    if {"cfg.train.batch_labeled", "cfg.train.batch_unlabeled"} <= set(done.columns):
        b_l, b_u = int(done["cfg.train.batch_labeled"].mode().iloc[0]), int(done["cfg.train.batch_unlabeled"].mode().iloc[0])
        batch = f", batch {b_l} labelled + {b_u} unlabelled"
    if steps.nunique() > 1:
        return f"{steps.min()}-{steps.max()} training steps per trial (several schedules mixed{batch})"
    epochs, iters = int(done[cols[0]].mode().iloc[0]), int(done[cols[1]].mode().iloc[0])
    return f"{int(steps.iloc[0])} training steps per trial ({epochs} epoch{'s' * (epochs != 1)} x {iters} iterations{batch})"


def _convergence(done: pd.DataFrame, history: pd.DataFrame | None, unit: str, arm_col: str) -> list[Convergence]:
    if "best_epoch" not in done.columns or "epochs_done" not in done.columns:
        return []
    rising = _rising_trials(history)
    out = []
    many = "task" in done.columns and done["task"].nunique() > 1
    tasks = done["task"].fillna("").astype(str) if many else pd.Series("", index=done.index)  # as _by_task names them
    for (task, arm, budget), rows in done.groupby([tasks, arm_col, unit]):
        last = int((pd.to_numeric(rows["best_epoch"]) >= pd.to_numeric(rows["epochs_done"])).sum())
        up = -1 if rising is None else int(rows["trial_id"].map(lambda t: rising.get(str(t), False)).sum())
        out.append(Convergence(str(task), str(arm), float(budget), unit, len(rows), last, up))
    return out


RISING_EPOCHS = 3  # "the last few epochs still improve": the validation score's slope over the last 3 epochs


def _rising_trials(history: pd.DataFrame | None, metric: str = "val_dice_fg") -> dict[str, bool] | None:
    """trial_id -> whether its validation score still rose over its last :data:`RISING_EPOCHS` epochs."""
    if history is None or history.empty or metric not in history.columns:
        return None
    out = {}
    for trial, rows in history.dropna(subset=[metric]).groupby("trial_id"):
        tail = rows.sort_values("epoch")[metric].to_numpy(float)[-RISING_EPOCHS:]
        out[str(trial)] = len(tail) == RISING_EPOCHS and float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) > 0
    return out


@dataclass(frozen=True)
class SweepHint:
    """What the next-round commands need to name: the spec to rerun, the sweep, the results, the seeds used."""

    spec: str = "study"
    sweep: str = "study"
    results: str = "results"
    epochs: int | None = None
    max_seeds: int | None = None  # a study run in rounds (``stopping``): more splits = a higher max_seeds on --resume


def next_steps(arms: Sequence[ArmAnswer], convergence: Sequence[Convergence], hint: SweepHint, done: pd.DataFrame) -> list[str]:
    """Commands that would decide what is still open: more splits for undecided budgets, longer runs."""
    lines = []
    open_ = [d for a in arms for d in a.differences if d.verdict in ("not established", "too few splits")]
    few = [a for a in arms if a.n_splits < MIN_CONCLUSION_SPLITS]
    if open_ or few:
        seeds = sorted(int(s) for s in done["seed"].dropna().unique())
        new = list(range(max(seeds) + 1, max(seeds) + 1 + ADD_SPLITS)) if seeds else list(range(ADD_SPLITS))
        name = f"{hint.sweep}-splits-{new[0]}-{new[-1]}"
        budgets = sorted({d.budget for d in open_}) or sorted({d.budget for a in few for d in a.differences})
        what = "decide" if open_ else f"confirm on {MIN_CONCLUSION_SPLITS} or more splits"
        if hint.max_seeds is not None:
            more = hint.max_seeds + ADD_SPLITS
            lines.append(f"To {what} them: let the study run more rounds: `{_cmd(hint, hint.sweep, [f'stopping.max_seeds={more}'], resume=True)}`.")
            return lines + _longer(convergence, hint)
        lines.append(
            f"To {what} {_budget_range(budgets, open_[0].unit if open_ else few[0].differences[0].unit)}: add {ADD_SPLITS} splits "
            f"(seeds {new[0]}-{new[-1]}), then report both sweeps together: `{_cmd(hint, name, [f'seeds={new}'])}` and "
            f"`hdc-ray report {shlex.quote(hint.results)} --sweep {hint.sweep} --sweep {name}`."
        )
    return lines + _longer(convergence, hint)


def _longer(convergence: Sequence[Convergence], hint: SweepHint) -> list[str]:
    if not any(c.still_rising for c in convergence) or not hint.epochs:
        return []
    longer = math.ceil(hint.epochs * 2.5)
    return [f"To see whether longer training changes the answer: `{_cmd(hint, f'{hint.sweep}-{longer}ep', [f'overrides.train.epochs={longer}'])}`."]


def _cmd(hint: SweepHint, name: str, sets: list[str], *, resume: bool = False) -> str:
    parts = ["hdc-ray", "sweep", hint.spec, "--name", name, "--results", hint.results, *(["--resume", "--accept-spec-change"] if resume else [])]
    for s in sets:
        parts += ["--set", s.replace(", ", ",")]
    return " ".join(shlex.quote(p) for p in parts)


@dataclass(frozen=True)
class Decision:
    """Is the study decided? Every arm at every budget, paired with the baseline: decided when its interval
    excludes zero or is narrower than ``width`` (see ``Stopping`` in ``hdc_ray.tune.spec``)."""

    differences: tuple[PairedDifference, ...]
    width: float
    n_splits: int

    def is_decided(self, d: PairedDifference) -> bool:
        low, high = d.interval
        return not math.isnan(low) and (d.verdict in ("gain", "loss") or high - low < self.width)

    @property
    def decided(self) -> bool:
        return bool(self.differences) and all(self.is_decided(d) for d in self.differences)

    def open_budgets(self) -> list[str]:
        return [f"{_task(d.task)}{d.arm}@{fmt_budget(d.budget, d.unit)}" for d in self.differences if not self.is_decided(d)]

    def records(self) -> list[dict[str, object]]:
        """Plain values per (arm, budget), for ``rounds.json``."""
        def plain(x: float) -> float | None:  # JSON has no NaN
            return None if math.isnan(x) else round(x, 6)

        return [{"task": d.task, "arm": d.arm, "budget": d.budget, "n": d.n, "mean": plain(d.mean), "low": plain(d.interval[0]),
                 "high": plain(d.interval[1]), "verdict": d.verdict, "decided": self.is_decided(d)} for d in self.differences]  # fmt: skip


def decide(trials: pd.DataFrame, metric: str, *, width: float, baseline: str = BASELINE) -> Decision:
    """The stopping rule's view of a study: paired intervals on ``metric`` (a validation metric) per arm and budget."""
    answer = build_answer(trials, metric, baseline=baseline)
    diffs = tuple(d for a in answer.arms for d in a.differences)
    return Decision(diffs, width, min((d.n for d in diffs), default=0))


@dataclass(frozen=True)
class Advice:
    """The budget advisor's verdicts: :func:`labels_needed` rows for every task, and what they mean in words."""

    table: pd.DataFrame
    lines: tuple[str, ...]
    next_steps: tuple[str, ...]


PLATEAU_TOLERANCE = 0.005  # all labels scoring no more than this above a fraction of them: a compute-limited plateau


def advise(done: pd.DataFrame, metric: str, target: float, *, arm_col: str = "arm", n_boot: int = 1000, hint: SweepHint | None = None) -> Advice:
    """Labels needed per arm to reach ``target``, each task's asymptotes capped at its all-labels ceiling."""
    done = with_arm(require_metric(done, metric))
    tables, lines = [], []
    for task, rows in _by_task(done):
        ceiling, plateau = _ceiling(rows, metric, arm_col)
        if plateau:
            lines.append(_task(task) + plateau)
        tables.append(labels_needed(rows, target, metric, arm_col=arm_col, n_boot=n_boot, seed=0, ceiling=ceiling))
    table = pd.concat(tables, ignore_index=True)
    fitted = table[table["where"] != "not fitted"]
    lines = [str(r) + "." for r in fitted["sentence"]] + lines
    unfitted = table.loc[table["where"] == "not fitted", "arm"].astype(str).tolist()
    if unfitted:
        lines.append(f"No learning curve for {', '.join(unfitted)}: fewer than 3 measured budgets.")
    return Advice(table, tuple(lines), tuple(_measure_next(fitted, done, hint or SweepHint())))


def _ceiling(rows: pd.DataFrame, metric: str, arm_col: str) -> tuple[float | None, str]:
    """Supervised with every label: the upper end of its interval over splits, and a plateau sentence if it is one."""
    sup = rows[rows[arm_col].astype(str).str.endswith(BASELINE)]
    full = sup[sup["label_ratio"] >= 0.999]
    if full.empty:
        return None, ""
    per_split = full.groupby("seed")[metric].mean()
    _, high = t_interval(tuple(per_split))
    ceiling = float(per_split.max() if math.isnan(high) else high)
    smaller = sup[sup["label_ratio"] < 0.999].groupby("n_labeled")[metric].mean()
    if smaller.empty or per_split.mean() > smaller.max() + PLATEAU_TOLERANCE:
        return ceiling, ""
    n_all, best_n = int(full["n_labeled"].max()), int(smaller.idxmax())
    return ceiling, (
        f"Compute-limited plateau: supervised with all {n_all} labels scores {per_split.mean():.3f}, no better than with {best_n} "
        f"({smaller.max():.3f}). At this compute the curve flattens against the training steps, not the labels: the advisor's "
        "asymptote is that plateau, and longer training may lift it"
    )


def _measure_next(fitted: pd.DataFrame, done: pd.DataFrame, hint: SweepHint) -> list[str]:
    """Where the advisor had to extrapolate or refuse: the budgets to measure, as a command."""
    outside = fitted[fitted["where"].isin(["extrapolated", "too far", "unidentified"])]
    if outside.empty:
        return []
    # Reach out from the budget the answer extrapolated from, not the largest measured: with supervised measured at
    # 4, 8, 16 and all 400, a target refused past 16 is decided by 32 and 64, not by 800.
    start = outside["reach_from"].where(outside["reach_from"].notna(), outside["max_measured"])
    top = int(start.max())
    ok = done["label_ratio"] > 0
    pool = round(float((done.loc[ok, "n_labeled"] / done.loc[ok, "label_ratio"]).median()))
    budgets = [b for b in (2 * top, 4 * top) if b < pool] or [pool]
    seeds = sorted(int(s) for s in done["seed"].dropna().unique())[: max(MIN_INTERVAL_SPLITS, 1)]
    name = f"{hint.sweep}-{'-'.join(map(str, budgets))}"
    sets = [f"space.data.label_count.grid={budgets}", "exclude=[]", f"seeds={seeds}"]
    return [f"To replace the advisor's extrapolations with measurements: measure {' and '.join(map(str, budgets))} labelled images "
            f"on the same splits: `{_cmd(hint, name, sets)}`, then report the sweeps together."]


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (NaN under 2 values)."""
    x = np.asarray(values, float)
    if len(x) < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return float(x.mean() - half), float(x.mean() + half)


def _by_task(done: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    if "task" not in done.columns or done["task"].nunique() <= 1:
        return [("", done)]
    return [(str(t), d) for t, d in done.groupby("task", sort=True)]


def _task(task: str) -> str:
    return f"{task}: " if task else ""


def _pts(x: float) -> str:
    """A Dice difference in points: 0.014 -> '+1.4'."""
    return "–" if math.isnan(x) else f"{100 * x:+.1f}"


def _images(n: float, unit: str) -> str:
    if unit != "n_labeled":
        return fmt_pct(n)
    return "never" if math.isinf(n) else f"~{n:.0f}" if n >= 10 else f"~{n:.1f}".rstrip("0").rstrip(".")


def _budget_range(budgets: Sequence[float], unit: str) -> str:
    """``4 and 8 labelled images`` / ``4-16 labelled images`` (all measured budgets between)."""
    values = sorted(budgets)
    if not values:
        return "none"
    text = [fmt_budget(b, unit).removesuffix(" images") for b in values]
    joined = text[0] if len(text) == 1 else ", ".join(text[:-1]) + " and " + text[-1]
    return joined + (" labelled images" if unit == "n_labeled" else " labels")


def _budget_list(diffs: Sequence[PairedDifference], unit: str) -> str:
    return _budget_range([d.budget for d in diffs], unit)


__all__ = ["Advice", "AnalysisError", "Answer", "ArmAnswer", "Convergence", "Decision", "PairedDifference", "SavedLabels", "SweepHint", "advise", "build_answer", "decide", "t_interval"]
