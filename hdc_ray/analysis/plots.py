"""One PNG per question. Each function takes the analysis table, writes ``path`` and returns it.

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

from hdc_ray.analysis.tables import metric_label

DPI = 120
_KIND_COLOURS = {"reference": "#4c72b0", "ablation": "#dd8452", "baseline": "#8c8c8c"}
_DIRECTION_WORDS = {"max": "higher is better", "min": "lower is better"}


def arm_colours(names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """A fixed colour per arm, the same in every figure of a report (``hdc`` always first)."""
    from matplotlib import colormaps

    ordered = sorted(set(map(str, names)), key=lambda s: (not s.startswith("hdc"), s))
    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(ordered)}


def plot_label_budget(
    curves: pd.DataFrame | Sequence[pd.DataFrame],
    path: str | Path,
    *,
    group: str = "arm",
    unit: str | None = None,
    colours: Mapping[str, tuple[float, ...]] | None = None,
) -> Path:
    """Metric vs label ratio per arm, mean with a 95% CI band; one panel per curve table."""
    tables = [curves] if isinstance(curves, pd.DataFrame) else list(curves)
    colours = colours or arm_colours(pd.concat(tables)[group].astype(str))
    fig = _figure(len(tables))
    for ax, curve in zip(fig.axes, tables, strict=True):
        metric = str(curve["metric"].iloc[0])
        for name, rows in curve.groupby(group, sort=True):
            rows = rows.sort_values("label_ratio")
            x = rows["label_ratio"].to_numpy(float) * 100
            seeds = int(rows["n_seeds"].max())
            label = f"{name} ({seeds} seed{'s' if seeds != 1 else ''})"
            ax.plot(x, rows["mean"], marker="o", color=colours[str(name)], label=label)
            band = rows[["ci_low", "ci_high"]].notna().all(axis=1).to_numpy()
            if band.any():
                ax.fill_between(x[band], rows["ci_low"][band], rows["ci_high"][band], color=colours[str(name)], alpha=0.2, linewidth=0)
        _percent_axis(ax, curve["label_ratio"].to_numpy(float) * 100)
        ax.set_xlabel("labelled share of the training pool")
        ax.set_ylabel(metric_label(metric, unit))
        ax.set_title(f"Label budget: {metric_label(metric)} (mean, 95% CI over seeds)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_pareto(
    table: pd.DataFrame,
    x: str,
    y: str,
    directions: Mapping[str, str],
    path: str | Path,
    *,
    group: str = "arm",
    unit: str | None = None,
    colours: Mapping[str, tuple[float, ...]] | None = None,
) -> Path:
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
    ax.set_title("Pareto front: trials no other trial beats on both axes", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_ablation(table: pd.DataFrame, path: str | Path) -> Path:
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
    ax.set_xlabel(f"change in {metric_label(metric)} vs {ref_name} (n = seed/split pairs)")
    ax.set_title("Ablations (orange) and baselines (grey): mean difference, 95% CI", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_learning_curves(
    curves: Sequence[pd.DataFrame],
    path: str | Path,
    *,
    group: str = "arm",
    colours: Mapping[str, tuple[float, ...]] | None = None,
) -> Path:
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
        ax.set_ylabel(metric_label(metric))
        ax.set_title(f"{metric_label(metric)} per epoch (mean over trials)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_importance(table: pd.DataFrame, path: str | Path, *, metric: str = "") -> Path:
    """Parameter importance as horizontal bars, most important on top."""
    rows = table.iloc[::-1]
    fig = _figure(1, width=6.5, height=max(2.5, 0.4 * len(rows) + 1.2))
    ax = fig.axes[0]
    ax.barh([str(p).removeprefix("cfg.") for p in rows["param"]], rows["importance"], color="#4c72b0")
    ax.set_xlabel("importance (share, sums to 1)")
    evaluator = str(table["evaluator"].iloc[0]) if len(table) else ""
    ax.set_title(f"Parameter importance for {metric_label(metric)} ({evaluator})", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _figure(panels: int, *, width: float = 6.0, height: float = 4.2) -> Figure:
    fig = Figure(figsize=(width * max(panels, 1), height), layout="constrained")
    FigureCanvasAgg(fig)
    fig.subplots(1, max(panels, 1), squeeze=False)
    return fig


def _percent_axis(ax: Axes, measured: np.ndarray) -> None:
    """Label ratios in %, log-scaled when they span a decade, ticks at the measured budgets."""
    ticks = np.unique(measured[np.isfinite(measured)])
    if len(ticks) and ticks.min() > 0 and ticks.max() / ticks.min() >= 8:
        ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks.tolist()))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}%"))


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path
