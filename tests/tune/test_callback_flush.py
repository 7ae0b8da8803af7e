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


def _history(cb: ParquetCallback) -> list[tuple[str, int, float | None]]:
    from hdc_ray.results.writer import HISTORY_FILE

    rows = cb.writer.read(HISTORY_FILE, ["trial_id", "epoch", "train_loss"]).to_pylist()
    return sorted((r["trial_id"], r["epoch"], r["train_loss"]) for r in rows)


def test_saving_the_experiment_writes_epochs_not_yet_flushed(tmp_path: Path) -> None:
    """Issue 34: epochs reported inside the 5-s flush interval were not written when Tune saved its state, so a
    driver killed then lost them for good (the resumed trial continued from a later checkpoint)."""
    spec = load_spec("smoke", ["search.trials=1"])
    cb = ParquetCallback(spec, "s", str(tmp_path))
    cb.setup()
    trial = type("T", (), {"trial_id": "t1", "config": {"train.seed": 0}})()
    cb.on_trial_start(0, [trial], trial)
    for epoch in (1, 2):
        cb.on_trial_result(0, [trial], trial, {"epoch": epoch, "train_loss": 0.5 / epoch})
    assert _history(cb) == []  # inside the flush interval: nothing on disk yet
    cb.get_state()
    assert _history(cb) == [("t1", 1, 0.5), ("t1", 2, 0.25)]


def test_a_resumed_trials_restored_epochs_are_written_to_the_history(tmp_path: Path) -> None:
    import json

    from hdc_ray.results.rows import RESTORED_EPOCHS

    spec = load_spec("smoke", ["search.trials=1"])
    cb = ParquetCallback(spec, "s", str(tmp_path))
    cb.setup()
    trial = type("T", (), {"trial_id": "t1", "config": {"train.seed": 0}})()
    cb.on_trial_start(0, [trial], trial)
    restored = [{"epoch": 1.0, "train_loss": 0.9, "epoch_time_s": 2.0, "images_per_s": 4.0}, {"epoch": 2.0, "train_loss": 0.8, "epoch_time_s": 2.0, "images_per_s": 4.0}]
    cb.on_trial_result(0, [trial], trial, {"epoch": 3, "train_loss": 0.7, "epoch_time_s": 2.0, "images_per_s": 4.0, RESTORED_EPOCHS: json.dumps(restored)})
    cb.on_trial_result(0, [trial], trial, {"epoch": 4, "train_loss": 0.6, "epoch_time_s": 2.0, "images_per_s": 4.0, "done": 1})
    cb.on_trial_complete(0, [trial], trial)
    cb.get_state()
    assert _history(cb) == [("t1", 1, 0.9), ("t1", 2, 0.8), ("t1", 3, 0.7), ("t1", 4, 0.6)]
    trials = cb.writer.read(TRIALS_FILE, ["trial_id", "train_time_s", "epochs_done"]).to_pylist()
    assert trials == [{"trial_id": "t1", "train_time_s": 8.0, "epochs_done": 4}]  # the restored epochs' time counts
