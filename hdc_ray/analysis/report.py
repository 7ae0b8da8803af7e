"""``hdc-ray report``: the three answers (label budget, loss terms, Pareto settings) as a report.

Writes ``OUT/report.md`` and ``OUT/report.html`` linking PNG figures in ``OUT``, and prints a short
summary. Works on partial results (running trials are counted, not used) and on mixed sweeps::

    hdc-ray report results/                      # every sweep under results/, into results/report
    hdc-ray report results/ --sweep budget --out /tmp/budget-report
    hdc-ray report results/ --target-dice 0.85   # + labels needed per method to reach Dice 0.85

The first lines answer the study's question (how many labelled images a method saves against the
supervised baseline at every measured budget, paired on the labelled split with t-intervals over splits; see
``answer.py``), next to the label-budget curve.
Everything called "best" is chosen on the validation split and reported on test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from hdc_ray.analysis import plots
from hdc_ray.analysis.budget import (
    budget_column,
    curve_unit,
    fmt_budget,
    label_budget_curve,
)
from hdc_ray.analysis.document import Document
from hdc_ray.analysis.evidence.advice import Advice, advise
from hdc_ray.analysis.evidence.advisor import MAX_EXTRAPOLATION
from hdc_ray.analysis.evidence.decision import decide
from hdc_ray.analysis.load import Results, read_results
from hdc_ray.analysis.render import Answer, SweepHint, render_answer
from hdc_ray.analysis.render.answer import advice_lines, interval, pts
from hdc_ray.analysis.render.sections import (
    ablation_section,
    curves_section,
    importance_section,
    num,
    pareto_section,
    sweeps_section,
)
from hdc_ray.analysis.tables import (
    AnalysisError,
    distance_unit,
    finished_trials,
    metric_columns,
    metric_label,
    normalise_ratio,
    require_metric,
    with_arm,
)
from hdc_ray.outputs import check_writable, staged_folder

METRIC_CHOICES = ("test_dice_fg", "val_dice_fg")  # first one finished trials carry is reported
BASELINE = "supervised"  # labels saved are measured against this arm
NO_CI = "1 seed — no CI"
N_BOOT = 1000  # bootstrap resamples of seeds for the intervals
PLOT_FILES = {
    "label_budget": "label_budget.png",
    "labels_needed": "labels_needed.png",
    "ablation": "ablation.png",
    "pareto": "pareto.png",
    "importance": "importance.png",
    "learning_curves": "learning_curves.png",
}


@dataclass
class Report:
    """What ``build_report`` wrote: the Markdown and HTML files, the plots and the summary text."""

    markdown: Path
    html: Path
    plots: dict[str, Path] = field(default_factory=dict)
    summary: str = ""
    skipped: dict[str, str] = field(default_factory=dict)  # PLOT_FILES key -> why that section has no figure


def report_results(results: str, *, sweeps: list[str] | None = None, out: str | Path | None = None, target_dice: float | None = None) -> Report:
    """Read the sweeps under ``results`` (a folder or URI) and write their report (default ``RESULTS/report``).

    Bad input (missing folder, no finished trials, missing metric, mixed schema versions) raises
    ``AnalysisError`` with a message written for the user.
    """
    loaded = read_results(results, sweeps or None)
    final = Path(out) if out else default_report_dir(results)
    check_writable(final, "report folder")
    # Written whole into a temporary sibling, then renamed: an interrupted report leaves the previous one
    # (or nothing), never a Markdown file pointing at plots that were not written.
    with staged_folder(final) as staging:
        report = build_report(loaded, staging, target_dice=target_dice)
    return _moved(report, staging, final)


def _moved(report: Report, staging: Path, final: Path) -> Report:
    def at(path: Path) -> Path:
        return final / path.relative_to(staging)

    return replace(report, markdown=at(report.markdown), html=at(report.html), plots={k: at(p) for k, p in report.plots.items()},
                   summary=report.summary.replace(str(staging), str(final)))  # fmt: skip


def default_report_dir(results: str) -> Path:
    """RESULTS/report for a local folder; ./report for an object-store URI (written locally)."""
    return Path("report") if "://" in results and not results.startswith("file://") else Path(results.removeprefix("file://")) / "report"


def build_report(
    results: Results,
    out_dir: str | Path,
    *,
    metric: str | None = None,
    target_dice: float | None = None,
    n_boot: int = N_BOOT,
) -> Report:
    """Analyse ``results`` and write ``report.md``, ``report.html`` and the PNGs into ``out_dir``.

    ``target_dice``: also answer "how many labelled images to reach this Dice?" per arm (the budget
    advisor, :func:`labels_needed`). ``n_boot``: seed resamples behind every interval.
    """
    if target_dice is not None and not 0 < target_dice < 1:
        raise AnalysisError(f"--target-dice {target_dice} must lie between 0 and 1")
    target_dice = target_dice if target_dice is not None else results.target_dice()  # the study's question lives in its spec
    ctx = _Context.create(results, Path(out_dir), metric or results.decided_on(), target_dice, n_boot)
    doc = Document("hdc-ray sweep report")
    _answer(doc, ctx)
    _intro(doc, ctx)
    sweeps_section(doc, ctx)
    for key, title, section in (
        ("label_budget", "1. What label budget buys what accuracy", _budget_section),
        ("labels_needed", "Budget advisor: labels needed to reach a target", _advisor_section),
        ("ablation", "2. Which loss terms and noise levels matter", ablation_section),
        ("pareto", "3. Which settings are Pareto-optimal", pareto_section),
        ("importance", "Parameter importance", importance_section),
        ("learning_curves", "Learning curves", curves_section),
    ):
        doc.heading(title)
        _guarded(doc, ctx, key, section)
    _notes(doc, ctx)
    md, page = ctx.out / "report.md", ctx.out / "report.html"
    md.write_text(doc.to_markdown(), encoding="utf-8")
    page.write_text(doc.to_html(), encoding="utf-8")
    summary = _terminal_summary(ctx, md, page)
    return Report(md, page, ctx.plots, summary, ctx.skipped)


@dataclass
class _Context:
    """Everything the sections share: the finished trials, the metric, the arm colours."""

    results: Results
    out: Path
    metric: str
    select: str  # the validation metric every "best" is chosen on (``metric`` is reported)
    done: pd.DataFrame  # finished trials with the metric, with ``arm`` and ``group`` columns
    unit: str | None
    colours: dict[str, tuple[float, ...]]
    target: float | None = None
    n_boot: int = N_BOOT
    notes: list[str] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    curve: pd.DataFrame | None = None
    answer_lines: list[str] = field(default_factory=list)
    answer: Answer | None = None
    advice: Advice | None = None
    advice_error: str = ""

    @classmethod
    def create(cls, results: Results, out: Path, metric: str | None, target: float | None = None, n_boot: int = N_BOOT) -> _Context:
        notes: list[str] = []
        metric = metric or _pick_metric(results.trials, notes)
        done = with_arm(require_metric(results.trials, metric))
        select = _selection_metric(metric, done, notes)
        done["label_ratio"] = normalise_ratio(done["label_ratio"])
        many_tasks = "task" in done.columns and done["task"].nunique() > 1
        done["group"] = (done["task"] + ": " + done["arm"]) if many_tasks else done["arm"]
        out.mkdir(parents=True, exist_ok=True)
        colours = plots.arm_colours(done["group"].astype(str))
        return cls(results, out, metric, select, done, distance_unit(done), colours, target, n_boot, notes)

    @property
    def budget(self) -> str:
        """``n_labeled`` (labelled images) or, for results without counts, ``label_ratio``."""
        return budget_column(self.done)

    @property
    def label(self) -> str:
        return metric_label(self.metric, self.unit)

    def plot(self, key: str, draw: Callable[[Path], Path]) -> str:
        self.plots[key] = draw(self.out / PLOT_FILES[key])
        return PLOT_FILES[key]


def _pick_metric(trials: pd.DataFrame, notes: list[str]) -> str:
    """The reported metric: test Dice when finished trials have it, else validation Dice."""
    done = finished_trials(trials)
    if done.empty:
        counts = ", ".join(f"{n} {s}" for s, n in trials["status"].value_counts().items())
        raise AnalysisError(f"no finished trials yet ({counts or 'no trials'}): nothing to report; rerun when a trial has completed")
    for metric in METRIC_CHOICES:
        if metric in done.columns and done[metric].notna().any():
            if metric != METRIC_CHOICES[0]:
                notes.append(f"No test metrics yet: the report uses `{metric}`, the model-selection split, so scores are optimistic.")
            return metric
    raise AnalysisError(
        f"no finished trial has {' or '.join(METRIC_CHOICES)}; metrics present: "
        + (", ".join(c for c in metric_columns(done) if done[c].notna().any()) or "none")
    )


def _selection_metric(metric: str, done: pd.DataFrame, notes: list[str]) -> str:
    """The validation twin of the reported metric (``test_dice_fg`` -> ``val_dice_fg``).

    Choosing the best trial by its test score would make test a selection split and the reported
    number optimistic; when no validation value exists the report metric itself is used, and said so.
    """
    val = "val_" + metric.removeprefix("test_") if metric.startswith("test_") else metric
    if val in done.columns and done[val].notna().any():
        return val
    notes.append(f"No finished trial has `{val}`: 'best' is chosen on `{metric}` itself, so best scores are optimistic.")
    return metric


def _guarded(doc: Document, ctx: _Context, key: str, section: Callable[[Document, _Context], None]) -> None:
    """Run a section; an unanswerable question becomes a sentence in the report, not a crash."""
    try:
        section(doc, ctx)
    except AnalysisError as exc:
        ctx.skipped[key] = str(exc)
        doc.paragraph(f"Not available: {exc}.")


def _answer(doc: Document, ctx: _Context) -> None:
    """The study's answer first (paired over splits, every budget; see ``answer.py``), the curve beside it."""
    doc.heading("Answer")
    if ctx.target is not None:
        try:
            ctx.advice = advise(ctx.done, ctx.metric, ctx.target, arm_col="group", n_boot=ctx.n_boot)
        except AnalysisError as exc:
            ctx.advice_error = f"Labels needed for {metric_label(ctx.metric)} {ctx.target:.3g}: not answered: {exc}."
    try:
        ctx.curve = _budget_curves(ctx)[0]
        decision = decide(ctx.done, ctx.metric, history=ctx.results.history)
        ctx.answer = render_answer(decision, _hint(ctx), ctx.advice)
        ctx.answer_lines = ctx.answer.lines() + ([ctx.advice_error] if ctx.advice_error else [])
    except AnalysisError as exc:  # the advisor's verdicts need no pairing: they stand without the paired answer
        ctx.answer_lines = [f"No answer from these results: {exc}.", *(advice_lines(ctx.advice, _hint(ctx)) if ctx.advice else [])]
    doc.bullets(ctx.answer_lines)
    if ctx.curve is not None:
        curves = _budget_curves(ctx)
        src = ctx.plot(
            "label_budget",
            lambda p: plots.plot_label_budget(curves, p, group="group", unit=ctx.unit, colours=ctx.colours, points=ctx.done),
        )
        doc.image("label-budget curve", src)


def _hint(ctx: _Context) -> SweepHint:
    """What the answer's commands name: the stored spec of the (first) sweep, its name, the results folder."""
    sweep = ctx.results.sweeps[0] if ctx.results.sweeps else "study"
    source = ctx.results.source
    stored = Path(source) / sweep / "spec.yaml"
    spec = str(stored) if "://" not in source and stored.is_file() else "study"
    epochs = pd.to_numeric(ctx.done.get("cfg.train.epochs"), errors="coerce") if "cfg.train.epochs" in ctx.done else None
    log = ctx.results.rounds.get(sweep, {})
    rule = log.get("rule") or {}
    run = sum(len(r.get("seeds", [])) for r in log.get("rounds", [])) if log else None
    return SweepHint(spec, sweep, source, int(epochs.mode().iloc[0]) if epochs is not None and epochs.notna().any() else None,
                     int(rule["max_seeds"]) if "max_seeds" in rule else None, run)  # fmt: skip


def _advisor_section(doc: Document, ctx: _Context) -> None:
    if ctx.target is None:
        doc.paragraph("Not asked: pass `--target-dice 0.85` (any Dice) to get how many labelled images each method needs to reach it.")
        return
    if ctx.advice is None:
        raise AnalysisError(ctx.advice_error or "no advice")
    advice = ctx.advice.table
    fitted = advice[advice["where"] != "not fitted"]
    if fitted.empty:
        raise AnalysisError("no arm has the 3 or more distinct budgets a learning curve needs")
    points = ctx.done.assign(arm=ctx.done["group"])
    src = ctx.plot("labels_needed", lambda p: plots.plot_labels_needed(points, advice, p, colours=ctx.colours))
    doc.image("labels needed", src)
    doc.paragraph(
        f"Per arm, `{ctx.metric}` of every finished trial is fitted with the saturating learning curve "
        "`a - b * n^(-c)` (n = labelled images, a the asymptote, capped at the all-labels ceiling where one was measured) "
        f"and solved for the target; the interval resamples seeds (= splits) {ctx.n_boot} times (none under 3). Answers "
        "beyond the largest measured budget are EXTRAPOLATED from the fitted curve (interval widened by the advisor's "
        f"measured error), and not given at all past {MAX_EXTRAPOLATION:g}x that budget ('too far') or from a fit at a "
        "parameter bound ('unidentified'); when the fitted asymptote is below the target, more labels alone are not "
        "expected to reach it."
    )
    doc.table(
        ["arm", "labels needed", "95% interval", "where", "a (asymptote)", "b", "c", "fit RMS", "measured budgets", "seeds"],
        [
            [
                r.arm,
                _count_cell(r.n_needed),
                f"{_count_cell(r.low)} to {_count_cell(r.high)}" if not math.isnan(r.low) else NO_CI,
                r.where.upper() if r.where == "extrapolated" else r.where,
                num(r.a),
                num(r.b),
                num(r.c),
                num(r.rms),
                f"{r.min_measured:.0f}-{r.max_measured:.0f}",
                r.n_seeds,
            ]
            for r in fitted.itertuples()
        ],
    )


def _count_cell(n: float) -> str:
    if math.isnan(n):
        return "–"
    return "never" if math.isinf(n) else f"{n:.0f}"


def _intro(doc: Document, ctx: _Context) -> None:
    r = ctx.results
    doc.paragraph(
        f"Results: `{r.source}`; sweeps: {', '.join(r.sweeps)}. Reported metric: {ctx.label} "
        f"(`{ctx.metric}`), foreground only (background excluded). Generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC."
    )
    doc.paragraph(
        f'Selection: everything called "best" (trial, settings, per budget) is chosen on the validation '
        f"metric `{ctx.select}` and reported on `{ctx.metric}`; the test split never chooses anything."
        if ctx.select != ctx.metric
        else f'Selection: "best" is chosen on `{ctx.select}`, the metric reported.'
    )
    counts = r.status_counts()
    running, failed = int(counts["running"].sum()), int(counts["failed"].sum())
    if running or failed:
        doc.paragraph(
            f"Partial results: {running} trial(s) still running and {failed} failed; the analyses "
            f"use the {len(ctx.done)} finished trial(s) with `{ctx.metric}`."
        )
    for note in ctx.notes:  # notes known before the sections (e.g. the metric fallback)
        doc.paragraph(note)


def _budget_curves(ctx: _Context) -> list[pd.DataFrame]:
    """The report metric's label-budget curve per group, and HD95's when the trials have it."""
    curves = [label_budget_curve(ctx.done, ctx.metric, by="group")]
    hd95 = ctx.metric.replace("_dice_", "_hd95_")
    if hd95 != ctx.metric and hd95 in ctx.done.columns and ctx.done[hd95].notna().any():
        curves.append(label_budget_curve(ctx.done, hd95, by="group"))
    return curves


def _budget_section(doc: Document, ctx: _Context) -> None:
    curve = label_budget_curve(ctx.done, ctx.metric, by="group")
    ctx.curve = curve
    if "label_budget" in ctx.plots:
        doc.paragraph("The label-budget curve is the figure at the top; dots are single trials (seeds).")
    paired = _paired_rows(ctx)
    if paired:
        doc.paragraph(
            f"Paired on the labelled split (every arm of a seed trains on the same labelled images): {ctx.label} of the arm "
            "minus supervised, in Dice points. The adjusted interval is the comparison's anytime-valid confidence sequence at the "
            "level Holm's step-down tested it at (the family-wise error over every comparison and look is at most 5%); the raw "
            "95% t-interval of this look alone is secondary."
        )
        doc.table(["arm", "labelled", "splits", "arm", "supervised", "difference", "adjusted interval (level)", "raw 95% t", "ahead", "per split",
                   "verdict", "supervised needs (at the claim's level)"], paired)  # fmt: skip
    else:
        doc.bullets(["No supervised baseline and method measured on a common budget: no paired comparison."])
    budgets = sorted(curve["budget"].unique())
    unit = curve_unit(curve)
    doc.paragraph(f"Mean {ctx.label} ± 95% CI half-width over seeds (number of seeds), per {_unit_words(unit)}:")
    doc.table(["arm", *(fmt_budget(b, unit) for b in budgets)], _curve_rows(curve, budgets))
    per_class = _per_class_table(ctx)
    if per_class is not None:
        doc.paragraph("Per-class mean over seeds:")
        doc.table(*per_class)


def _paired_rows(ctx: _Context) -> list[list[str]]:
    """The answer's evidence, one row per (arm, budget): what every headline number rests on."""
    if ctx.answer is None:
        return []
    rows = []
    for j in ctx.answer.decision.comparisons:
        d, s = j.diff, j.saved
        raw = d.raw_interval
        rows.append([
            f"{d.task}: {d.arm}" if d.task else d.arm, fmt_budget(d.budget, d.unit), str(d.n), num(d.arm_mean), num(d.baseline_mean),
            pts(d.mean), interval(j), f"{pts(raw[0])} to {pts(raw[1])}" if not math.isnan(raw[0]) else "–",
            f"{d.ahead} of {d.n}", " / ".join(pts(x) for x in d.per_split), j.verdict,
            f"{s.kind}: {s.low:.1f} to {s.high:.1f}" if s is not None else "–",
        ])  # fmt: skip
    return rows


def _unit_words(unit: str) -> str:
    return "number of labelled images" if unit == "n_labeled" else "labelled share of the training pool"


def _curve_rows(curve: pd.DataFrame, budgets: list[float]) -> list[list[str]]:
    rows = []
    for name, sub in curve.groupby("group", sort=True):
        cells = {r.budget: _mean_ci(r.mean, r.ci_high, r.n_seeds) for r in sub.itertuples()}
        rows.append([str(name), *(cells.get(b, "–") for b in budgets)])
    return rows


def _mean_ci(mean: float, high: float, seeds: int) -> str:
    if seeds < 2 or math.isnan(high):
        return f"{mean:.3f} ({NO_CI})"
    return f"{mean:.3f} ± {high - mean:.3f} ({seeds})"


def _per_class_table(ctx: _Context) -> tuple[list[str], list[list[str]]] | None:
    """Per-class Dice per arm and budget (classes from the metric columns present)."""
    prefix = ctx.metric.removesuffix("fg")
    cols = [c for c in ctx.done.columns if c.startswith(prefix) and c != ctx.metric]
    cols = [c for c in cols if ctx.done[c].notna().any()]
    if not cols:
        return None
    keys = ["group", ctx.budget]
    means = ctx.done.groupby(keys, sort=True)[cols].mean().reset_index()
    header = ["arm", "labelled", *(c.removeprefix(prefix) for c in cols)]
    rows = [[r["group"], fmt_budget(float(r[ctx.budget]), ctx.budget), *(num(r[c]) for c in cols)] for _, r in means.iterrows()]
    return header, rows


def _notes(doc: Document, ctx: _Context) -> None:
    doc.heading("Notes")
    doc.bullets(
        [
            "Only trials with status `completed` or `early_stopped` are analysed; `running` and `failed` trials are counted above.",
            f"Confidence intervals: Student-t 95% over seeds (or over pairs for ablations); a cell with one seed says '{NO_CI}'.",
            f"Selection: 'best' trials, settings and Pareto fronts are chosen on `{ctx.select}` and reported with `{ctx.metric}`; "
            "where a sweep repeats each configuration over seeds, its best is the configuration with the best seed-mean.",
            f"Budgets are given as the {_unit_words(ctx.budget)}. Arms are compared paired on the labelled split (a seed is a "
            "split, shared by every arm of that seed): the difference per split, its mean and Student-t interval over splits. "
            "Labels saved: per split, the budget at which that split's supervised curve (linear in log budget between its "
            "measured budgets, never extrapolated) reaches that split's score of the method; the interval is a t-interval of "
            "the log ratio over splits.",
            "Ablations pair each variant with full HDC on the same seed and split (`seed`, "
            "`split_hash`); the difference is variant minus HDC.",
            f"Distances (HD95, ASD) are in {ctx.unit or 'the units the sweep recorded'}.",
            *ctx.notes,
        ]
    )


def _terminal_summary(ctx: _Context, md: Path, page: Path) -> str:
    counts = ctx.results.status_counts()
    lines = [
        f"hdc-ray report: sweeps {', '.join(ctx.results.sweeps)}: "
        f"{int(counts['completed'].sum() + counts['early_stopped'].sum())} finished, "
        f"{int(counts['failed'].sum())} failed, {int(counts['running'].sum())} running"
    ]
    lines += [f"  {line.replace('**', '')}" for line in ctx.answer_lines]
    if ctx.curve is not None:
        lines += _budget_grid(ctx)
    lines += [f"  note: {key} skipped: {why}" for key, why in ctx.skipped.items()]
    lines.append(f"report: {md} (html: {page.name}, {len(ctx.plots)} plots)")
    return "\n".join(lines)


def _budget_grid(ctx: _Context) -> list[str]:
    """Mean metric per arm and label budget with its 95% CI half-width over splits, as a fixed-width text table."""
    assert ctx.curve is not None
    unit = curve_unit(ctx.curve)
    budgets = sorted(ctx.curve["budget"].unique())
    width = max(10, *(len(str(g)) for g in ctx.curve["group"])) + 2
    lines = [
        f"{ctx.metric}: mean over splits ± 95% CI half-width (splits) per label budget:",
        "  " + "arm".ljust(width) + "".join(fmt_budget(b, unit).rjust(19) for b in budgets),
    ]
    for name, sub in ctx.curve.groupby("group", sort=True):
        cells = {r.budget: _mean_ci(r.mean, r.ci_high, r.n_seeds).replace(f" ({NO_CI})", " (1)") for r in sub.itertuples()}
        lines.append("  " + str(name).ljust(width) + "".join(cells.get(b, "–").rjust(19) for b in budgets))
    return lines


