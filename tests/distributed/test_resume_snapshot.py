"""``hdc-ray train --workers N --resume`` after a kill (issue 34): a Ray Train snapshot that is not valid JSON or names a
checkpoint that is gone is set aside, and the workers resume from the newest readable ``checkpoint_*/state.pt``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("ray")

from hdc_ray.distributed.launch import TRAIN_SNAPSHOT, _set_aside_unusable_snapshot
from hdc_ray.distributed.worker import STATE_FILE, newest_in_run_folder
from hdc_ray.train.checkpoint import FORMAT


def _checkpoint(run: Path, name: str, epoch: int) -> None:
    (run / name).mkdir(parents=True)
    torch.save({"format": FORMAT, "epoch": epoch, "history": [{"epoch": float(e)} for e in range(1, epoch + 1)]}, run / name / STATE_FILE)


def _snapshot(run: Path, names: list[str]) -> None:
    (run / TRAIN_SNAPSHOT).write_text(json.dumps({"checkpoint_results": [{"checkpoint_dir_name": n} for n in names]}))


def test_a_usable_snapshot_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _checkpoint(tmp_path, "checkpoint_2026-12-06_10-00-00.000001", 1)
    _snapshot(tmp_path, ["checkpoint_2026-12-06_10-00-00.000001"])
    _set_aside_unusable_snapshot(str(tmp_path))
    assert (tmp_path / TRAIN_SNAPSHOT).is_file() and capsys.readouterr().out == ""


@pytest.mark.parametrize("kind", ["truncated", "names a missing checkpoint"])
def test_an_unusable_snapshot_is_set_aside_and_the_newest_readable_checkpoint_resumes(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    _checkpoint(tmp_path, "checkpoint_2026-12-06_10-00-00.000001", 1)
    _checkpoint(tmp_path, "checkpoint_2026-12-06_10-00-05.000002", 2)
    (tmp_path / "checkpoint_2026-12-06_10-00-09.000003").mkdir()  # a kill during an upload: no state.pt
    if kind == "truncated":
        (tmp_path / TRAIN_SNAPSHOT).write_text('{"checkpoint_results": [{"checkpoint_dir_na')
    else:
        _snapshot(tmp_path, ["checkpoint_2026-12-06_09-59-00.000000"])
    _set_aside_unusable_snapshot(str(tmp_path))
    assert not (tmp_path / TRAIN_SNAPSHOT).exists() and (tmp_path / f"{TRAIN_SNAPSHOT}.unusable").is_file()
    assert "cannot be used" in capsys.readouterr().out
    state = newest_in_run_folder(str(tmp_path))
    assert state is not None and state["epoch"] == 2 and len(state["history"]) == 2  # the incomplete newest one skipped


def test_no_run_folder_or_no_checkpoint_resumes_nothing(tmp_path: Path) -> None:
    assert newest_in_run_folder(None) is None and newest_in_run_folder(str(tmp_path / "absent")) is None
    (tmp_path / "checkpoint_x").mkdir()
    (tmp_path / "checkpoint_x" / STATE_FILE).write_bytes(b"torn")
    assert newest_in_run_folder(str(tmp_path)) is None
