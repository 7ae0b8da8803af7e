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
from hdc_ray.noise import cutmix, cutmix_box, generators, image_seeds, jitter_view, strong_view, weak_view
from hdc_ray.noise.seeds import CUTMIX, CUTMIX2, FEATURE, STRONG, STRONG2, SUBSAMPLE, WEAK, derive_seed

# Index streams: labelled, unlabelled, and the second unlabelled batch FixMatch / UniMatch cut-mix with.
LABELED, UNLABELED, MIX = 0, 1, 2
WEAK_TO_STRONG = ("fixmatch", "unimatch")  # pseudo-labels from the network's own weak view; UniMatch strong views


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
    # FixMatch / UniMatch only: u_s (and UniMatch's u_s2) are UniMatch strong views of u_w, cut-mixed inside
    # box_s (box_s2) with the strong views of a second unlabelled batch, whose weak view is u_w_mix.
    u_s2: Tensor | None = None  # (B_u, 1, H, W)
    u_w_mix: Tensor | None = None  # (B_u, 1, H, W)
    box_s: Tensor | None = None  # (B_u, H, W) bool
    box_s2: Tensor | None = None  # (B_u, H, W) bool

    @property
    def n_images(self) -> int:
        """Images the trainable network sees in this step (for throughput); FixMatch / UniMatch's network
        also sees the weak view it draws its pseudo-labels from."""
        views = [self.x_w, self.u_s, self.u_s2, self.u_w if self.u_w_mix is not None else None]
        return sum(v.shape[0] for v in views if v is not None)


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
    peers: dict[str, Tensor | None] = {}
    if with_unlabeled:
        rows_u = shard.slice(tc.batch_unlabeled)
        u_w = _unlabeled_weak(cfg, data, epoch, it, rows_u, UNLABELED, device)
        if tc.method in WEAK_TO_STRONG:
            peers = _weak_to_strong_views(cfg, data, epoch, it, rows_u, u_w, device)
            u_s = peers.pop("u_s")
        else:
            u_s, theta, valid = strong_view(u_w, generators(image_seeds((*base, 1), rows_u, STRONG), device), cfg.noise)
        noise_rows += [tc.batch_labeled + r for r in rows_u]
    assert y_w is not None
    subsample = torch.Generator(device=device).manual_seed(derive_seed(*base, shard.rank, SUBSAMPLE))
    return Batch(x_w, y_w, u_w, u_s, theta, valid, image_seeds(base, noise_rows, FEATURE), subsample, **peers)


def _unlabeled_weak(cfg: Config, data, epoch: int, it: int, rows: range, stream: int, device: torch.device) -> Tensor:  # type: ignore[no-untyped-def]
    """Weak views (B, 1, H, W) of this rank's rows of the unlabelled batch drawn from index ``stream``."""
    tc = cfg.train
    idx = global_indices(len(data.unlabeled), tc.batch_unlabeled, tc.seed, epoch, it, stream, tc.iters_per_epoch)[rows.start : rows.stop]
    u = _to_device(data.unlabeled.images[idx], device, cfg.dist.pin_memory)[:, None]
    u_w, _ = weak_view(u, None, generators(image_seeds((tc.seed, epoch, it, stream), rows, WEAK), device), cfg.noise)
    return u_w


def _weak_to_strong_views(cfg: Config, data, epoch: int, it: int, rows: range, u_w: Tensor, device: torch.device) -> dict[str, Tensor | None]:  # type: ignore[no-untyped-def]
    """FixMatch / UniMatch: strong views of ``u_w`` (two for UniMatch), each cut-mixed with the same strong
    view of a second unlabelled batch (UniMatch's ``img_u_s1_mix``), whose weak view gives the box's pseudo-labels."""
    base = (cfg.train.seed, epoch, it)
    u_w_mix = _unlabeled_weak(cfg, data, epoch, it, rows, MIX, device)
    out: dict[str, Tensor | None] = {"u_w_mix": u_w_mix}
    views = (("u_s", "box_s", STRONG, CUTMIX), ("u_s2", "box_s2", STRONG2, CUTMIX2))
    for name, box_name, strong, box_stream in views[: 1 + (cfg.train.method == "unimatch")]:
        s = jitter_view(u_w, generators(image_seeds((*base, UNLABELED), rows, strong), device))
        s_mix = jitter_view(u_w_mix, generators(image_seeds((*base, MIX), rows, strong), device))
        h, w = u_w.shape[-2:]
        box = torch.stack([cutmix_box(g, h, w, cfg.noise) for g in generators(image_seeds((*base, UNLABELED), rows, box_stream))]).to(device)
        out[name], out[box_name] = cutmix(s, s_mix, box), box
    return out


def _to_device(array: np.ndarray, device: torch.device, pin: bool) -> torch.Tensor:
    """Host array -> device tensor; pinned host memory lets the copy to a GPU overlap with compute."""
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return (tensor.pin_memory() if pin else tensor).to(device, non_blocking=pin)
    return tensor
