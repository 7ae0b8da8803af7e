"""One PNG per question. ``draw_*`` builds the Figure from the analysis table; ``plot_*`` writes it to ``path``.

Figures are built on :class:`matplotlib.figure.Figure` directly (Agg canvas, no pyplot), so nothing
here touches a global backend or needs a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from hdc_ray.analysis.budget import curve_unit
from hdc_ray.analysis.evidence.advisor import power_law
from hdc_ray.analysis.tables import metric_family, metric_label

DPI = 120
MIN_BAND_SEEDS = 3  # fewer seeds: dots only, no confidence band
_KIND_COLOURS = {"reference": "#4c72b0", "ablation": "#dd8452", "baseline": "#8c8c8c"}
_DIRECTION_WORDS = {"max": "higher is better", "min": "lower is better"}


def arm_colours(names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """A fixed colour per arm, the same in every figure of a report (``hdc`` always first)."""
    from matplotlib import colormaps

    ordered = sorted(set(map(str, names)), key=lambda s: (not s.startswith("hdc"), s))
    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(ordered)}


def draw_label_budget(
    curves: pd.DataFrame | Sequence[pd.DataFrame],
    *,
    group: str = "arm",
    unit: str | None = None,
    colours: Mapping[str, tuple[float, ...]] | None = None,
    points: pd.DataFrame | None = None,
) -> Figure:
    """Metric vs label budget per arm: mean with a 95% CI band, each trial (seed) as a dot.

    One panel per curve table (:func:`label_budget_curve`); ``points`` (the trials, with ``group``,
    the budget column and the metric) adds one dot per trial.
    """
    tables = [curves] if isinstance(curves, pd.DataFrame) else list(curves)
    colours = colours or arm_colours(pd.concat(tables)[group].astype(str))
    fig = _figure(len(tables))
    for ax, curve in zip(fig.axes, tables, strict=True):
        metric = str(curve["metric"].iloc[0])
        budget_unit = curve_unit(curve)
        scale = 100.0 if budget_unit == "label_ratio" else 1.0
        for name, rows in curve.groupby(group, sort=True):
            rows = rows.sort_values(budget_unit)
            x = rows[budget_unit].to_numpy(float) * scale
            seeds = int(rows["n_seeds"].max())
            label = f"{name} (mean of {seeds} seed{'s' if seeds != 1 else ''})"
            ax.plot(x, rows["mean"], marker="o", color=colours[str(name)], label=label, zorder=3)
            # a t-interval from 2 seeds is ~13x the spread (1 degree of freedom): it would hide the dots
            band = (rows[["ci_low", "ci_high"]].notna().all(axis=1) & (rows["n_seeds"] >= MIN_BAND_SEEDS)).to_numpy()
            if band.any():
                ax.fill_between(x[band], rows["ci_low"][band], rows["ci_high"][band], color=colours[str(name)], alpha=0.2, linewidth=0)
        if points is not None and metric in points.columns:
            _trial_dots(ax, points, group, budget_unit, metric, scale, colours)
        _budget_axis(ax, curve[budget_unit].to_numpy(float) * scale, budget_unit)
        ax.set_ylabel(metric_label(metric, unit))
        bound_axis(ax, metric)
        ax.set_title(f"{metric_label(metric)}: mean, 95% CI band ({MIN_BAND_SEEDS}+ seeds), dots = seeds", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_label_budget(curves: pd.DataFrame | Sequence[pd.DataFrame], path: str | Path, **kw: object) -> Path:
    """:func:`draw_label_budget` written to ``path`` (PNG)."""
    return _save(draw_label_budget(curves, **kw), path)  # type: ignore[arg-type]


def draw_labels_needed(
    trials: pd.DataFrame,
    advice: pd.DataFrame,
    *,
    group: str = "arm",
    colours: Mapping[str, tuple[float, ...]] | None = None,
) -> Figure:
    """The advisor's fitted curves: trials as dots, the fit solid where measured and dashed beyond,
    the target as a horizontal line and each arm's answer marked on it."""
    fitted = advice[advice["where"] != "not fitted"]
    metric = str(advice["metric"].iloc[0])
    target = float(advice["target"].iloc[0])
    colours = colours or arm_colours(fitted["arm"].astype(str))
    fig = _figure(1, width=6.5)
    ax = fig.axes[0]
    finite = fitted["n_needed"].replace(np.inf, np.nan).dropna()
    right = max(float(trials["n_labeled"].max()), float(finite.clip(upper=20 * trials["n_labeled"].max()).max()) if len(finite) else 0.0)
    for r in fitted.itertuples():
        colour = colours[str(r.arm)]
        rows = trials[trials[group] == r.arm]
        ax.scatter(rows["n_labeled"], rows[metric], s=14, alpha=0.55, color=colour, zorder=2)
        inside = np.geomspace(r.min_measured, r.max_measured, 100)
        beyond = np.geomspace(r.max_measured, right * 1.3, 50)
        needed = "never" if not np.isfinite(r.n_needed) else f"~{r.n_needed:.0f}"
        fit = f"{r.a:.2f} - {r.b:.2f} n^-{r.c:.2f}"
        ax.plot(inside, power_law(inside, r.a, r.b, r.c), color=colour, label=f"{r.arm}: needs {needed} ({fit})")
        ax.plot(beyond, power_law(beyond, r.a, r.b, r.c), color=colour, linestyle="--")
        if np.isfinite(r.n_needed) and r.n_needed <= right * 1.3:
            ax.plot([r.n_needed], [target], marker="v", markersize=9, color=colour, zorder=4)
    ax.axhline(target, color="black", linewidth=1, linestyle=":", label=f"target {target:.3g}")
    ax.set_xscale("log")
    ticks = np.unique(trials["n_labeled"].to_numpy(float))  # the measured budgets; answers are in the legend
    ax.xaxis.set_major_locator(FixedLocator(ticks[ticks > 0].tolist()))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))
    ax.set_xlabel("labelled images (log scale; dashed = extrapolated)")
    ax.set_ylabel(metric_label(metric))
    bound_axis(ax, metric)
    ax.set_title("Fitted learning curves; ▼ = labelled images needed for the target", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_labels_needed(trials: pd.DataFrame, advice: pd.DataFrame, path: str | Path, **kw: object) -> Path:
    """:func:`draw_labels_needed` written to ``path`` (PNG)."""
    return _save(draw_labels_needed(trials, advice, **kw), path)  # type: ignore[arg-type]


def draw_pareto(
    table: pd.DataFrame,
    x: str,
    y: str,
    directions: Mapping[str, str],
    *,
    group: str = "arm",
    unit: str | None = None,
    colours: Mapping[str, tuple[float, ...]] | None = None,
) -> Figure:
    """Every finished trial in (x, y); the Pareto front (``on_front``) drawn large and joined."""
    colours = colours or arm_colours(table[group].astype(str))
    fig = _figure(1, width=6.5)
    ax = fig.axes[0]
    for name, rows in table.groupby(group, sort=True):
        ax.scatter(rows[x], rows[y], s=22, alpha=0.45, color=colours[str(name)], label=str(name))
    front = table[table["on_front"]].sort_values(x)
    ax.plot(front[x], front[y], color="black", linewidth=1, drawstyle="steps-post", alpha=0.6)
    ax.scatter(front[x], front[y], s=70, facecolors="none", edgecolors="black", linewidths=1.5, label=f"Pareto front ({len(front)})")
    ax.set_xlabel(f"{metric_label(x, unit)} ({_DIRECTION_WORDS[directions[x]]})")
    ax.set_ylabel(f"{metric_label(y, unit)} ({_DIRECTION_WORDS[directions[y]]})")
    bound_axis(ax, x, "x")
    bound_axis(ax, y)
    ax.set_title("Pareto front: trials no other trial beats on both axes", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_pareto(table: pd.DataFrame, x: str, y: str, directions: Mapping[str, str], path: str | Path, **kw: object) -> Path:
    """:func:`draw_pareto` written to ``path`` (PNG)."""
    return _save(draw_pareto(table, x, y, directions, **kw), path)  # type: ignore[arg-type]


def draw_ablation(table: pd.DataFrame) -> Figure:
    """Paired change of the metric vs the reference per variant, with 95% CI error bars."""
    rows = table[table["kind"] != "reference"].iloc[::-1]
    reference = table.loc[table["kind"] == "reference", "variant"]
    ref_name = str(reference.iloc[0]) if len(reference) else "reference"
    metric = str(table["metric"].iloc[0])
    several = rows["label_ratio"].nunique() > 1
    labels = [(f"{r.variant} @{r.label_ratio * 100:.3g}%" if several else str(r.variant)) + f" (n={r.n_pairs})" for r in rows.itertuples()]
    diff = rows["diff"].to_numpy(float)
    err = np.vstack([diff - rows["diff_ci_low"], rows["diff_ci_high"] - diff])
    fig = _figure(1, width=7, height=max(2.5, 0.45 * len(rows) + 1.2))
    ax = fig.axes[0]
    ax.barh(labels, diff, xerr=np.nan_to_num(err), capsize=3, color=[_KIND_COLOURS.get(k, "#8c8c8c") for k in rows["kind"]])
    ax.axvline(0, color="black", linewidth=1)
    ax.set_xlabel(f"change in {metric_label(metric)} vs {ref_name} (absolute; n = seed/split pairs)")
    ax.set_title("Ablations (orange) and baselines (grey): mean difference, 95% CI", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_ablation(table: pd.DataFrame, path: str | Path) -> Path:
    """:func:`draw_ablation` written to ``path`` (PNG)."""
    return _save(draw_ablation(table), path)


def draw_learning_curves(
    curves: Sequence[pd.DataFrame],
    *,
    group: str = "arm",
    colours: Mapping[str, tuple[float, ...]] | None = None,
) -> Figure:
    """Each history metric per epoch, mean per arm with a 95% CI band; one panel per metric."""
    colours = colours or arm_colours(pd.concat(list(curves))[group].astype(str))
    fig = _figure(len(curves))
    for ax, curve in zip(fig.axes, curves, strict=True):
        metric = str(curve["metric"].iloc[0])
        for name, rows in curve.groupby(group, sort=True):
            ax.plot(rows["epoch"], rows["mean"], color=colours[str(name)], label=str(name))
            band = rows[["ci_low", "ci_high"]].notna().all(axis=1)
            if band.any():
                ax.fill_between(
                    rows["epoch"][band], rows["ci_low"][band], rows["ci_high"][band], color=colours[str(name)], alpha=0.2, linewidth=0
                )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric_label(metric) + (" (total, unitless)" if metric == "train_loss" else ""))
        bound_axis(ax, metric)
        ax.set_title(f"{metric_label(metric)} per epoch (mean over trials)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_learning_curves(curves: Sequence[pd.DataFrame], path: str | Path, **kw: object) -> Path:
    """:func:`draw_learning_curves` written to ``path`` (PNG)."""
    return _save(draw_learning_curves(curves, **kw), path)  # type: ignore[arg-type]


def draw_importance(table: pd.DataFrame, *, metric: str = "") -> Figure:
    """Parameter importance as horizontal bars, most important on top."""
    rows = table.iloc[::-1]
    fig = _figure(1, width=6.5, height=max(2.5, 0.4 * len(rows) + 1.2))
    ax = fig.axes[0]
    ax.barh([str(p).removeprefix("cfg.") for p in rows["param"]], rows["importance"], color="#4c72b0")
    ax.set_xlabel("importance (share, sums to 1)")
    evaluator = str(table["evaluator"].iloc[0]) if len(table) else ""
    ax.set_title(f"Parameter importance for {metric_label(metric)} ({evaluator})", fontsize=10)
    ax.set_xlim(0, 1)
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_importance(table: pd.DataFrame, path: str | Path, *, metric: str = "") -> Path:
    """:func:`draw_importance` written to ``path`` (PNG)."""
    return _save(draw_importance(table, metric=metric), path)


def _figure(panels: int, *, width: float = 6.0, height: float = 4.2) -> Figure:
    fig = Figure(figsize=(width * max(panels, 1), height), layout="constrained")
    FigureCanvasAgg(fig)
    fig.subplots(1, max(panels, 1), squeeze=False)
    return fig


def bound_axis(ax: Axes, metric: str, which: str = "y") -> None:
    """Keep a quantity inside its range: Dice/Jaccard in [0, 1], distances and times from 0."""
    family = metric_family(metric)
    set_lim = ax.set_ylim if which == "y" else ax.set_xlim
    if family in ("dice", "jaccard"):
        set_lim(0, 1)
    elif family in ("hd95", "asd") or metric.endswith("_time_s"):
        set_lim(0, None)


def _trial_dots(
    ax: Axes, points: pd.DataFrame, group: str, budget_unit: str, metric: str, scale: float, colours: Mapping[str, tuple[float, ...]]
) -> None:
    """One dot per trial, nudged sideways per arm (multiplicatively: the axis may be log) so arms stay apart."""
    present = set(points[group].astype(str))
    names = [n for n in colours if n in present]
    for i, name in enumerate(names):
        rows = points[points[group].astype(str) == name]
        nudge = 1 + 0.025 * (i - (len(names) - 1) / 2)
        ax.scatter(rows[budget_unit].to_numpy(float) * scale * nudge, rows[metric], s=10, alpha=0.5, color=colours[name], zorder=2)


def _budget_axis(ax: Axes, measured: np.ndarray, budget_unit: str) -> None:
    """Labelled images (or % of the pool), log-scaled when they span a decade, ticks at the measured budgets."""
    ticks = np.unique(measured[np.isfinite(measured)])
    if len(ticks) and ticks.min() > 0 and ticks.max() / ticks.min() >= 8:
        ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks.tolist()))
    ax.xaxis.set_minor_locator(NullLocator())
    if budget_unit == "n_labeled":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))
        ax.set_xlabel("labelled images")
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}%"))
        ax.set_xlabel("labelled share of the training pool (%)")


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path
