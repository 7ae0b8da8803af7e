"""The callback writes in the background, and waits for those writes when Tune saves its experiment state:
a trial Tune has recorded as finished has its final row on disk."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hdc_ray.results.writer import TRIALS_FILE
from hdc_ray.tune.callback import ParquetCallback
from hdc_ray.tune.spec import load_spec


def test_the_callback_waits_for_its_writes_when_tune_saves_the_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec("smoke", ["search.trials=1"])
    cb = ParquetCallback(spec, "s", str(tmp_path))
    cb.setup()
    gate = threading.Event()
    write = cb.writer.write_pending
    monkeypatch.setattr(cb.writer, "write_pending", lambda taken: (gate.wait(10), write(taken)))
    trial = type("T", (), {"trial_id": "t1", "config": {"train.seed": 0}})()
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(0, [trial], trial, {"epoch": 1, "train_loss": 0.4, "val_dice_fg": 0.6, "done": 1})
    cb.on_trial_complete(0, [trial], trial)
    assert _statuses(cb) == {}  # the driver did not wait for the disk
    threading.Timer(0.2, gate.set).start()
    assert cb.get_state() is None  # Tune keeps no callback state: the rows are the state
    assert _statuses(cb) == {"t1": "completed"}


def _statuses(cb: ParquetCallback) -> dict[str, str]:
    return {r["trial_id"]: r["status"] for r in cb.writer.read(TRIALS_FILE, ["trial_id", "status"]).to_pylist()}
