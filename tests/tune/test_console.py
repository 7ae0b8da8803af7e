"""What a sweep prints: one progress line with counts, running epochs, best and ETA; no Ray internals."""

from __future__ import annotations

import subprocess
import sys
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
    cb._started -= 60.0  # one minute in: 1 trial ended (+1 failed) and half of another done
    line = cb._progress()
    assert line.startswith("[s] 1/4 done, 1 running (c 1/2), 1 waiting, 1 failed; best val_dice_fg 0.5000 (a)")
    # work done 2.5 trial-equivalents in 60 s, 1.5 left -> ETA 36 s
    assert "elapsed 1m00s, ETA ~0m36s" in line


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
