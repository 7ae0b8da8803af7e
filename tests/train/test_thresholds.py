"""AdaptiveThreshold under DDP: two gloo ranks, each with half the batch, hold the one-process threshold."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hdc_ray.train.thresholds import AdaptiveThreshold


def _logits(step: int) -> torch.Tensor:
    return 3.0 * torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(step))


def _rank(rank: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        state = AdaptiveThreshold(3, momentum=0.5, per_class=True)
        for step in range(3):
            state.update(_logits(step)[2 * rank : 2 * rank + 2])  # this rank's half of the global batch
        torch.save(state.state_dict(), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_ranks_hold_the_single_process_threshold(tmp_path: Path) -> None:
    whole = AdaptiveThreshold(3, momentum=0.5, per_class=True)
    for step in range(3):
        whole.update(_logits(step))
    out = str(tmp_path / "state")
    mp.start_processes(_rank, args=(str(tmp_path / "init"), out), nprocs=2, join=True, start_method="spawn")
    for rank in range(2):
        got = torch.load(f"{out}.{rank}", weights_only=True)
        assert got["updates"] == 3
        torch.testing.assert_close(got["tau"], whole.tau)
        torch.testing.assert_close(got["class_conf"], whole.class_conf)
    assert whole.tau.item() > 1 / 3  # the statistic moved it: the test compares something
