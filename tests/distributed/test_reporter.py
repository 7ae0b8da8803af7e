"""The reporter every worker runs (issue 34): the first report after a resume carries the checkpoint's epoch records,
once and from rank 0 only, and a snapshot is persisted for exactly the duration of its report."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("ray")

from hdc_ray.distributed.worker import Reporter
from hdc_ray.results.rows import RESTORED_EPOCHS, restored_epochs
from hdc_ray.train.batches import Shard


def _reporter(rank: int, resumed: dict[str, Any] | None) -> tuple[Reporter, list[tuple[dict[str, Any], Any]], list[str]]:
    reports: list[tuple[dict[str, Any], Any]] = []
    persisted: list[str] = []

    @contextlib.contextmanager
    def persist(state: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
        persisted.append(f"open {state['epoch']}")
        yield {"checkpoint_path": f"ck{state['epoch']}"}, "framework-checkpoint"
        persisted.append(f"close {state['epoch']}")

    def report(metrics: dict[str, Any], checkpoint: Any = None) -> None:
        persisted.append("report")
        reports.append((metrics, checkpoint))

    return Reporter(report, persist, Shard(rank, 2), {"n_labeled": 4}, None, resumed), reports, persisted


def test_the_first_report_after_a_resume_carries_the_restored_epochs_once() -> None:
    resumed = {"epoch": 2, "history": [{"epoch": 1.0, "train_loss": 0.9}, {"epoch": 2.0, "train_loss": 0.8}]}
    reporter, reports, persisted = _reporter(0, resumed)
    reporter({"epoch": 3.0, "train_loss": 0.7}, {"epoch": 3})
    reporter({"epoch": 4.0, "train_loss": 0.6}, None)
    assert restored_epochs(reports[0][0]) == resumed["history"]
    assert RESTORED_EPOCHS not in reports[1][0] and restored_epochs(reports[1][0]) == []
    assert reports[0][0]["checkpoint_path"] == "ck3" and reports[0][1] == "framework-checkpoint" and reports[1][1] is None
    assert reports[0][0]["n_labeled"] == 4
    assert persisted == ["open 3", "report", "close 3", "report"]  # the snapshot lives through its report


def test_other_ranks_and_fresh_runs_carry_no_restored_epochs() -> None:
    resumed = {"epoch": 1, "history": [{"epoch": 1.0}]}
    reporter, reports, persisted = _reporter(1, resumed)
    reporter({"epoch": 2.0}, {"epoch": 2})
    assert RESTORED_EPOCHS not in reports[0][0] and reports[0][1] is None and persisted == ["report"]  # rank 1 never persists
    fresh, reports, _ = _reporter(0, None)
    fresh({"epoch": 1.0}, {"epoch": 1})
    assert RESTORED_EPOCHS not in reports[0][0]
    json.dumps(reports[0][0])  # every value a report carries is JSON
