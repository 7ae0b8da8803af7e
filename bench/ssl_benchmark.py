"""Does HDC help at a fixed compute budget? supervised@10%, mean_teacher@10%, hdc@10%, supervised@100%, 3 seeds.

    python bench/ssl_benchmark.py [--config synthetic] [--seeds 0 1 2] [--set key=value ...] [--jobs 2]

Runs every training in-process (no Ray), ``--jobs`` at a time with one torch thread each, and prints mean
and standard deviation over seeds of test foreground Dice and HD95 (best-validation checkpoint). Writes
``docs/benchmark.md`` and ``docs/benchmark.png`` unless ``--no-write``.
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


def run_one(config: str, overrides: list[str], method: str, ratio: float, seed: int) -> dict:  # type: ignore[type-arg]
    import torch

    from hdc_ray.config import load_config
    from hdc_ray.data import build_data
    from hdc_ray.train.loop import fit

    torch.set_num_threads(1)
    cfg = load_config(config, [*overrides, f"train.method={method}", f"data.label_ratio={ratio}", f"train.seed={seed}"])
    start = time.perf_counter()
    result = fit(cfg, build_data(cfg.data), progress=False, log=lambda _: None)
    return {"method": method, "ratio": ratio, "seed": seed, "seconds": time.perf_counter() - start, **result.test,
            "val_dice_fg": result.best_val.get("val_dice_fg"), "best_epoch": result.best_epoch}


def arms(ratio: float) -> list[tuple[str, float]]:
    """Every method at the low budget, and the fully supervised reference."""
    return [*((m, ratio) for m in METHODS), ("supervised", 1.0)]


def summarise(runs: list[dict], ratio: float) -> list[tuple[str, str, str, str]]:  # type: ignore[type-arg]
    rows = []
    for method, arm_ratio in arms(ratio):
        mine = [r for r in runs if r["method"] == method and r["ratio"] == arm_ratio]
        dice = [r["test_dice_fg"] for r in mine]
        hd = [r["test_hd95_fg"] for r in mine]
        rows.append((f"{method}@{arm_ratio:.0%}", _ms(dice), _ms(hd), f"{statistics.mean(r['seconds'] for r in mine):.0f}"))
    return rows


def _ms(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def plot(runs: list[dict], path: Path, ratio: float, title: str) -> None:  # type: ignore[type-arg]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.5))
    for ax, key, label in ((fig.add_subplot(1, 2, 1), "test_dice_fg", "test Dice (foreground)"), (fig.add_subplot(1, 2, 2), "test_hd95_fg", "test HD95 (px)")):
        for i, (method, arm_ratio) in enumerate(arms(ratio)):
            values = [r[key] for r in runs if r["method"] == method and r["ratio"] == arm_ratio]
            ax.bar(i, statistics.mean(values), color=f"C{i}", alpha=0.7)
            ax.scatter([i] * len(values), values, color="k", s=12, zorder=3)
        ax.set_xticks(range(4), [f"{m}\n@{r:.0%}" for m, r in arms(ratio)], fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{title}: mean over seeds (dots: seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--ratio", type=float, default=0.1, help="the low label budget of the first three arms")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    jobs = [(args.config, args.overrides, m, r, s) for m, r in arms(args.ratio) for s in args.seeds]
    start = time.perf_counter()
    runs = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for run in pool.map(run_one, *zip(*jobs, strict=True)):
            runs.append(run)
            print(f"  {run['method']}@{run['ratio']:.0%} seed {run['seed']}: test Dice {run['test_dice_fg']:.3f}, HD95 {run['test_hd95_fg']:.2f}, {run['seconds']:.0f} s", flush=True)
    table = summarise(runs, args.ratio)
    lines = ["| arm | test Dice (fg) mean ± sd | test HD95 (px) mean ± sd | s per run |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {d} | {h} | {s} |" for a, d, h, s in table]
    print("\n".join(lines))
    print(f"total {time.perf_counter() - start:.0f} s with {args.jobs} jobs")
    if not args.no_write:
        DOCS.mkdir(exist_ok=True)
        plot(runs, DOCS / "benchmark.png", args.ratio, f"Synthetic benchmark ({args.config} {' '.join(args.overrides)})")
        cmd = f"python bench/ssl_benchmark.py --ratio {args.ratio} " + " ".join(f"--set {o}" for o in args.overrides)
        (DOCS / "benchmark.md").write_text(f"# SSL benchmark (synthetic)\n\nCommand: `{cmd.strip()}` (config `{args.config}`, seeds {args.seeds}).\n\n" + "\n".join(lines) + "\n\n![benchmark](benchmark.png)\n\n```json\n" + json.dumps(runs, indent=1) + "\n```\n")


if __name__ == "__main__":
    main()
