"""Sweep overhead, side by side in one run: K trials through ``hdc-ray sweep`` with each launcher (one-worker
trials trained inside the Tune trial, and the same trials on Ray Train) vs the same K trainings back to back
in one bare process; per-trial start-up = trial wall time minus its training time.

    python bench/sweep_overhead.py [--trials 3] [--concurrency 1] [--set train.epochs=20 ...]

``--set`` lengthens the trials (e.g. ``--set train.epochs=30 --set train.iters_per_epoch=40`` for ~2-minute
trials on 2 cores), to check that a sweep of real-length trials costs little more than the trainings.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

import pandas as pd
import yaml

from hdc_ray.data import build_data
from hdc_ray.train.loop import fit
from hdc_ray.tune.spec import load_spec
from hdc_ray.tune.sweep import run_sweep

LAUNCHERS = {"in-trial": "auto", "ray-train": "train"}


def sweep_once(args: argparse.Namespace, launcher: str, tmp: str) -> tuple[float, pd.DataFrame, list]:  # type: ignore[type-arg]
    overrides = [f"search.trials={args.trials}", f"search.concurrency={args.concurrency}", f"resources.launcher={launcher}"]
    spec = load_spec("smoke", overrides)
    extra = {k: yaml.safe_load(v) for k, _, v in (o.partition("=") for o in args.overrides)}
    spec = dataclasses.replace(spec, overrides={**spec.overrides, **extra})
    start = time.perf_counter()
    folder, grid = run_sweep(spec, results=tmp, name=f"overhead-{launcher}")
    seconds = time.perf_counter() - start
    configs = [spec.trial_config({k.removeprefix("config/"): v for k, v in grid[i].config.items()}) for i in range(len(grid))]
    return seconds, pd.read_parquet(f"{folder}/trials.parquet"), configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="trial config override")
    parser.add_argument("--launchers", nargs="+", default=list(LAUNCHERS), choices=list(LAUNCHERS), help="which launchers to sweep with")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    rows, configs = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.launchers:
            seconds, trials, configs = sweep_once(args, LAUNCHERS[label], tmp)
            wall = (trials["finished_at"] - trials["started_at"]).dt.total_seconds()
            rows[label] = (seconds, wall.mean(), trials["train_time_s"].mean(), (wall - trials["train_time_s"]).mean())
    start = time.perf_counter()
    for cfg in configs:
        fit(cfg, build_data(cfg.data), progress=False, log=lambda _: None)
    bare = time.perf_counter() - start
    print(f"{args.trials} trials, concurrency {args.concurrency}, overrides {args.overrides or 'none'}; bare back-to-back {bare:.1f} s")
    print(f"{'launcher':<11}{'sweep s':>9}{'vs bare':>9}{'trial wall s':>14}{'training s':>12}{'overhead s/trial':>18}")
    for label, (seconds, wall, train, overhead) in rows.items():
        print(f"{label:<11}{seconds:>9.1f}{seconds / bare:>9.2f}{wall:>14.1f}{train:>12.1f}{overhead:>18.1f}")
    print("(sweep s includes one ray.init + shutdown per sweep)")


if __name__ == "__main__":
    main()
