"""Does HDC help at a fixed compute budget? Every method at a few labelled images (4, 8), and supervised on all.

    python bench/ssl_benchmark.py [--config synthetic] [--counts 4 8] [--seeds 0 1 2] [--set key=value ...] [--jobs 2]

Label budgets are counts of labelled images (``data.label_count``); the reference arm trains supervised on
every training image. Each seed is a different labelled split as well as a different initialisation
(``data.split_seed`` follows ``train.seed``; ``--set data.split_seed=0`` pins one split for all seeds);
the arms of one seed share its split (same ``split_hash``), so differences are paired. Runs every training
in-process (no Ray), ``--jobs`` at a time with one torch thread each, and prints mean and standard
deviation over seeds of test foreground Dice and HD95 (best-validation checkpoint). Writes
``docs/benchmark.md`` and ``docs/benchmark.png`` (a label-budget curve per arm) unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

METHODS = ("supervised", "mean_teacher", "hdc")
DOCS = Path(__file__).resolve().parents[1] / "docs"


def run_one(config: str, overrides: list[str], method: str, count: int | None, seed: int) -> dict:  # type: ignore[type-arg]
    import torch

    from hdc_ray.config import load_config
    from hdc_ray.data import build_data
    from hdc_ray.train.loop import fit

    torch.set_num_threads(1)
    cfg = load_config(config, [*overrides, f"train.method={method}", *budget_overrides(count), f"train.seed={seed}"])
    start = time.perf_counter()
    data = build_data(cfg.data)
    result = fit(cfg, data, progress=False, log=lambda _: None)
    return {"method": method, "count": count, "n_labeled": len(data.labeled), "split_hash": data.split_hash, "seed": seed,
            "seconds": time.perf_counter() - start, **result.test, "val_dice_fg": result.best_val.get("val_dice_fg"),
            "best_epoch": result.best_epoch}  # fmt: skip


def budget_overrides(count: int | None) -> list[str]:
    """``count`` labelled images, or (None) every training image labelled."""
    return ["data.label_count=null", "data.label_ratio=1.0"] if count is None else [f"data.label_count={count}"]


def arms(counts: list[int]) -> list[tuple[str, int | None]]:
    """Every method at each low budget, and the fully supervised reference (count None: all labels)."""
    return [*((m, c) for c in counts for m in METHODS), ("supervised", None)]


def arm_name(method: str, count: int | None) -> str:
    return f"{method}@{'all' if count is None else count}"


def summarise(runs: list[dict], counts: list[int]) -> list[tuple[str, str, str, str]]:  # type: ignore[type-arg]
    rows = []
    for method, count in arms(counts):
        mine = [r for r in runs if r["method"] == method and r["count"] == count]
        dice = [r["test_dice_fg"] for r in mine]
        hd = [r["test_hd95_fg"] for r in mine]
        rows.append((arm_name(method, count), _ms(dice), _ms(hd), f"{statistics.mean(r['seconds'] for r in mine):.0f}"))
    return rows


def _ms(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def plot(runs: list[dict], path: Path, counts: list[int], title: str) -> None:  # type: ignore[type-arg]
    """Label-budget curves: x = labelled images (log), one line per method through the seed means, a dot
    per seed; supervised on all labels at the pool size."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.5))
    for ax, key, label in ((fig.add_subplot(1, 2, 1), "test_dice_fg", "test Dice (foreground)"), (fig.add_subplot(1, 2, 2), "test_hd95_fg", "test HD95 (px)")):
        for i, method in enumerate(METHODS):
            mine = [r for r in runs if r["method"] == method]
            budgets = sorted({r["n_labeled"] for r in mine})
            means = [statistics.mean(r[key] for r in mine if r["n_labeled"] == n) for n in budgets]
            ax.plot(budgets, means, color=f"C{i}", marker="o", label=method)
            ax.scatter([r["n_labeled"] for r in mine], [r[key] for r in mine], color=f"C{i}", s=10, alpha=0.5)
        ax.set_xscale("log")
        ax.set_xlabel("labelled images")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=8)
    fig.suptitle(f"{title}: seed means (dots: seeds = splits); low budgets {counts}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="each seed is another labelled split")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--counts", type=int, nargs="+", default=[4, 8], help="the low label budgets, in labelled images")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    jobs = [(args.config, args.overrides, m, c, s) for m, c in arms(args.counts) for s in args.seeds]
    start = time.perf_counter()
    runs = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for run in pool.map(run_one, *zip(*jobs, strict=True)):
            runs.append(run)
            print(f"  {arm_name(run['method'], run['count'])} seed {run['seed']} (split {run['split_hash']}, {run['n_labeled']} labelled): "
                  f"test Dice {run['test_dice_fg']:.3f}, HD95 {run['test_hd95_fg']:.2f}, {run['seconds']:.0f} s", flush=True)  # fmt: skip
    table = summarise(runs, args.counts)
    lines = ["| arm | test Dice (fg) mean ± sd | test HD95 (px) mean ± sd | s per run |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {d} | {h} | {s} |" for a, d, h, s in table]
    print("\n".join(lines))
    print(f"total {time.perf_counter() - start:.0f} s with {args.jobs} jobs")
    if not args.no_write:
        DOCS.mkdir(exist_ok=True)
        plot(runs, DOCS / "benchmark.png", args.counts, f"Synthetic benchmark ({args.config} {' '.join(args.overrides)})")
        cmd = f"python bench/ssl_benchmark.py --counts {' '.join(map(str, args.counts))} " + " ".join(f"--set {o}" for o in args.overrides)
        header = f"# SSL benchmark (synthetic)\n\nCommand: `{cmd.strip()}` (config `{args.config}`, seeds {args.seeds}; each seed is its own split).\n\n"
        (DOCS / "benchmark.md").write_text(header + "\n".join(lines) + "\n\n![benchmark](benchmark.png)\n\n```json\n" + json.dumps(runs, indent=1) + "\n```\n")


if __name__ == "__main__":
    main()
