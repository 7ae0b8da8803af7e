"""Which images each rank gets at each iteration, and their views.

Batches are drawn by GLOBAL position: iteration ``it`` of epoch ``e`` covers positions
``[it * B, (it + 1) * B)`` of an endless sequence of per-epoch permutations; rank ``r`` of ``N`` takes the
``r``-th contiguous slice. Augmentation seeds depend on the global position too, so the union over ranks
of one step is the same set of (image, view) pairs whatever ``N`` is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hdc_ray.config import Config
from hdc_ray.noise import generators, image_seeds, strong_view, weak_view
from hdc_ray.noise.seeds import FEATURE, STRONG, SUBSAMPLE, WEAK, derive_seed

LABELED, UNLABELED = 0, 1


@dataclass
class Batch:
    """One rank's share of a step. ``x``/``y`` labelled, ``u`` unlabelled; ``_w`` weak and ``_s`` strong views."""

    x_w: Tensor  # (B_l, 1, H, W)
    y_w: Tensor  # (B_l, H, W) int64
    u_w: Tensor | None  # (B_u, 1, H, W)
    u_s: Tensor | None  # (B_u, 1, H, W)
    theta_s: Tensor | None  # (B_u, 2, 3) warp from the weak to the strong frame, None if photometric only
    valid_s: Tensor | None  # (B_u, H, W) bool: strong-view pixels that came from inside the weak image
    noise_seeds: Tensor  # (B_l + B_u,) int64 feature-noise seeds
    subsample: torch.Generator  # pixel sub-sampling inside CG / MI

    @property
    def n_images(self) -> int:
        """Images the trainable network sees in this step (for throughput)."""
        return self.x_w.shape[0] + (0 if self.u_s is None else self.u_s.shape[0])


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world_size: int = 1

    def slice(self, global_batch: int) -> range:
        per_rank = global_batch // self.world_size
        return range(self.rank * per_rank, (self.rank + 1) * per_rank)


def global_indices(n: int, batch: int, seed: int, epoch: int, it: int, stream: int, iters_per_epoch: int) -> np.ndarray:
    """(batch,) pool indices for one iteration; every image is seen once before any is seen twice."""
    positions = (epoch * iters_per_epoch + it) * batch + np.arange(batch)
    out = np.empty(batch, dtype=np.int64)
    for k in np.unique(positions // n):
        perm = np.random.default_rng(derive_seed(seed, stream, int(k))).permutation(n)
        sel = positions // n == k
        out[sel] = perm[positions[sel] % n]
    return out


def make_batch(cfg: Config, data, epoch: int, it: int, shard: Shard, device: torch.device, with_unlabeled: bool) -> Batch:  # type: ignore[no-untyped-def]
    """Build this rank's batch (views included) for one iteration. ``data`` is a DataBundle."""
    tc = cfg.train
    base = (tc.seed, epoch, it)
    rows_l = shard.slice(tc.batch_labeled)
    idx_l = global_indices(len(data.labeled), tc.batch_labeled, tc.seed, epoch, it, LABELED, tc.iters_per_epoch)[rows_l.start : rows_l.stop]
    x = _to_device(data.labeled.images[idx_l], device, cfg.dist.pin_memory)[:, None]
    y = _to_device(data.labeled.masks[idx_l], device, cfg.dist.pin_memory).long()
    x_w, y_w = weak_view(x, y, generators(image_seeds(base, rows_l, WEAK), device), cfg.noise)
    noise_rows: list[int] = list(rows_l)
    u_w = u_s = theta = valid = None
    if with_unlabeled:
        rows_u = shard.slice(tc.batch_unlabeled)
        idx_u = global_indices(len(data.unlabeled), tc.batch_unlabeled, tc.seed, epoch, it, UNLABELED, tc.iters_per_epoch)[rows_u.start : rows_u.stop]
        u = _to_device(data.unlabeled.images[idx_u], device, cfg.dist.pin_memory)[:, None]
        u_w, _ = weak_view(u, None, generators(image_seeds((*base, 1), rows_u, WEAK), device), cfg.noise)
        u_s, theta, valid = strong_view(u_w, generators(image_seeds((*base, 1), rows_u, STRONG), device), cfg.noise)
        noise_rows += [tc.batch_labeled + r for r in rows_u]
    assert y_w is not None
    subsample = torch.Generator(device=device).manual_seed(derive_seed(*base, shard.rank, SUBSAMPLE))
    return Batch(x_w, y_w, u_w, u_s, theta, valid, image_seeds(base, noise_rows, FEATURE), subsample)


def _to_device(array: np.ndarray, device: torch.device, pin: bool) -> torch.Tensor:
    """Host array -> device tensor; pinned host memory lets the copy to a GPU overlap with compute."""
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return (tensor.pin_memory() if pin else tensor).to(device, non_blocking=pin)
    return tensor
