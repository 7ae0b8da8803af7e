"""The checkpoint folder sweeps resume from (issue 34): whole files only, the newest ``keep`` kept, and a
resume takes the newest checkpoint that loads, naming any it skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hdc_ray.train.checkpoint import FORMAT
from hdc_ray.train.store import CheckpointFolder


def _state(epoch: int) -> dict:
    return {"format": FORMAT, "epoch": epoch, "trainable": {"w": torch.full((2,), float(epoch))}, "history": [{"epoch": float(e)} for e in range(1, epoch + 1)]}


def test_save_keeps_the_newest_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = CheckpointFolder(str(tmp_path / "ck"), keep=2)
    assert store.names() == [] and store.load_latest() == (None, None, [])
    for epoch in (1, 2, 3, 10):
        path = store.save(_state(epoch))
        assert Path(path).is_file()
    assert store.names() == ["epoch_0003.pt", "epoch_0010.pt"]  # by epoch, not by name length
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["epoch_0003.pt", "epoch_0010.pt"]
    state, path, skipped = store.load_latest()
    assert state is not None and state["epoch"] == 10 and path == str(tmp_path / "ck" / "epoch_0010.pt") and skipped == []


def test_the_newest_unreadable_checkpoint_is_skipped_and_named(tmp_path: Path) -> None:
    store = CheckpointFolder(str(tmp_path), keep=3)
    for epoch in (1, 2, 3):
        store.save(_state(epoch))
    (tmp_path / "epoch_0003.pt").write_bytes((tmp_path / "epoch_0003.pt").read_bytes()[:50])  # a truncated copy
    (tmp_path / "epoch_0002.pt").write_bytes(b"")
    state, path, skipped = store.load_latest()
    assert state is not None and state["epoch"] == 1 and path is not None and path.endswith("epoch_0001.pt")
    assert len(skipped) == 2 and "epoch_0003.pt is unreadable" in skipped[0] and "epoch_0002.pt" in skipped[1]
    assert torch.equal(state["trainable"]["w"], torch.ones(2))


def test_a_half_written_temporary_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    store = CheckpointFolder(str(tmp_path), keep=2)
    store.save(_state(1))
    (tmp_path / ".epoch_0002.pt.tmp").write_bytes(b"half")  # a kill during a save leaves this
    assert store.names() == ["epoch_0001.pt"]
    assert store.load_latest()[0]["epoch"] == 1  # type: ignore[index]


def test_a_kill_between_write_and_prune_leaves_a_complete_checkpoint(tmp_path: Path) -> None:
    """The new checkpoint is complete before any old one is deleted: a death inside the prune loses nothing."""
    store = CheckpointFolder(str(tmp_path), keep=1)
    store.save(_state(1))

    class DiesOnDelete:
        def __init__(self, real: object) -> None:
            self.real = real

        def __getattr__(self, name: str) -> object:
            return getattr(self.real, name)

        def delete_file(self, path: str) -> None:
            raise KeyboardInterrupt  # the process dies right where the old checkpoint would go

    store._fs = DiesOnDelete(store._fs)  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        store.save(_state(2))
    assert store.names() == ["epoch_0001.pt", "epoch_0002.pt"]
    assert store.load_latest()[0]["epoch"] == 2  # type: ignore[index]
