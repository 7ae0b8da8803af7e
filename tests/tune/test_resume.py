"""Kill the sweep driver with SIGKILL mid-sweep, then ``--resume``: exactly the requested trials, none twice.

The pattern Ray uses for its own Tune fault tests: the sweep runs in a subprocess (its own local Ray
cluster, in its own process group so the kill takes the whole cluster down like a lost machine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]
TRIALS = 4


def _sweep(results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hdc_ray.cli", "sweep", "smoke", "--name", "killed", "--results", str(results),
            "--trials", str(TRIALS), "--set", "search.concurrency=1", *extra]


def _completed(results: Path) -> int:
    path = results / "killed" / "trials.parquet"
    if not path.exists():  # a folder of parts, readable while the sweep writes it
        return 0
    return int((pd.read_parquet(path)["status"] == "completed").sum())


def test_sigkilled_driver_resumes_to_exactly_the_requested_trials(tmp_path: Path) -> None:
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(_sweep(tmp_path), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 420
    while _completed(tmp_path) < 1 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    assert first.poll() is None, "the sweep ended before it could be killed: " + (tmp_path / "first.log").read_text()[-2000:]
    assert _completed(tmp_path) >= 1
    os.killpg(first.pid, signal.SIGKILL)  # driver, raylet, GCS, workers: all gone at once
    first.wait(30)
    before = pd.read_parquet(tmp_path / "killed" / "trials.parquet")
    assert _completed(tmp_path) < TRIALS

    second = subprocess.run(_sweep(tmp_path, "--resume"), cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    after = pd.read_parquet(tmp_path / "killed" / "trials.parquet")
    assert len(after) == TRIALS and after["trial_id"].is_unique
    assert (after["status"] == "completed").all(), after[["trial_id", "status", "error"]]
    finished_before = before.loc[before["status"] == "completed", "trial_id"]
    assert set(finished_before) <= set(after["trial_id"])  # nothing finished was lost or redone under a new id
    history = pd.read_parquet(tmp_path / "killed" / "history.parquet")
    assert not history.duplicated(["trial_id", "epoch"]).any() and len(history) == 2 * TRIALS
