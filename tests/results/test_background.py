"""Flushes on a background thread: the caller hands rows over and returns; ``wait`` is the barrier after which
everything is on disk; a failed write raises on the caller's thread with its rows (and those queued behind it)
put back, so a retry writes them and an older report never overtakes a newer one."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from hdc_ray.config import load_config
from hdc_ray.results.background import BackgroundFlusher
from hdc_ray.results.rows import history_row, trial_row
from hdc_ray.results.schema import history_schema, trials_schema
from hdc_ray.results.writer import HISTORY_FILE, TRIALS_FILE, ResultsWriter

CFG = load_config("tiny")


def _writer(folder: Path) -> ResultsWriter:
    return ResultsWriter(str(folder), trials_schema(CFG), history_schema(CFG))


def _statuses(writer: ResultsWriter) -> dict[str, str]:
    return {r["trial_id"]: r["status"] for r in writer.read(TRIALS_FILE, ["trial_id", "status"]).to_pylist()}


def test_submit_returns_before_the_write_and_wait_makes_it_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = _writer(tmp_path)
    gate = threading.Event()
    write = writer.write_pending
    monkeypatch.setattr(writer, "write_pending", lambda taken: (gate.wait(10), write(taken)))
    flusher = BackgroundFlusher(writer)
    writer.put_trial(trial_row("s", "a", CFG, status="running", results=[]))
    writer.put_epoch(history_row("s", "a", {"epoch": 1, "train_loss": 0.5}))
    flusher.submit()  # would block for 10 s if the write ran on this thread
    assert writer.pending_rows == 0 and _statuses(writer) == {}
    gate.set()
    flusher.close()
    assert _statuses(writer) == {"a": "running"}
    assert writer.read(HISTORY_FILE, ["train_loss"]).column("train_loss").to_pylist() == [0.5]


def test_a_failed_write_raises_here_and_its_rows_and_the_queued_ones_are_retried_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = _writer(tmp_path)
    gate, calls = threading.Event(), []
    write = writer.write_pending

    def flaky(taken: Any) -> None:
        calls.append(taken)
        gate.wait(10)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        write(taken)

    monkeypatch.setattr(writer, "write_pending", flaky)
    flusher = BackgroundFlusher(writer)
    writer.put_trial(trial_row("s", "a", CFG, status="running", results=[]))
    flusher.submit()  # batch 1: fails
    writer.put_trial(trial_row("s", "a", CFG, status="completed", results=[]))
    flusher.submit()  # batch 2 (the newer row of the same trial): queued behind the failure, must not be written first
    writer.put_trial(trial_row("s", "b", CFG, status="running", results=[]))  # still pending on this thread
    gate.set()
    with pytest.raises(OSError, match="No space left"):
        flusher.wait()
    assert len(calls) == 1  # batch 2 was skipped, not written ahead of batch 1
    monkeypatch.setattr(writer, "write_pending", write)
    writer.flush()
    assert _statuses(writer) == {"a": "completed", "b": "running"}
