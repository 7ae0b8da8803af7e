"""A one-worker trial trains inside the Tune trial process itself: no Train controller, no worker group.

Ray's documented pattern for single-worker tuning (a function trainable with ``tune.with_resources``).
Reports and checkpoints go through Tune (``ray.tune.report`` / ``ray.tune.get_checkpoint``), so ASHA
stops such trials and ``--resume`` continues them from their last checkpoint exactly like Train trials.
"""

from __future__ import annotations

import socket

import torch
from ray import tune

from hdc_ray.config import Config
from hdc_ray.distributed.worker import Reporter, latest_state
from hdc_ray.train.batches import Shard
from hdc_ray.train.loop import fit
from hdc_ray.train.run import run_metadata


def train_in_trial(cfg: Config, fail_at_epoch: int | None = None) -> None:
    from hdc_ray.data import build_data

    resume = latest_state(tune.get_checkpoint())
    data = build_data(cfg.data, progress=False)
    meta = run_metadata(cfg, data) | {"node": socket.gethostname()}
    reporter = Reporter(tune.report, tune.Checkpoint, Shard(), meta, fail_at_epoch, first_attempt=resume is None)
    device = torch.device("cuda" if cfg.dist.use_gpu and torch.cuda.is_available() else "cpu")
    fit(cfg, data, device=device, on_epoch=reporter, resume=resume, progress=False, log=lambda _: None)
