"""GPU code paths that can be checked on a CPU (issue 14): half-precision warps, collectives under NCCL."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import distributed as torch_dist

from hdc_ray.noise import random_affine, warp
from hdc_ray.train.evaluation import collective_device, mean_over_ranks


def test_warp_under_bf16_autocast_samples_where_float32_does() -> None:
    # Column ramp in [0, 1): a sample's value is where it was taken from. With a bfloat16 sampling grid the
    # teacher's warped pseudo-labels moved by up to ~1 px at 224 px and border pixels fell in or out of the
    # image (errors up to 0.9 of the range); a float32 grid leaves only bfloat16 rounding of the values.
    size = 224
    x = (torch.arange(size, dtype=torch.float32) / size).expand(4, 1, size, size).contiguous()
    theta = random_affine([torch.Generator().manual_seed(i) for i in range(4)], rotate_deg=15.0, scale=0.15, flip_p=0.0)
    reference = warp(x, theta)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = warp(x.bfloat16(), theta)
    assert float((got.float() - reference).abs().max()) <= 2.0**-8  # input + output rounding of values below 1
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, warp(x.bfloat16().float(), theta).bfloat16())


def test_warp_keeps_float32_results_unchanged() -> None:
    theta = torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]])  # 90 degrees
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    out = warp(x, theta)
    assert out.dtype == torch.float32
    assert torch.equal(out, torch.rot90(x, k=1, dims=(2, 3))) or torch.equal(out, torch.rot90(x, k=-1, dims=(2, 3)))


def test_collectives_use_a_cuda_tensor_under_nccl(monkeypatch: pytest.MonkeyPatch) -> None:
    # NCCL refuses CPU tensors ("No backend type associated with device type cpu"): the loop's metric
    # all-reduce built its tensor on the CPU whatever the backend, so every Ray Train GPU run failed there.
    monkeypatch.setattr(torch_dist, "get_backend", lambda group=None: "nccl")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    assert collective_device() == torch.device("cuda", 3)
    monkeypatch.setattr(torch_dist, "get_backend", lambda group=None: "gloo")
    assert collective_device() == torch.device("cpu")


def test_mean_over_ranks_with_gloo_at_world_size_1(tmp_path: Path) -> None:
    torch_dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        assert mean_over_ranks({"b": 3.0, "a": 1.5}) == {"a": 1.5, "b": 3.0}
    finally:
        torch_dist.destroy_process_group()
