"""Does HDC help at a fixed compute budget? Every method at a few labelled images (4, 8), and supervised on all.

    python bench/ssl_benchmark.py [--config synthetic] [--counts 4 8] [--seeds 0 1 2] [--set key=value ...] [--jobs 2]
    python bench/ssl_benchmark.py --counts 4 --methods hdc --ablate no_pc:loss.w_pc=0 no_cg:loss.w_cg=0 --no-reference

Label budgets are counts of labelled images (``data.label_count``); the reference arm trains supervised on
every training image. Each seed is a different labelled split as well as a different initialisation
(``data.split_seed`` follows ``train.seed``; ``--set data.split_seed=0`` pins one split for all seeds);
the arms of one seed share its split (same ``split_hash``), so differences are paired. Runs every training
in-process (no Ray), ``--jobs`` at a time with one torch thread each, and prints mean and standard
deviation over seeds of test foreground Dice and HD95 (best-validation checkpoint), the paired difference of
HDC against each arm on the same splits, HDC's worst class, the confident fraction after the ramp-up, and
each arm's wall time relative to HDC (same steps, same run). Writes ``OUT/runs.json``, ``OUT/table.md``,
``OUT/label_budget.png`` and ``OUT/paired.png`` (the paired differences; default ``results/ssl_benchmark/``);
``docs/benchmarks.md`` quotes them by hand. ``--resume`` keeps a stored run only if it trained the config the
arm would train now (a fingerprint of the resolved config), so redefining an arm or editing a config reruns it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hdc_ray.config import Config

METHODS = ("supervised", "supervised_ema", "mean_teacher", "hdc")


def run_one(config: str, overrides: list[str], method: str, count: int | None, seed: int) -> dict:  # type: ignore[type-arg]
    """``method`` is a train.method, or an ablation ``name:key=value,key=value`` of HDC."""
    import torch

    from hdc_ray.data import build_data
    from hdc_ray.train.loop import fit

    torch.set_num_threads(1)
    name = method.partition(":")[0]
    cfg = arm_config(config, overrides, method, count, seed)
    data = build_data(cfg.data)  # cached on disk after the first run: timed apart from training
    start = time.perf_counter()
    result = fit(cfg, data, progress=False, log=lambda _: None)
    ramp_end = cfg.loss.ramp_fraction * cfg.train.epochs
    confident = [(h["epoch"], h["train_confident_fraction"]) for h in result.history if "train_confident_fraction" in h]
    by_epoch = [fraction for _, fraction in confident]
    # The mask opens as the teacher grows confident, which it does after the weight's ramp: the minimum after
    # the ramp is the epoch just after it, so the last epoch is reported too (what the term acts with at the end).
    after_ramp = [fraction for epoch, fraction in confident if epoch > ramp_end]
    classes = _class_dice_keys(result.test)
    return {"method": name, "count": count, "n_labeled": len(data.labeled), "split_hash": data.split_hash, "seed": seed, "config_key": config_key(cfg),
            "seconds": time.perf_counter() - start, **result.test, "val_dice_fg": result.best_val.get("val_dice_fg"),
            "best_epoch": result.best_epoch, "min_class_dice": min(result.test[k] for k in classes),
            "min_confident_after_ramp": min(after_ramp) if after_ramp else None,
            "last_confident": by_epoch[-1] if by_epoch else None, "confident_by_epoch": by_epoch}  # fmt: skip


def arm_config(config: str, overrides: list[str], method: str, count: int | None, seed: int) -> Config:
    """The config one run trains: the base, ``--set``, the arm (a method or an HDC ablation), budget and seed."""
    from hdc_ray.config import load_config

    ablated = method.partition(":")[2]
    arm = ["train.method=hdc", *ablated.split(",")] if ablated else [f"train.method={method}"]
    return load_config(config, [*overrides, *arm, *budget_overrides(count), f"train.seed={seed}"])


def config_key(cfg: Config) -> str:
    """A fingerprint of everything a run trains with: --resume keeps a run only while its config is unchanged
    (an arm redefined under the same name, or an edited packaged config, would otherwise be reused silently)."""
    from hdc_ray.config import to_dict

    text = json.dumps(to_dict(cfg), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _class_dice_keys(record: dict) -> list[str]:  # type: ignore[type-arg]
    """The per-class test Dice keys of a run (``test_dice_<class>``), without the fg / all means."""
    return [k for k in record if k.startswith("test_dice_") and k not in ("test_dice_fg", "test_dice_all")]


def budget_overrides(count: int | None) -> list[str]:
    """``count`` labelled images, or (None) every training image labelled."""
    return ["data.label_count=null", "data.label_ratio=1.0"] if count is None else [f"data.label_count={count}"]


def arms(counts: list[int], methods: tuple[str, ...] = METHODS, reference: bool = True) -> list[tuple[str, int | None]]:
    """Every method at each low budget, and the fully supervised reference (count None: all labels)."""
    return [*((m, c) for c in counts for m in methods), *([("supervised", None)] if reference else [])]


def arm_name(method: str, count: int | None) -> str:
    return f"{method}@{'all' if count is None else count}"


def summarise(runs: list[dict], counts: list[int], methods: tuple[str, ...], ref: str = "hdc") -> list[str]:  # type: ignore[type-arg]
    """Markdown rows: per arm Dice / HD95 / worst class / confident fraction / time vs ``ref`` at that budget."""
    rows = [f"| arm | test Dice (fg) mean ± sd | test HD95 (px) mean ± sd | worst class Dice (min over seeds) | confident fraction after ramp: min; last epoch (min) | s per run | time vs {ref} |",
            "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for method, count in arms(counts, methods, reference=any(r["count"] is None for r in runs)):
        method = method.partition(":")[0]
        mine = [r for r in runs if r["method"] == method and r["count"] == count]
        if not mine:
            continue
        theirs = [r["seconds"] for r in runs if r["method"] == ref and r["count"] == (count or counts[0])]
        seconds = statistics.mean(r["seconds"] for r in mine)
        conf = [r["min_confident_after_ramp"] for r in mine if r["min_confident_after_ramp"] is not None]
        last = [r["last_confident"] for r in mine if r.get("last_confident") is not None]  # runs.json before it: absent
        ratio = f"{seconds / statistics.mean(theirs):.2f}" if theirs else "-"
        rows.append(f"| {arm_name(method, count)} | {_ms([r['test_dice_fg'] for r in mine])} | {_ms([r['test_hd95_fg'] for r in mine])} | "
                    f"{min(r['min_class_dice'] for r in mine):.3f} | {f'{min(conf):.3f}' if conf else '-'}; {f'{min(last):.3f}' if last else '-'} | {seconds:.0f} | {ratio} |")  # fmt: skip
    return rows


def per_class(runs: list[dict], counts: list[int], methods: tuple[str, ...], collapsed_below: float = 0.5) -> list[str]:  # type: ignore[type-arg]
    """Markdown rows: per arm, each class's test Dice (mean over splits, then every split) and how many runs
    lost a class (some class Dice under ``collapsed_below``): a mean over splits hides a class lost on one."""
    classes = [k.removeprefix("test_dice_") for k in dict.fromkeys(k for r in runs for k in _class_dice_keys(r))]  # task order
    rows = [f"| arm | {' | '.join(f'{c} (mean; per split)' for c in classes)} | runs with a class < {collapsed_below} |",
            f"| --- | {' | '.join('---' for _ in classes)} | --- |"]  # fmt: skip
    for method, count in arms(counts, methods, reference=any(r["count"] is None for r in runs)):
        method = method.partition(":")[0]
        mine = sorted((r for r in runs if r["method"] == method and r["count"] == count), key=lambda r: r["seed"])
        if not mine:
            continue
        cells = []
        for c in classes:
            values = [r.get(f"test_dice_{c}", float("nan")) for r in mine]
            cells.append(f"{statistics.mean(values):.3f}; {' / '.join(f'{v:.3f}' for v in values)}")
        lost = sum(any(r.get(f"test_dice_{c}", 1.0) < collapsed_below for c in classes) for r in mine)
        rows.append(f"| {arm_name(method, count)} | {' | '.join(cells)} | {lost} of {len(mine)} |")
    return rows


def paired_diffs(runs: list[dict], count: int, methods: tuple[str, ...], ref: str = "hdc") -> list[tuple[str, list[float]]]:  # type: ignore[type-arg]
    """``ref`` minus each other arm on the same split (seed) at ``count`` labels, in Dice points, per split."""
    mine = {r["seed"]: r["test_dice_fg"] for r in runs if r["method"] == ref and r["count"] == count}
    out = []
    for other in (m.partition(":")[0] for m in methods if m.partition(":")[0] != ref):
        theirs = {r["seed"]: r["test_dice_fg"] for r in runs if r["method"] == other and r["count"] == count}
        diffs = [100 * (mine[s] - theirs[s]) for s in sorted(mine) if s in theirs]
        if diffs:
            out.append((other, diffs))
    return out


def t_interval(diffs: list[float]) -> tuple[float, float, float]:
    """Mean, sd and the half-width of the 95% Student-t interval of the mean (NaN below two splits)."""
    from scipy import stats

    if len(diffs) < 2:
        return statistics.mean(diffs), float("nan"), float("nan")
    sd = statistics.stdev(diffs)
    return statistics.mean(diffs), sd, float(stats.t.ppf(0.975, len(diffs) - 1)) * sd / len(diffs) ** 0.5


def paired(runs: list[dict], counts: list[int], methods: tuple[str, ...], ref: str = "hdc") -> list[str]:  # type: ignore[type-arg]
    """``ref`` minus each arm on the same split (seed), per low budget: mean, spread, 95% Student-t interval of
    the mean difference, and per-split values."""
    rows = [f"| budget | {ref} minus | mean diff (Dice points) | sd | 95% interval | per split | {ref} ahead on every split |",
            "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for count in counts:
        for other, diffs in paired_diffs(runs, count, methods, ref):
            mean, sd, half = t_interval(diffs)
            rows.append(f"| {count} | {other} | {mean:+.1f} | {sd:.1f} | {mean - half:+.1f} to {mean + half:+.1f} | "
                        f"{', '.join(f'{d:+.1f}' for d in diffs)} | {all(d > 0 for d in diffs)} |")  # fmt: skip
    return rows


def plot_paired(runs: list[dict], path: Path, counts: list[int], methods: tuple[str, ...], ref: str = "hdc") -> None:  # type: ignore[type-arg]
    """One row per arm and budget: ``ref`` minus the arm, a dot per split, the mean and its 95% interval."""
    from matplotlib.figure import Figure

    rows = [(f"{other}@{count}", diffs) for count in counts for other, diffs in paired_diffs(runs, count, methods, ref)]
    if not rows:
        return
    fig = Figure(figsize=(7, 0.45 * len(rows) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    for y, (_, diffs) in enumerate(rows):
        mean, _, half = t_interval(diffs)
        ax.errorbar([mean], [y], xerr=None if math.isnan(half) else [[half], [half]], fmt="o", color="C0", capsize=3)
        ax.scatter(diffs, [y] * len(diffs), color="C1", s=12, zorder=3)
    ax.axvline(0.0, color="grey", lw=1)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"{ref} minus arm, test Dice points (dots: splits; bar: mean, 95% t-interval)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _ms(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def plot(runs: list[dict], path: Path, counts: list[int], title: str, methods: tuple[str, ...]) -> None:  # type: ignore[type-arg]
    """Label-budget curves: x = labelled images (log), one line per method through the seed means, a dot
    per seed; supervised on all labels at the pool size."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.5))
    for ax, key, label in ((fig.add_subplot(1, 2, 1), "test_dice_fg", "test Dice (foreground)"), (fig.add_subplot(1, 2, 2), "test_hd95_fg", "test HD95 (px)")):
        for i, method in enumerate(m.partition(":")[0] for m in methods):
            mine = [r for r in runs if r["method"] == method]
            budgets = sorted({r["n_labeled"] for r in mine})
            means = [statistics.mean(r[key] for r in mine if r["n_labeled"] == n) for n in budgets]
            ax.plot(budgets, means, color=f"C{i}", marker="o", label=method)
            ax.scatter([r["n_labeled"] for r in mine], [r[key] for r in mine], color=f"C{i}", s=10, alpha=0.5)
        ax.set_xscale("log")
        ax.set_xlabel("labelled images")
        if key == "test_dice_fg":
            ax.set_ylim(0.0, 1.0)
        else:
            ax.set_ylim(bottom=0.0)
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
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help="arms at the low budgets (cps, fixmatch, unimatch are available too)")
    parser.add_argument("--ablate", nargs="*", default=[], metavar="NAME:KEY=V[,KEY=V]", help="HDC variants, e.g. no_pc:loss.w_pc=0")
    parser.add_argument("--no-reference", action="store_true", help="skip supervised on all labels")
    parser.add_argument("--out", default="results/ssl_benchmark", help="folder for runs.json, table.md, label_budget.png")
    parser.add_argument("--paired-with", default="hdc", metavar="ARM", help="the arm the paired table subtracts the others from")
    parser.add_argument("--resume", action="store_true", help="keep the runs already in OUT/runs.json (same arm, budget, seed) and run the rest")
    args = parser.parse_args()
    methods = (*args.methods, *args.ablate)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = [(args.config, args.overrides, m, c, s) for m, c in arms(args.counts, methods, not args.no_reference) for s in args.seeds]
    runs = _previous_runs(out / "runs.json", args.overrides) if args.resume else []
    runs, jobs = _kept_and_todo(runs, wanted)
    print(f"{len(jobs)} runs to do ({len(runs)} kept from {out}/runs.json)" if args.resume else f"{len(jobs)} runs", flush=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for run in pool.map(run_one, *zip(*jobs, strict=True)) if jobs else ():
            runs.append(run | {"overrides": list(args.overrides)})
            _save(out / "runs.json", runs)  # after every run: a crash or Ctrl-C keeps what finished
            print(f"  {arm_name(run['method'], run['count'])} seed {run['seed']} (split {run['split_hash']}, {run['n_labeled']} labelled): "
                  f"test Dice {run['test_dice_fg']:.3f}, HD95 {run['test_hd95_fg']:.2f}, {run['seconds']:.0f} s", flush=True)  # fmt: skip
    runs = [r for r in runs if r["seed"] in args.seeds]  # OUT may hold more splits (--resume): report the ones asked for
    lines = [*summarise(runs, args.counts, methods, args.paired_with), "", *per_class(runs, args.counts, methods), "",
             *paired(runs, args.counts, methods, args.paired_with)]
    lines.append(f"\ntotal {time.perf_counter() - start:.0f} s with {args.jobs} jobs")
    print("\n".join(lines))
    plot(runs, out / "label_budget.png", args.counts, f"{args.config} {' '.join(args.overrides)}", methods)
    plot_paired(runs, out / "paired.png", args.counts, methods, args.paired_with)
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/table.md, runs.json, label_budget.png, paired.png")


def _previous_runs(path: Path, overrides: list[str]) -> list[dict]:  # type: ignore[type-arg]
    if not path.exists():
        return []
    runs = json.loads(path.read_text())
    other = [r for r in runs if r.get("overrides", overrides) != overrides]
    if other:
        raise SystemExit(f"{path}: {len(other)} runs were made with other --set values ({other[0].get('overrides')}); pass another --out")
    return runs


def _kept_and_todo(runs: list[dict], wanted: list[tuple]) -> tuple[list[dict], list[tuple]]:  # type: ignore[type-arg]
    """Split the wanted jobs into stored runs to keep and jobs to run. A stored run of the same arm, budget and
    seed is kept if it trained the same config; one that did not is dropped and rerun (said on stdout). Runs
    stored before configs were fingerprinted are kept by name, with a warning."""
    by_key = {(r["method"], r["count"], r["seed"]): r for r in runs}
    jobs, stale, unchecked = [], [], 0
    for job in wanted:
        key = (job[2].partition(":")[0], job[3], job[4])
        run = by_key.get(key)
        if run is None:
            jobs.append(job)
        elif "config_key" not in run:
            unchecked += 1
        elif run["config_key"] != config_key(arm_config(*job)):
            stale.append(key)
            jobs.append(job)
    if stale:
        print(f"{len(stale)} stored runs trained another config than they would now (arm or config edited): rerun, e.g. {stale[0]}")
    if unchecked:
        print(f"warning: {unchecked} stored runs predate config fingerprints: kept by arm name, budget and seed only")
    gone = set(stale)
    return [r for r in runs if (r["method"], r["count"], r["seed"]) not in gone], jobs


def _save(path: Path, runs: list[dict]) -> None:  # type: ignore[type-arg]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(runs, indent=1))
    tmp.replace(path)


if __name__ == "__main__":
    main()
