"""Evaluation over a whole split (every rank scores a share, cases are gathered) and model selection.

Selection uses the validation split only (``train.select_metric``); the test split scores the selected
weights once, at the end.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import distributed as torch_dist
from torch.nn import functional as F

from hdc_ray.config import Config
from hdc_ray.metrics import aggregate, evaluate_case
from hdc_ray.model import SegNet
from hdc_ray.results.columns import higher_is_better
from hdc_ray.train.batches import Shard
from hdc_ray.train.checkpoint import TrainState
from hdc_ray.train.methods import Models, scored_net


@torch.no_grad()
def evaluate(net: SegNet, dataset: Any, class_names: tuple[str, ...], cfg: Config, device: torch.device, shard: Shard = Shard(), prefix: str = "val") -> dict[str, float]:
    """Metrics over the WHOLE split: each rank scores every N-th image, the cases are gathered, then averaged.

    Predictions are made at training size and resized (nearest) to each image's native size before scoring.
    """
    was_training = net.training
    net.eval()
    indices = list(range(shard.rank, len(dataset), shard.world_size))
    cases = []
    for start in range(0, len(indices), cfg.eval.batch_size):
        chunk = indices[start : start + cfg.eval.batch_size]
        x = torch.from_numpy(dataset.images[chunk])[:, None].to(device)
        pred = net(x).logits.argmax(1)  # (B, H, W)
        for i, p in zip(chunk, pred, strict=True):
            cases.append(_score(p, dataset, i, class_names, cfg))
    net.train(was_training)
    metrics = aggregate(_gather(cases))
    return {f"{prefix}_{k}": float(v) for k, v in metrics.items()}


def _score(pred: torch.Tensor, dataset: Any, i: int, class_names: tuple[str, ...], cfg: Config) -> dict[str, float]:
    gt = dataset.native_masks[i] if dataset.native_masks is not None else dataset.masks[i]
    if tuple(pred.shape) != gt.shape:
        pred = F.interpolate(pred[None, None].float(), size=gt.shape, mode="nearest")[0, 0].long()
    penalty: str | float = cfg.eval.empty_penalty
    if penalty not in ("diagonal", "inf"):
        penalty = float(penalty)
    return evaluate_case(
        pred.cpu().numpy(), gt, class_names, dataset.spacing[i],
        hd_percentile=cfg.eval.hd_percentile, hd_convention=cfg.eval.hd_convention, empty_penalty=penalty,
    )


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=collective_device())
    torch_dist.all_reduce(t)
    return {k: float(v) / torch_dist.get_world_size() for k, v in zip(keys, t, strict=True)}


def collective_device() -> torch.device:
    """Where a tensor for a collective must live: NCCL reduces CUDA tensors only (a CPU tensor fails with
    "No backend type associated with device type cpu"), gloo reduces CPU tensors. Ray Train sets each
    worker's current CUDA device before the loop starts."""
    if torch_dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _gather(cases: list[dict[str, float]]) -> list[dict[str, float]]:
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return cases
    parts: list[Any] = [None] * torch_dist.get_world_size()
    torch_dist.all_gather_object(parts, cases)
    return [c for part in parts for c in part]


def update_best(cfg: Config, state: TrainState, epoch: int, val: dict[str, float], models: Models) -> None:
    """Keep the weights of the best validation epoch so far (``train.select_metric``)."""
    name = cfg.train.select_metric
    if name not in val:
        raise KeyError(f"train.select_metric {name!r} is not among the validation metrics {sorted(val)}")
    value = val[name] if higher_is_better(name) else -val[name]
    if value > state.best_value or state.best_epoch == 0:
        state.best_value, state.best_epoch, state.best_val = value, epoch, dict(val)
        net = scored_net(cfg, models)
        state.best_weights = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def test_best(cfg: Config, data: Any, models: Models, state: TrainState, device: torch.device, shard: Shard) -> dict[str, float]:
    """Test metrics of the weights selected on validation (a copy: the training weights stay as they are)."""
    net = copy.deepcopy(scored_net(cfg, models))
    if state.best_weights:
        net.load_state_dict(state.best_weights)
    return evaluate(net, data.test, data.class_names, cfg, device, shard, "test")


test_best.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name
