"""The Answer in words: the first lines of a report and of the terminal summary, from a :class:`Decision`.

Every claim names the error rate controlled and carries its adjusted interval; the raw per-look t-interval is
secondary. The headline summarises every measured budget and never picks the budget with the largest gain. No
arithmetic here beyond formatting: the numbers come from ``hdc_ray.analysis.evidence``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from hdc_ray.analysis.budget import fmt_budget, fmt_pct
from hdc_ray.analysis.evidence.advice import Advice
from hdc_ray.analysis.evidence.decision import Decision, Judged
from hdc_ray.analysis.evidence.paired import MIN_CONCLUSION_SPLITS
from hdc_ray.analysis.evidence.saved import SavedLabels
from hdc_ray.analysis.render.commands import SweepHint, larger_budgets, longer_runs, more_splits
from hdc_ray.analysis.tables import LOST_DICE


@dataclass(frozen=True)
class Answer:
    """The Answer section: a :class:`Decision` and the lines that say it."""

    decision: Decision
    headline: tuple[str, ...]
    control: str
    problems: tuple[str, ...]
    lost: str
    convergence: tuple[str, ...]
    advice: tuple[str, ...]
    next_steps: tuple[str, ...]

    def lines(self) -> list[str]:
        return [*self.headline, self.control, *self.problems, *([self.lost] if self.lost else []), *self.convergence, *self.advice, *self.next_steps]


def render_answer(decision: Decision, hint: SweepHint | None = None, advice: Advice | None = None) -> Answer:
    hint = hint or SweepHint()
    groups = itertools.groupby(decision.comparisons, key=lambda j: (j.diff.task, j.diff.arm))
    headline = tuple(headline_of(task, arm, list(rows), decision) for (task, arm), rows in groups)
    problems = tuple(f"No answer for {p}: the labels a method saves need the supervised baseline and a method at the same budgets." for p in decision.problems)
    return Answer(decision, headline, control_line(decision), problems, lost_line(decision), tuple(convergence_lines(decision)),
                  tuple(advice_lines(advice, hint)) if advice else (), tuple(next_steps(decision, hint)))  # fmt: skip


def control_line(decision: Decision) -> str:
    m = len(decision.comparisons)
    return (f"Error control: at most a {decision.alpha:.0%} chance that any claim here is wrong, over the {m} comparison{'s' * (m != 1)} "
            "(arm x budget) and every look at these splits, however many rounds ran or follow (anytime-valid t confidence sequences, "
            "Holm's step-down; docs/report.md). Intervals are adjusted to that; the raw 95% t-interval of each look is secondary.")  # fmt: skip


def headline_of(task: str, arm: str, rows: Sequence[Judged], decision: Decision) -> str:
    """One sentence per arm that names every measured budget: where a gain is claimed, and where not."""
    unit = rows[0].diff.unit
    gains, losses = [j for j in rows if j.verdict == "gain"], [j for j in rows if j.verdict == "loss"]
    rest = [j for j in rows if j not in gains + losses]
    n = min(j.diff.n for j in rows)
    if not gains and not losses and all(not math.isfinite(j.high - j.low) for j in rows):
        verdict = f"not established with {n} split(s) at any measured budget ({_budgets(rows, unit)}): too few splits for any claim under the error control"
    elif not gains and not losses:
        verdict = f"no saving shown at any measured budget ({_budgets(rows, unit)}): no adjusted interval excludes zero"
    else:
        parts = [f"ahead at {_budgets(gains, unit)}" if gains else "", f"behind at {_budgets(losses, unit)}" if losses else ""]
        verdict = " and ".join(p for p in parts if p) + (f"; not established at {_budgets(rest, unit)}" if rest else "")
    caveat = f" {n} split(s): fewer than the {MIN_CONCLUSION_SPLITS} a conclusion needs." if n < MIN_CONCLUSION_SPLITS else ""
    return f"**{task + ': ' if task else ''}{arm} vs supervised: {verdict}.** {'; '.join(cell(j) for j in rows)}.{caveat}"


def cell(j: Judged) -> str:
    d = j.diff
    raw = d.raw_interval
    raw_text = f"raw 95% {pts(raw[0])} to {pts(raw[1])}" if not math.isnan(raw[0]) else "no raw interval"
    text = (f"@{fmt_budget(d.budget, d.unit)}: {d.arm_mean:.3f} vs {d.baseline_mean:.3f}, {pts(d.mean)} points (adjusted {interval(j)}; "
            f"{raw_text}; ahead on {d.ahead} of {d.n} splits)")  # fmt: skip
    if j.verdict == "gain" and j.saved is not None:
        text += f"; {saved_words(j.saved, d.unit)}"
    elif j.verdict == "not established" and (need := j.splits_needed) is not None:
        text += f"; ~{need} splits in all would decide it if this mean and spread held"
    return text


def interval(j: Judged) -> str:
    """``-1.2 to +5.0 at level 2.5%`` (``unbounded`` where too few splits can exclude any value at that level)."""
    if math.isnan(j.low):
        return "none under 2 splits"
    if not (math.isfinite(j.low) and math.isfinite(j.high)):
        return f"unbounded with {j.diff.n} splits at level {j.level:.1%}"
    return f"{pts(j.low)} to {pts(j.high)} at level {j.level:.1%}"


def saved_words(s: SavedLabels, unit: str) -> str:
    """What supervised needs to match the arm, and the labels saved, within the claim's error level."""
    kind = s.kind
    if kind == "not measured":
        return "labels saved not measured here (no larger supervised budget, or splits censored both ways)"
    censored = f"; {s.above} of {s.n} splits need more than the measured supervised budgets or fall in an unmeasured gap, counted at the bound" if s.above else ""
    if kind == "at least":
        if not s.low > s.budget:
            return f"supervised needs more than {_images(s.budget, unit)} on average, but how many more is not established here{censored}"
        return f"supervised needs more than {_images(s.low, unit)} to match it: at least {1 - s.budget / s.low:.0%} fewer labels{censored}"
    if kind == "at most":
        return f"supervised matches it with at most {_images(s.high, unit)} (reached already at its smallest measured budget on {s.below} split(s))"
    if not (math.isfinite(s.low) and math.isfinite(s.high)) or s.low <= 0:
        return f"supervised needs ~{_images(s.centre, unit).lstrip('~')} to match it; its interval is not established with {s.n} splits"
    return (f"supervised needs {_images(s.centre, unit)} ({_images(s.low, unit)} to {_images(s.high, unit)}) to match it: "
            f"{1 - s.budget / s.centre:.0%} fewer labels ({1 - s.budget / s.low:.0%} to {1 - s.budget / s.high:.0%})")


def lost_line(decision: Decision) -> str:
    """One sentence naming the trials that lost a class on validation: a mean over splits would hide them."""
    if not decision.lost:
        return ""
    several = len({x.task for x in decision.lost}) > 1 or (any(x.task for x in decision.lost) and len({j.diff.task for j in decision.comparisons}) > 1)
    cells = [f"{x.task + ': ' if several and x.task else ''}{x.arm} at {fmt_budget(x.budget, decision.unit)}, split {x.seed} ({x.classes})"
             for x in sorted(decision.lost, key=lambda x: (x.arm, x.budget, x.seed))]  # fmt: skip
    return (f"**{len(decision.lost)} of {decision.n_trials} trials lost a class** (validation Dice under {LOST_DICE}): {'; '.join(cells)}. Their scores "
            "count in every mean and interval here: a lost class is a training failure, not what the budget buys; "
            "a study that meets it at a budget should rerun that budget on more splits before trusting its mean.")


def compute_words(compute: dict[str, int] | None) -> str:
    if compute is None:
        return ""
    batch = f", batch {compute['batch_labeled']} labelled + {compute['batch_unlabeled']} unlabelled" if "batch_labeled" in compute else ""
    if compute["steps_min"] != compute["steps_max"]:
        return f"{compute['steps_min']}-{compute['steps_max']} training steps per trial (several schedules mixed{batch})"
    epochs = compute["epochs"]
    return f"{compute['steps_min']} training steps per trial ({epochs} epoch{'s' * (epochs != 1)} x {compute['iters']} iterations{batch})"


def convergence_lines(decision: Decision) -> list[str]:
    compute = compute_words(decision.compute) or "the training schedule these trials ran (not recorded in the results)"
    shown = {(j.diff.task, j.diff.arm) for j in decision.comparisons} | {(j.diff.task, "supervised") for j in decision.comparisons}
    rising = [c for c in decision.convergence if c.still_rising and (c.task, c.arm) in shown]
    if not rising:
        return [f"Compute: this answer holds for {compute}; every arm and budget had stopped improving before its last epoch."]
    cells = []
    for (task, arm), group in itertools.groupby(sorted(rising, key=lambda c: (c.task, c.arm, c.budget)), key=lambda c: (c.task, c.arm)):
        rows = list(group)
        peaked, trials = sum(c.peaked_last for c in rows), sum(c.n_trials for c in rows)
        cells.append(f"{task + ': ' if task else ''}{arm} at {_budget_list([c.budget for c in rows], rows[0].unit)} ({peaked} of {trials} trials peaked at their last epoch)")
    return [f"Compute: this answer holds for {compute}. **Not converged: still improving at the last epoch**: {'; '.join(cells)}. "
            "Longer runs may separate the methods more (or less) than this."]  # fmt: skip


def next_steps(decision: Decision, hint: SweepHint) -> list[str]:
    """Commands that would decide what is still open: more splits (or rounds), longer runs."""
    lines = []
    open_ = decision.open()
    if open_ or decision.n_splits < MIN_CONCLUSION_SPLITS:
        needs = [n for j in open_ if (n := j.splits_needed) is not None]
        estimate = f" (from the spread seen so far, ~{max(needs)} splits in all would decide the closest one)" if needs else ""
        what = f"decide {', '.join(j.label for j in open_)}" if open_ else f"confirm on {MIN_CONCLUSION_SPLITS} or more splits"
        run, seeds, report = more_splits(decision, hint)
        if report:
            lines.append(f"To {what}{estimate}: add splits {seeds[0]}-{seeds[-1]}, then report both sweeps together: `{run}` and `{report}`.")
        else:
            lines.append(f"To {what}{estimate}: let the study run more rounds (splits {seeds[0]}-{seeds[-1]}; the error control carries over): `{run}`.")
    longer = longer_runs(decision.convergence, hint)
    if longer:
        lines.append(f"To see whether longer training changes the answer: `{longer}`.")
    return lines


def advice_lines(advice: Advice, hint: SweepHint) -> list[str]:
    table = advice.table
    fitted = table[table["where"] != "not fitted"]
    lines = [f"{r.sentence}." for r in fitted.itertuples()]
    for p in advice.plateaus:
        lines.append(f"{p.task + ': ' if p.task else ''}Compute-limited plateau: supervised with all {p.n_all} labels scores {p.score_all:.3f}, no better than "
                     f"with {p.best_n} ({p.best_score:.3f}). At this compute the curve flattens against the training steps, not the labels: the "
                     "advisor's asymptote is that plateau, and longer training may lift it.")  # fmt: skip
    unfitted = table.loc[table["where"] == "not fitted", "arm"].astype(str).tolist()
    if unfitted:
        lines.append(f"No learning curve for {', '.join(unfitted)}: fewer than 3 measured budgets.")
    if advice.measure:
        lines.append(f"To replace the advisor's extrapolations with measurements: measure {' and '.join(map(str, advice.measure))} labelled images "
                     f"on the same splits: `{larger_budgets(advice.measure, advice.seeds, hint)}`, then report the sweeps together.")  # fmt: skip
    return lines


def pts(x: float) -> str:
    """A Dice difference in points: 0.014 -> '+1.4'."""
    return "–" if math.isnan(x) else f"{100 * x:+.1f}"


def _images(n: float, unit: str) -> str:
    if unit != "n_labeled":
        return fmt_pct(n)
    return "never" if math.isinf(n) else f"~{n:.0f}" if n >= 10 else f"~{n:.1f}".rstrip("0").rstrip(".")


def _budget_list(budgets: Sequence[float], unit: str) -> str:
    """``4 and 8 labelled images``."""
    values = sorted(budgets)
    if not values:
        return "none"
    text = [fmt_budget(b, unit).removesuffix(" images") for b in values]
    joined = text[0] if len(text) == 1 else ", ".join(text[:-1]) + " and " + text[-1]
    return joined + (" labelled images" if unit == "n_labeled" else " labels")


def _budgets(rows: Sequence[Judged], unit: str) -> str:
    return _budget_list([j.diff.budget for j in rows], unit)


__all__ = ["Answer", "SweepHint", "render_answer"]
