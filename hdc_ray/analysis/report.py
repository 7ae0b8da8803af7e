"""``hdc-ray report``: the three answers (label budget, loss terms, Pareto settings) as a report.

Writes ``OUT/report.md`` and ``OUT/report.html`` linking PNG figures in ``OUT``, and prints a short
summary. Works on partial results (running trials are counted, not used) and on mixed sweeps::

    hdc-ray report results/                      # every sweep under results/, into results/report
    hdc-ray report results/ --sweep budget --out /tmp/budget-report
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from hdc_ray.analysis import plots
from hdc_ray.analysis.ablation import ablation_table
from hdc_ray.analysis.budget import LabelsSaved, fmt_pct, label_budget_curve, labels_saved
from hdc_ray.analysis.curves import learning_curves
from hdc_ray.analysis.document import Document
from hdc_ray.analysis.importance import parameter_importance
from hdc_ray.analysis.load import Results, read_results
from hdc_ray.analysis.pareto import pareto_front
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

METRIC_CHOICES = ("test_dice_fg", "val_dice_fg")  # first one finished trials carry is reported
BASELINE = "supervised"  # labels saved are measured against this arm
REFERENCE = "hdc"  # ablations are paired against this arm
COST = "train_time_s"
HISTORY_METRICS = ("val_dice_fg", "train_loss")
NO_CI = "1 seed — no CI"
PLOT_FILES = {
    "label_budget": "label_budget.png",
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


def report_results(results: str, *, sweeps: list[str] | None = None, out: str | Path | None = None) -> Report:
    """Read the sweeps under ``results`` (a folder or URI) and write their report (default ``RESULTS/report``).

    Bad input (missing folder, no finished trials, missing metric, mixed schema versions) raises
    ``AnalysisError`` with a message written for the user.
    """
    loaded = read_results(results, sweeps or None)
    return build_report(loaded, Path(out) if out else default_report_dir(results))


def default_report_dir(results: str) -> Path:
    """RESULTS/report for a local folder; ./report for an object-store URI (written locally)."""
    return Path("report") if "://" in results and not results.startswith("file://") else Path(results.removeprefix("file://")) / "report"


def build_report(results: Results, out_dir: str | Path, *, metric: str | None = None) -> Report:
    """Analyse ``results`` and write ``report.md``, ``report.html`` and the PNGs into ``out_dir``."""
    ctx = _Context.create(results, Path(out_dir), metric)
    doc = Document("hdc-ray sweep report")
    _intro(doc, ctx)
    _sweeps_section(doc, ctx)
    for key, title, section in (
        ("label_budget", "1. What label budget buys what accuracy", _budget_section),
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
    done: pd.DataFrame  # finished trials with the metric, with ``arm`` and ``group`` columns
    unit: str | None
    colours: dict[str, tuple[float, ...]]
    notes: list[str] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    curve: pd.DataFrame | None = None
    saved_lines: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, results: Results, out: Path, metric: str | None) -> _Context:
        notes: list[str] = []
        metric = metric or _pick_metric(results.trials, notes)
        done = with_arm(require_metric(results.trials, metric))
        done["label_ratio"] = normalise_ratio(done["label_ratio"])
        many_tasks = "task" in done.columns and done["task"].nunique() > 1
        done["group"] = (done["task"] + ": " + done["arm"]) if many_tasks else done["arm"]
        out.mkdir(parents=True, exist_ok=True)
        colours = plots.arm_colours(done["group"].astype(str))
        return cls(results, out, metric, done, distance_unit(done), colours, notes)

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


def _guarded(doc: Document, ctx: _Context, key: str, section: Callable[[Document, _Context], None]) -> None:
    """Run a section; an unanswerable question becomes a sentence in the report, not a crash."""
    try:
        section(doc, ctx)
    except AnalysisError as exc:
        ctx.skipped[key] = str(exc)
        doc.paragraph(f"Not available: {exc}.")


def _intro(doc: Document, ctx: _Context) -> None:
    r = ctx.results
    doc.paragraph(
        f"Results: `{r.source}`; sweeps: {', '.join(r.sweeps)}. Reported metric: {ctx.label} "
        f"(`{ctx.metric}`), foreground only (background excluded). Generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC."
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
    sense = metric_direction(ctx.metric)
    rows, bests = [], []
    for sweep in ctx.results.sweeps:
        trials = ctx.results.trials[ctx.results.trials["sweep"] == sweep]
        done = ctx.done[ctx.done["sweep"] == sweep]
        c = counts.loc[sweep]
        best = _best(done, ctx.metric, sense)
        rows.append(
            [
                sweep,
                ", ".join(sorted(trials["task"].dropna().unique())) if "task" in trials else "",
                ", ".join(sorted(trials["method"].dropna().unique())),
                c["completed"],
                c["early_stopped"],
                c["failed"],
                c["running"],
                _num(best[ctx.metric]) if best is not None else "–",
                best["trial_id"] if best is not None else "–",
            ]
        )
        if best is not None:
            bests.append(_best_line(sweep, best, done, ctx))
    doc.table(["sweep", "task", "methods", "completed", "early stopped", "failed", "running", f"best `{ctx.metric}`", "best trial"], rows)
    doc.bullets(bests)
    doc.bullets(_failures(ctx.results.trials))


def _best(done: pd.DataFrame, metric: str, sense: str) -> pd.Series | None:
    if done.empty:
        return None
    idx = done[metric].idxmax() if sense == "max" else done[metric].idxmin()
    return done.loc[idx]


def _best_line(sweep: str, best: pd.Series, done: pd.DataFrame, ctx: _Context) -> str:
    """The best trial of a sweep with its swept settings, flagged where they differ from the usual."""
    settings = []
    for col in varying_config(done):
        text = f"`{col.removeprefix('cfg.')}={_num(best[col])}`"
        usual = done[col].mode(dropna=False)
        if len(usual) == 1 and not _same(best[col], usual.iloc[0]):
            text += f" (usual {_num(usual.iloc[0])})"
        settings.append(text)
    head = (
        f"{sweep}: best trial `{best['trial_id']}` ({best['arm']}, {fmt_pct(best['label_ratio'])} "
        f"labels, seed {best['seed']}): {ctx.metric} {_num(best[ctx.metric])}"
    )
    return head + ("; swept settings: " + ", ".join(settings) if settings else "")


def _failures(trials: pd.DataFrame) -> list[str]:
    failed = trials[trials["status"] == "failed"]
    lines = [f"failed: {r.sweep}/{r.trial_id}: {getattr(r, 'error', None) or 'no error recorded'}" for r in failed.head(5).itertuples()]
    if len(failed) > 5:
        lines.append(f"... and {len(failed) - 5} more failed trials")
    return lines


def _budget_section(doc: Document, ctx: _Context) -> None:
    curves = [label_budget_curve(ctx.done, ctx.metric, by="group")]
    hd95 = ctx.metric.replace("_dice_", "_hd95_")
    if hd95 != ctx.metric and hd95 in ctx.done.columns and ctx.done[hd95].notna().any():
        curves.append(label_budget_curve(ctx.done, hd95, by="group"))
    ctx.curve = curves[0]
    src = ctx.plot("label_budget", lambda p: plots.plot_label_budget(curves, p, group="group", unit=ctx.unit, colours=ctx.colours))
    doc.image("label-budget curve", src)
    ctx.saved_lines = _labels_saved_lines(ctx)
    doc.bullets(ctx.saved_lines or ["No supervised baseline and method measured on a common budget range: labels saved not computed."])
    ratios = sorted(curves[0]["label_ratio"].unique())
    doc.paragraph(f"Mean {ctx.label} ± 95% CI half-width over seeds (number of seeds):")
    doc.table(["arm", *map(fmt_pct, ratios)], _curve_rows(curves[0], ratios))
    per_class = _per_class_table(ctx)
    if per_class is not None:
        doc.paragraph("Per-class mean over seeds:")
        doc.table(*per_class)


def _labels_saved_lines(ctx: _Context) -> list[str]:
    """Headline answers: each method vs the supervised baseline, per task."""
    lines = []
    for task, done in _by_task(ctx.done):
        curve = label_budget_curve(done, ctx.metric)
        arms = set(curve["arm"])
        if BASELINE not in arms:
            continue
        prefix = f"{task}: " if task else ""
        base_ratios = sorted(curve.loc[curve["arm"] == BASELINE, "label_ratio"])
        methods = sorted(a for a in arms - {BASELINE} if a in set(done["method"]))
        for m in methods:
            top = labels_saved(curve, BASELINE, base_ratios[-1], m)
            lines.append(prefix + top.sentence() + ".")
            low = min(curve.loc[curve["arm"] == m, "label_ratio"])
            back = labels_saved(curve, m, low, BASELINE)
            lines.append(prefix + _reverse_sentence(back) + ".")
    return lines


def _reverse_sentence(r: LabelsSaved) -> str:
    """``supervised needs 27.5% labels to match hdc@10% (...): hdc uses 64% fewer labels``."""
    head = f"{r.reference}@{fmt_pct(r.reference_ratio)} ({metric_label(r.metric)} {_num(r.target)})"
    if not r.reached:
        return f"{r.method} never matches {head}: {r.note}"
    share = 1 - r.reference_ratio / r.ratio
    verdict = f"{r.reference} uses {share:.0%} fewer labels" if share >= 0 else f"{r.reference} needs more labels"
    return f"{r.method} needs {fmt_pct(r.ratio)} labels to match {head}: {verdict}"


def _by_task(done: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    if "task" not in done.columns or done["task"].nunique() <= 1:
        return [("", done)]
    return [(str(t), d) for t, d in done.groupby("task", sort=True)]


def _curve_rows(curve: pd.DataFrame, ratios: list[float]) -> list[list[str]]:
    rows = []
    for name, sub in curve.groupby("group", sort=True):
        cells = {r.label_ratio: _mean_ci(r.mean, r.ci_high, r.n_seeds) for r in sub.itertuples()}
        rows.append([str(name), *(cells.get(r, "–") for r in ratios)])
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
    keys = ["group", "label_ratio"]
    means = ctx.done.groupby(keys, sort=True)[cols].mean().reset_index()
    header = ["arm", "label ratio", *(c.removeprefix(prefix) for c in cols)]
    rows = [[r["group"], fmt_pct(r["label_ratio"]), *(_num(r[c]) for c in cols)] for _, r in means.iterrows()]
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


def _pareto_section(doc: Document, ctx: _Context) -> None:
    other = COST if COST in ctx.done.columns and ctx.done[COST].notna().any() else None
    if other is None:
        raise AnalysisError(f"no finished trial records `{COST}`, the cost objective")
    objectives = {ctx.metric: metric_direction(ctx.metric), other: "min"}
    table = pareto_front(ctx.done, objectives, keep_all=True)
    src = ctx.plot(
        "pareto", lambda p: plots.plot_pareto(table, other, ctx.metric, objectives, p, group="group", unit=ctx.unit, colours=ctx.colours)
    )
    doc.image("Pareto front", src)
    front = table[table["on_front"]].sort_values(ctx.metric, ascending=objectives[ctx.metric] == "min")
    doc.paragraph(
        f"Objectives: {ctx.metric} ({objectives[ctx.metric]}), {other} (min). {len(front)} of "
        f"{len(table)} finished trials are Pareto-optimal: no other trial is both better and "
        "cheaper. Their settings:"
    )
    shown = [c for c in varying_config(ctx.done) if c not in ("cfg.train.method", "cfg.data.label_ratio")][:6]
    doc.table(
        ["sweep", "trial", "arm", "label ratio", ctx.metric, other, *(c.removeprefix("cfg.") for c in shown)],
        [
            [
                r["sweep"],
                r["trial_id"],
                r["group"],
                fmt_pct(r["label_ratio"]),
                _num(r[ctx.metric]),
                f"{r[other]:.0f}",
                *(_num(r[c]) for c in shown),
            ]
            for _, r in front.head(15).iterrows()
        ],
    )


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
            "Labels saved: the smallest label ratio at which a method's mean curve (linear between "
            "measured budgets, never extrapolated) reaches the baseline's mean score at a reference "
            "budget; saved = 1 - that ratio / the reference ratio.",
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
    if ctx.curve is not None:
        lines += _budget_grid(ctx)
    lines += [f"  {line}" for line in ctx.saved_lines[:4]]
    lines += [f"  note: {key} skipped: {why}" for key, why in ctx.skipped.items()]
    lines.append(f"report: {md} (html: {page.name}, {len(ctx.plots)} plots)")
    return "\n".join(lines)


def _budget_grid(ctx: _Context) -> list[str]:
    """Mean (best) metric per arm and label budget, as a fixed-width text table."""
    ratios = sorted(ctx.curve["label_ratio"].unique())  # type: ignore[index]
    best = ctx.done.groupby(["group", "label_ratio"])[ctx.metric]
    best = best.max() if metric_direction(ctx.metric) == "max" else best.min()
    width = max(10, *(len(str(g)) for g in ctx.curve["group"])) + 2  # type: ignore[index]
    lines = [
        f"{ctx.metric}: mean over seeds (best trial) per label budget:",
        "  " + "arm".ljust(width) + "".join(fmt_pct(r).rjust(15) for r in ratios),
    ]
    for name, sub in ctx.curve.groupby("group", sort=True):  # type: ignore[union-attr]
        cells = {r.label_ratio: f"{r.mean:.3f} ({best[(name, r.label_ratio)]:.3f})" for r in sub.itertuples()}
        lines.append("  " + str(name).ljust(width) + "".join(cells.get(r, "–").rjust(15) for r in ratios))
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
