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
from hdc_ray.analysis.ablation import ablation_table
from hdc_ray.analysis.budget import (
    budget_column,
    curve_unit,
    fmt_budget,
    fmt_pct,
    label_budget_curve,
)
from hdc_ray.analysis.curves import learning_curves
from hdc_ray.analysis.document import Document
from hdc_ray.analysis.evidence.advisor import MAX_EXTRAPOLATION, Advice, advise
from hdc_ray.analysis.evidence.decision import decide
from hdc_ray.analysis.importance import parameter_importance
from hdc_ray.analysis.load import Results, read_results
from hdc_ray.analysis.pareto import pareto_front
from hdc_ray.analysis.render import Answer, SweepHint, render_answer
from hdc_ray.analysis.render.answer import advice_lines, interval, pts
from hdc_ray.analysis.tables import (
    AnalysisError,
    distance_unit,
    finished_trials,
    metric_columns,
    metric_direction,
    metric_label,
    normalise_ratio,
    require_metric,
    varying_config,
    with_arm,
)
from hdc_ray.outputs import check_writable, staged_folder

METRIC_CHOICES = ("test_dice_fg", "val_dice_fg")  # first one finished trials carry is reported
BASELINE = "supervised"  # labels saved are measured against this arm
REFERENCE = "hdc"  # ablations are paired against this arm
COST = "train_time_s"
HISTORY_METRICS = ("val_dice_fg", "train_loss")
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
    _sweeps_section(doc, ctx)
    for key, title, section in (
        ("label_budget", "1. What label budget buys what accuracy", _budget_section),
        ("labels_needed", "Budget advisor: labels needed to reach a target", _advisor_section),
        ("ablation", "2. Which loss terms and noise levels matter", _ablation_section),
        ("pareto", "3. Which settings are Pareto-optimal", _pareto_section),
        ("importance", "Parameter importance", _importance_section),
        ("learning_curves", "Learning curves", _curves_section),
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
                _num(r.a),
                _num(r.b),
                _num(r.c),
                _num(r.rms),
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


def _sweeps_section(doc: Document, ctx: _Context) -> None:
    doc.heading("Sweeps")
    counts = ctx.results.status_counts()
    rows, bests = [], []
    for sweep in ctx.results.sweeps:
        trials = ctx.results.trials[ctx.results.trials["sweep"] == sweep]
        done = ctx.done[ctx.done["sweep"] == sweep]
        c = counts.loc[sweep]
        best = _best(done, ctx.select)
        rows.append(
            [
                sweep,
                ", ".join(sorted(trials["task"].dropna().unique())) if "task" in trials else "",
                ", ".join(sorted(trials["method"].dropna().unique())),
                c["completed"],
                c["early_stopped"],
                c["failed"],
                c["running"],
                _best_id(best),
                _num(best[ctx.select]) if best is not None else "–",
                _num(best[ctx.metric]) if best is not None else "–",
            ]
        )
        if best is not None:
            bests.append(_best_line(sweep, best, done, ctx))
    header = ["sweep", "task", "methods", "completed", "early stopped", "failed", "running", f"best trial (by `{ctx.select}`)"]
    doc.table([*header, f"its `{ctx.select}`", f"its `{ctx.metric}`"], rows)
    doc.bullets(bests)
    doc.bullets(_failures(ctx.results.trials))
    for sweep, log in ctx.results.rounds.items():
        rule = log.get("rule", {})
        how = f"+{rule.get('round_seeds')} splits a round, at least {rule.get('min_seeds')}, at most {rule.get('max_seeds')}, width {rule.get('width')}"
        doc.paragraph(f"{sweep}: a study run in rounds until decided ({how}); " + (
            f"stopped: {log['stopped']['reason']}." if log.get("stopped") else "not stopped yet (still running, or interrupted: `--resume` continues it).") + log.get("error", ""))  # fmt: skip
        doc.table(["round", "splits (seeds)", "status", "finished", "decided", "still open"],
                  [[r["round"], ", ".join(map(str, r["seeds"])), r["status"], r.get("finished_at", "–"), r.get("decided", "–"),
                    ", ".join(r.get("open", [])) or "–"] for r in log.get("rounds", [])])  # fmt: skip


def _best(done: pd.DataFrame, select: str) -> pd.Series | None:
    """The trial with the best ``select`` (the validation metric): report its test score, never pick by it.
    Where the sweep repeats configurations over seeds, the best configuration by its seed-mean (``_per_configuration``)."""
    if done.empty or done[select].isna().all():
        return None
    table = _per_configuration(done, select)
    return table.loc[table[select].idxmax() if metric_direction(select) == "max" else table[select].idxmin()]


def _per_configuration(done: pd.DataFrame, select: str) -> pd.DataFrame:
    """One row per configuration where the sweep ran each on several seeds (splits), else the trials as they are.

    At a few labels the split moves Dice more than most settings, so ranking single trials ranks splits. A
    configuration's row is its first seed's, with the seed-mean of every metric and of the cost, ``n_seeds``,
    ``trial_ids`` and ``per_seed`` (its ``select`` values)."""
    settings = varying_config(done)
    config = done[settings].astype(object).map(str).agg("|".join, axis=1) if settings else None  # NaN too
    if config is None or config.value_counts().max() < 2:
        return done.assign(n_seeds=1)
    rows = []
    for _, trials in done.groupby(config, sort=False):
        trials = trials.sort_values("seed")
        row = trials.iloc[0].copy()
        means = [c for c in (*metric_columns(trials), COST) if c in trials.columns]
        row[means] = trials[means].apply(pd.to_numeric, errors="coerce").mean()
        row["n_seeds"], row["trial_ids"] = len(trials), ", ".join(map(str, trials["trial_id"]))
        row["per_seed"] = " / ".join(_num(float(v)) for v in trials[select])
        rows.append(row)
    return pd.DataFrame(rows)


def _best_line(sweep: str, best: pd.Series, done: pd.DataFrame, ctx: _Context) -> str:
    """The best trial of a sweep with its swept settings, flagged where they differ from the usual."""
    settings = []
    for col in varying_config(done):
        text = f"`{col.removeprefix('cfg.')}={_num(best[col])}`"
        usual = done[col].mode(dropna=False)
        if len(usual) == 1 and not _same(best[col], usual.iloc[0]):
            text += f" (usual {_num(usual.iloc[0])})"
        settings.append(text)
    if best.get("n_seeds", 1) > 1:
        head = (
            f"{sweep}: best configuration by mean {ctx.select} over {best['n_seeds']} seeds (trials {best['trial_ids']}; "
            f"{best['arm']}, {_budget_of(best, ctx)} labelled): {ctx.select} {_num(best[ctx.select])} "
            f"({best['per_seed']}), {ctx.metric} {_num(best[ctx.metric])}"
        )
    else:
        head = (
            f"{sweep}: best trial by {ctx.select} `{best['trial_id']}` ({best['arm']}, {_budget_of(best, ctx)} "
            f"labelled, seed {best['seed']}): {ctx.select} {_num(best[ctx.select])}, {ctx.metric} {_num(best[ctx.metric])}"
        )
    return head + ("; swept settings: " + ", ".join(settings) if settings else "")


def _best_id(best: pd.Series | None) -> str:
    if best is None:
        return "–"
    return f"{best['trial_id']} (+{best['n_seeds'] - 1} seeds, mean)" if best.get("n_seeds", 1) > 1 else str(best["trial_id"])


def _budget_of(row: pd.Series, ctx: _Context) -> str:
    return fmt_budget(float(row[ctx.budget]), ctx.budget)


def _failures(trials: pd.DataFrame) -> list[str]:
    failed = trials[trials["status"] == "failed"]
    lines = [f"failed: {r.sweep}/{r.trial_id}: {getattr(r, 'error', None) or 'no error recorded'}" for r in failed.head(5).itertuples()]
    if len(failed) > 5:
        lines.append(f"... and {len(failed) - 5} more failed trials")
    return lines


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
            f"{d.task}: {d.arm}" if d.task else d.arm, fmt_budget(d.budget, d.unit), str(d.n), _num(d.arm_mean), _num(d.baseline_mean),
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
    rows = [[r["group"], fmt_budget(float(r[ctx.budget]), ctx.budget), *(_num(r[c]) for c in cols)] for _, r in means.iterrows()]
    return header, rows


def _ablation_section(doc: Document, ctx: _Context) -> None:
    table = ablation_table(ctx.done.drop(columns="group"), ctx.metric, reference=REFERENCE)
    ablated = table[table["kind"] == "ablation"]
    if ablated.empty:
        raise AnalysisError(
            "no ablation variants (HDC with a term removed or a noise level changed) among the finished trials; run an ablation sweep"
        )
    table = table[table["label_ratio"].isin(ablated["label_ratio"])]
    src = ctx.plot("ablation", lambda p: plots.plot_ablation(table, p))
    doc.image("ablation bars", src)
    doc.bullets([_ablation_sentence(r, ctx) for r in table.to_dict("records") if r["kind"] != "reference"])
    doc.table(
        ["variant", "kind", "label ratio", "n", "mean", "pairs", f"diff vs {REFERENCE}", "95% CI", "p", "effect"],
        [
            [
                r["variant"],
                r["kind"],
                fmt_pct(r["label_ratio"]),
                r["n"],
                _num(r["mean"]),
                r["n_pairs"],
                _num(r["diff"], signed=True),
                f"{_num(r['diff_ci_low'], signed=True)} to {_num(r['diff_ci_high'], signed=True)}",
                _num(r["p_value"]),
                r["effect"],
            ]
            for r in table.to_dict("records")
        ],
    )


def _ablation_sentence(r: dict[str, object], ctx: _Context) -> str:
    """One ablation row in words, with what it means for the method."""
    worse, better = f"worse than {REFERENCE}", f"better than {REFERENCE}"
    meaning = {
        "ablation": {
            worse: "this part matters",
            better: "HDC is better without it",
            "no clear difference": "not shown to matter with these seeds",
        },
        "baseline": {worse: "HDC is better", better: "the baseline is better", "no clear difference": "no clear gap"},
    }[str(r["kind"])].get(str(r["effect"]), "")
    ratio = fmt_pct(float(r["label_ratio"]))  # type: ignore[arg-type]
    return (
        f"{r['variant']} @{ratio}: {ctx.metric} {_num(r['diff'], signed=True)} vs {REFERENCE} (95% CI "
        f"{_num(r['diff_ci_low'], signed=True)} to {_num(r['diff_ci_high'], signed=True)}, {r['n_pairs']} pairs): "
        f"{r['effect']}" + (f"; {meaning}" if meaning else "")
    )


def _pareto_costs(ctx: _Context) -> list[str]:
    """What the front trades the score against: labelled images where the sweep varied the budget (a label-budget
    study's cost), with training time as a second cost only where compute was swept too; else training time."""
    costs = [ctx.budget] if ctx.done[ctx.budget].nunique() > 1 else []
    compute = any(c in ctx.done.columns and ctx.done[c].nunique() > 1 for c in ("cfg.train.epochs", "cfg.train.iters_per_epoch"))
    if (compute or not costs) and COST in ctx.done.columns and ctx.done[COST].notna().any():
        costs.append(COST)
    if not costs:
        raise AnalysisError(f"no finished trial records `{COST}`, the cost objective, and the label budget does not vary")
    return costs


def _pareto_section(doc: Document, ctx: _Context) -> None:
    costs = _pareto_costs(ctx)
    sel = ctx.select  # the front is chosen on validation, like every "best"; test is reported
    objectives = {sel: metric_direction(sel), **dict.fromkeys(costs, "min")}
    per_config = _per_configuration(ctx.done, sel)
    repeated = bool((per_config["n_seeds"] > 1).any())
    table = pareto_front(per_config, objectives, keep_all=True)
    src = ctx.plot(
        "pareto", lambda p: plots.plot_pareto(table, costs[0], sel, objectives, p, group="group", unit=ctx.unit, colours=ctx.colours)
    )
    doc.image("Pareto front", src)
    front = table[table["on_front"]].sort_values(sel, ascending=objectives[sel] == "min")
    what = "configurations (each the mean over its seeds)" if repeated else "finished trials"
    doc.paragraph(
        f"Objectives: {sel} ({objectives[sel]}), " + ", ".join(f"{c} (min)" for c in costs) + f". {len(front)} of "
        f"{len(table)} {what} are Pareto-optimal on them: no other is both better and "
        f"cheaper. Their settings, with the reported {ctx.metric}:"
    )
    shown = [c for c in varying_config(ctx.done) if c not in ("cfg.train.method", "cfg.data.label_ratio")][:6]
    extra = [ctx.metric] if ctx.metric != sel else []
    doc.table(
        ["sweep", "trial", "arm", "labelled", sel, *extra, *[c for c in costs if c != ctx.budget], *(c.removeprefix("cfg.") for c in shown)],
        [
            [r["sweep"], _best_id(r), r["group"], _budget_of(r, ctx), _num(r[sel]), *(_num(r[c]) for c in extra),
             *(f"{r[c]:.0f}" for c in costs if c != ctx.budget), *(_num(r[c]) for c in shown)]
            for _, r in front.head(15).iterrows()
        ],
    )  # fmt: skip


def _importance_section(doc: Document, ctx: _Context) -> None:
    imp = parameter_importance(ctx.done, ctx.metric)
    src = ctx.plot("importance", lambda p: plots.plot_importance(imp, p, metric=ctx.metric))
    doc.image("parameter importance", src)
    top = imp.iloc[0]
    doc.paragraph(
        f"Evaluator: {imp['evaluator'].iloc[0]} on {len(ctx.done)} finished trials. Most important: "
        f"`{top['param']}` ({top['importance']:.0%}). Parameters that vary with the method or label "
        "ratio share their importance with them."
    )
    doc.table(["parameter", "importance"], [[p, f"{v:.1%}"] for p, v in zip(imp["param"], imp["importance"], strict=True)])


def _curves_section(doc: Document, ctx: _Context) -> None:
    trials = with_arm(ctx.results.trials)
    many_tasks = ctx.done["group"].ne(ctx.done["arm"]).any()
    trials = trials.assign(group=trials["task"] + ": " + trials["arm"] if many_tasks else trials["arm"])
    curves, missing = [], []
    for metric in HISTORY_METRICS:
        try:
            curves.append(learning_curves(ctx.results.history, trials, metric, by="group"))
        except AnalysisError as exc:
            missing.append(str(exc))
    if not curves:
        raise AnalysisError("; ".join(missing))
    ctx.notes += [f"Learning curves: {why}." for why in missing]
    src = ctx.plot("learning_curves", lambda p: plots.plot_learning_curves(curves, p, group="group", colours=ctx.colours))
    doc.image("learning curves", src)
    doc.paragraph(
        "Mean over finished trials per epoch with a 95% CI band; trials stopped early "
        "by ASHA leave the later epochs, so late means describe the survivors."
    )


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


def _num(value: object, *, signed: bool = False) -> str:
    """A table cell: floats to 3 decimals (0 above 100, 2 significant digits below 0.001)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if not isinstance(value, float):
        return str(value)
    if abs(value) >= 100:
        spec = ".0f"
    elif value != 0 and abs(value) < 1e-3:
        spec = ".2g"
    else:
        spec = ".3f"
    return format(value, ("+" if signed else "") + spec)


def _same(a: object, b: object) -> bool:
    if pd.isna(a) and pd.isna(b):  # type: ignore[arg-type]
        return True
    return bool(a == b)
