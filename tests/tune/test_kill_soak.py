"""Issue 34: a sweep's driver SIGKILLed again and again, at random moments and right after a checkpoint appears,
resumes to every trial completed exactly once, every epoch in its history once, rc 0 and no traceback.

The kills come from bench/kill_soak.py (the same code as the >= 50-kill soak of docs/benchmarks.md), with a seeded
schedule printed on failure so that it can be replayed: ``python bench/kill_soak.py --kills 6 --seed 34``.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.bench_scripts import load_bench

pytestmark = [pytest.mark.ray, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    return load_bench("kill_soak")


@pytest.mark.parametrize(("storage", "kills", "seed"), [("local", 6, 34), ("s3", 3, 35)])
def test_a_sweep_killed_many_times_resumes_whole(tmp_path: Path, storage: str, kills: int, seed: int) -> None:
    report = _bench().soak(tmp_path, kills=kills, seed=seed, storage_kind=storage, max_delay=20.0, log=False)
    assert report.kills >= kills and report.ok, report.summary() + f"\nreplay: python bench/kill_soak.py --kills {kills} --seed {seed} --storage {storage}"
    assert report.trials == 12 * report.cycles and report.epochs_checked == 4 * report.trials
