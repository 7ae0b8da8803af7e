"""The report's sections past the Answer: the sweeps and their best trials, ablations, the Pareto front, parameter
importance and learning curves. Each takes the report's ``_Context`` (``analysis/report.py``) and a ``Document``;
"best" is always chosen on validation and reported on test."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from hdc_ray.analysis import plots
from hdc_ray.analysis.ablation import ablation_table
from hdc_ray.analysis.budget import fmt_budget, fmt_pct
from hdc_ray.analysis.curves import learning_curves
from hdc_ray.analysis.document import Document
from hdc_ray.analysis.importance import parameter_importance
from hdc_ray.analysis.pareto import pareto_front
from hdc_ray.analysis.tables import AnalysisError, metric_columns, metric_direction, varying_config, with_arm

if TYPE_CHECKING:
    from hdc_ray.analysis.report import _Context

REFERENCE = "hdc"  # ablations are paired against this arm
COST = "train_time_s"
HISTORY_METRICS = ("val_dice_fg", "train_loss")


def sweeps_section(doc: Document, ctx: _Context) -> None:
    doc.heading("Sweeps")
    counts = ctx.results.status_counts()
    rows, bests = [], []
    for sweep in ctx.results.sweeps:
        trials = ctx.results.trials[ctx.results.trials["sweep"] == sweep]
        done = ctx.done[ctx.done["sweep"] == sweep]
        c = counts.loc[sweep]
        best = best_of(done, ctx.select)
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
                num(best[ctx.select]) if best is not None else "–",
                num(best[ctx.metric]) if best is not None else "–",
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


def best_of(done: pd.DataFrame, select: str) -> pd.Series | None:
    """The trial with the best ``select`` (the validation metric): report its test score, never pick by it.
    Where the sweep repeats configurations over seeds, the best configuration by its seed-mean (``per_configuration``)."""
    if done.empty or done[select].isna().all():
        return None
    table = per_configuration(done, select)
    return table.loc[table[select].idxmax() if metric_direction(select) == "max" else table[select].idxmin()]


def per_configuration(done: pd.DataFrame, select: str) -> pd.DataFrame:
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
        row["per_seed"] = " / ".join(num(float(v)) for v in trials[select])
        rows.append(row)
    return pd.DataFrame(rows)


def _best_line(sweep: str, best: pd.Series, done: pd.DataFrame, ctx: _Context) -> str:
    """The best trial of a sweep with its swept settings, flagged where they differ from the usual."""
    settings = []
    for col in varying_config(done):
        text = f"`{col.removeprefix('cfg.')}={num(best[col])}`"
        usual = done[col].mode(dropna=False)
        if len(usual) == 1 and not same(best[col], usual.iloc[0]):
            text += f" (usual {num(usual.iloc[0])})"
        settings.append(text)
    if best.get("n_seeds", 1) > 1:
        head = (
            f"{sweep}: best configuration by mean {ctx.select} over {best['n_seeds']} seeds (trials {best['trial_ids']}; "
            f"{best['arm']}, {_budget_of(best, ctx)} labelled): {ctx.select} {num(best[ctx.select])} "
            f"({best['per_seed']}), {ctx.metric} {num(best[ctx.metric])}"
        )
    else:
        head = (
            f"{sweep}: best trial by {ctx.select} `{best['trial_id']}` ({best['arm']}, {_budget_of(best, ctx)} "
            f"labelled, seed {best['seed']}): {ctx.select} {num(best[ctx.select])}, {ctx.metric} {num(best[ctx.metric])}"
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


def ablation_section(doc: Document, ctx: _Context) -> None:
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
                num(r["mean"]),
                r["n_pairs"],
                num(r["diff"], signed=True),
                f"{num(r['diff_ci_low'], signed=True)} to {num(r['diff_ci_high'], signed=True)}",
                num(r["p_value"]),
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
        f"{r['variant']} @{ratio}: {ctx.metric} {num(r['diff'], signed=True)} vs {REFERENCE} (95% CI "
        f"{num(r['diff_ci_low'], signed=True)} to {num(r['diff_ci_high'], signed=True)}, {r['n_pairs']} pairs): "
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


def pareto_section(doc: Document, ctx: _Context) -> None:
    costs = _pareto_costs(ctx)
    sel = ctx.select  # the front is chosen on validation, like every "best"; test is reported
    objectives = {sel: metric_direction(sel), **dict.fromkeys(costs, "min")}
    per_config = per_configuration(ctx.done, sel)
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
            [r["sweep"], _best_id(r), r["group"], _budget_of(r, ctx), num(r[sel]), *(num(r[c]) for c in extra),
             *(f"{r[c]:.0f}" for c in costs if c != ctx.budget), *(num(r[c]) for c in shown)]
            for _, r in front.head(15).iterrows()
        ],
    )  # fmt: skip


def importance_section(doc: Document, ctx: _Context) -> None:
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


def curves_section(doc: Document, ctx: _Context) -> None:
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


def num(value: object, *, signed: bool = False) -> str:
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


def same(a: object, b: object) -> bool:
    if pd.isna(a) and pd.isna(b):  # type: ignore[arg-type]
        return True
    return bool(a == b)
