"""What a sweep prints: one progress line with counts, running epochs, best and ETA; no Ray internals."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hdc_ray.tune.callback import ParquetCallback, _duration, _Live
from hdc_ray.tune.spec import load_spec

RAY_INTERNALS = ("core_worker", "(trial_driver", "Checkpoint successfully created", "TensorBoard", "Configuration for experiment",
                 "placement group", "repeated", "A new study created", "View detailed results", "raylet")  # fmt: skip


def test_progress_line_counts_running_epochs_best_and_eta(tmp_path: Path) -> None:
    spec = load_spec("smoke", ["search.trials=4"])
    cb = ParquetCallback(spec, "s", str(tmp_path))
    cb._epochs = 2
    for tid, status, score in (("a", "completed", 0.5), ("b", "failed", None), ("c", "running", None)):
        cb._track(tid, status, score)
    cb._live["c"] = _Live(datetime.now(UTC), last={"epoch": 1.0})
    cb._ended_keys = [("", 2), ("", 2)]  # a and b, ended in this driver
    cb._started -= 60.0  # one minute in: 1 trial ended (+1 failed) and half of another done
    line = cb._progress()
    assert line.startswith("[s] 1/4 done, 1 running (c 1/2), 1 waiting, 1 failed; best val_dice_fg 0.5000 (a)")
    # work done 2.5 trial-equivalents in 60 s, 1.5 left -> ETA 36 s
    assert "elapsed 1m00s, ETA ~0m36s" in line


def test_eta_weighs_each_waiting_trial_by_its_methods_measured_cost(tmp_path: Path) -> None:
    cb = ParquetCallback(load_spec("smoke", ["search.trials=4"]), "s", str(tmp_path))
    cb._grid = Counter({("hdc", 8): 2, ("supervised", 8): 2})  # a grid whose two HDC trials ran first
    for tid in ("a", "b"):
        cb._track(tid, "completed", 0.5)
    cb._started_keys, cb._ended_keys = Counter({("hdc", 8): 2}), [("hdc", 8)] * 2
    cb._costs.add("hdc", 4.0)
    cb._costs.add("supervised", 1.0)  # measured on the running trial's first epoch, say
    cb._started -= 60.0
    # done: 2 x 8 epochs x 4 s = 64; left: 2 supervised x 8 x 1 s = 16 -> 60 s x 16 / 64 = 15 s (counting trials: 60 s)
    assert cb._progress().endswith("elapsed 1m00s, ETA ~0m15s")


def test_the_grid_of_the_demo_study_is_known_by_method_and_epochs(tmp_path: Path) -> None:
    spec = load_spec("study")
    keys = ParquetCallback(spec, "s", str(tmp_path))._grid_keys()
    n = len(spec.seeds)
    assert keys == Counter({("hdc", 8): 2 * n, ("supervised", 8): 4 * n}) and keys.total() == spec.n_trials()


def test_duration_format() -> None:
    assert _duration(59.6) == "1m00s" and _duration(3725) == "1h02m"


@pytest.mark.ray
@pytest.mark.slow
def test_a_sweep_prints_progress_not_ray_internals(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "hdc_ray.cli", "sweep", "smoke", "--results", str(tmp_path), "--name", "quiet", "--trials", "2"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=_quiet_env())
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout.splitlines()
    assert out[0].startswith("sweep 'quiet': 2 trials") and out[-1].startswith("sweep 'quiet' finished")
    assert all(line.startswith(("sweep ", "[quiet] ")) for line in out), out
    assert any("2/2 done" in line for line in out)
    noise = [line for line in (done.stdout + done.stderr).splitlines() if any(tag in line for tag in RAY_INTERNALS)]
    assert not noise, noise


def _quiet_env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HDC_RAY_VERBOSE", "RAY_AIR_NEW_OUTPUT")}
    return env | {"RAY_AUTH_MODE": "disabled"}
