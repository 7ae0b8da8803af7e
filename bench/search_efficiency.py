"""TPE vs random sampling: how many trials until the best validation Dice reaches a target (3 sampler seeds).

    python bench/search_efficiency.py [--spec loss_weights] [--trials 12] [--config tiny] [--set key=value ...]

Uses the spec's space with Optuna directly (the same samplers OptunaSearch drives inside Ray Tune), the
objective being one in-process training of ``--config`` (the spec's base config is replaced to keep the
benchmark inside minutes on a CPU). The target is the 90th percentile of every value observed in the run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import optuna

from hdc_ray.config import load_config, with_overrides
from hdc_ray.data import build_data
from hdc_ray.train.loop import fit
from hdc_ray.tune.spec import Dist, load_spec


def suggest(trial: optuna.Trial, key: str, dist: Dist) -> object:
    low, high = dist.args[0], dist.args[-1]
    if dist.kind == "uniform":
        return trial.suggest_float(key, low, high)
    if dist.kind == "loguniform":
        return trial.suggest_float(key, low, high, log=True)
    if dist.kind == "int":
        return trial.suggest_int(key, low, high)
    if dist.kind == "choice":
        return trial.suggest_categorical(key, list(dist.args))
    return dist.args[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="loss_weights")
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(args.spec)
    base = load_config(args.config, args.overrides)
    data = build_data(base.data)
    cache: dict[tuple, float] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {k: suggest(trial, k, d) for k, d in spec.space.items()}
        key = tuple(sorted(params.items()))
        if key not in cache:
            cache[key] = fit(with_overrides(base, params), data, progress=False, log=lambda _: None).best_val["val_dice_fg"]
        return cache[key]

    curves: dict[str, list[list[float]]] = {"tpe": [], "random": []}
    start = time.perf_counter()
    for name in curves:
        for seed in args.seeds:
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, args.trials // 3))) if name == "tpe" else optuna.samplers.RandomSampler(seed=seed)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            study.optimize(objective, n_trials=args.trials)
            curves[name].append(list(np.maximum.accumulate([t.value for t in study.trials])))
            print(f"{name} seed {seed}: best {curves[name][-1][-1]:.4f}", flush=True)
    values = [v for c in curves.values() for run in c for v in run]
    target = float(np.percentile(values, 90))
    print(f"target (90th percentile of all observed best-so-far values): {target:.4f}")
    for name, runs in curves.items():
        hits = [next((i + 1 for i, v in enumerate(run) if v >= target), None) for run in runs]
        reached = [h for h in hits if h is not None]
        mean = f"{statistics.mean(reached):.1f}" if reached else "n/a"
        print(f"{name:>6}: trials to target per seed {hits}; mean over seeds that reached it {mean}; final best mean {statistics.mean(r[-1] for r in runs):.4f}")
    print(f"{len(cache)} distinct trainings, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
