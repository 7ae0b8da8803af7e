"""Sweep overhead: K trials through ``hdc-ray sweep`` (Tune + Optuna + Train on a local cluster) vs the same
K trainings back to back in one bare process, and per-trial start-up (trial wall time minus training time).

    python bench/sweep_overhead.py [--trials 3] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import pandas as pd

from hdc_ray.data import build_data
from hdc_ray.train.loop import fit
from hdc_ray.tune.spec import load_spec
from hdc_ray.tune.sweep import run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    spec = load_spec("smoke", [f"search.trials={args.trials}", f"search.concurrency={args.concurrency}"])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder, grid = run_sweep(spec, results=tmp, name="overhead")
        sweep_s = time.perf_counter() - start
        trials = pd.read_parquet(f"{folder}/trials.parquet")
        configs = [spec.trial_config({k.removeprefix("config/"): v for k, v in grid[i].config.items()}) for i in range(len(grid))]
    start = time.perf_counter()
    for cfg in configs:
        fit(cfg, build_data(cfg.data), progress=False, log=lambda _: None)
    bare_s = time.perf_counter() - start
    wall = (trials["finished_at"] - trials["started_at"]).dt.total_seconds()
    startup = wall - trials["train_time_s"]
    print(f"{args.trials} trials (concurrency {args.concurrency}): sweep {sweep_s:.1f} s (incl. ray.init), bare back-to-back {bare_s:.1f} s, ratio {sweep_s / bare_s:.1f}x")
    print(f"per trial: wall {wall.mean():.1f} s, of which training {trials['train_time_s'].mean():.1f} s, start-up + reporting {startup.mean():.1f} s")


if __name__ == "__main__":
    main()
