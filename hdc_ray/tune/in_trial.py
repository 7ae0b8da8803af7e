"""A one-worker trial trains inside the Tune trial process itself: no Train controller, no worker group.

Ray's documented pattern for single-worker tuning (a function trainable with ``tune.with_resources``).
Reports go through Tune (``ray.tune.report``), so ASHA stops such trials. Checkpoints do not: they go to
``RESULTS/NAME/train/TRIAL_ID/checkpoints/`` (:class:`~hdc_ray.train.store.CheckpointFolder`), and a
trial that Tune starts again, after a failure or a ``--resume``, continues from the newest one there.
Tune's own checkpoints could not be trusted to survive a killed driver (issue 34; see the store's docstring).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import torch
from ray import tune

from hdc_ray.config import Config
from hdc_ray.distributed.worker import Reporter
from hdc_ray.train.batches import Shard
from hdc_ray.train.loop import fit
from hdc_ray.train.run import run_metadata
from hdc_ray.train.store import CheckpointFolder


def train_in_trial(cfg: Config, checkpoints: str, fail_at_epoch: int | None = None) -> None:
    """Train ``cfg`` in this process, resuming from and checkpointing into the folder (or URI) ``checkpoints``."""
    from hdc_ray.data import build_data

    store = CheckpointFolder(checkpoints, cfg.train.keep_checkpoints)
    resume, path, skipped = store.load_latest()
    for note in skipped:
        print(f"note: {note}", flush=True)
    if resume is not None:
        print(f"resuming after epoch {resume['epoch']} from {path}", flush=True)
    data = build_data(cfg.data, progress=False)
    meta = run_metadata(cfg, data) | {"node": socket.gethostname()}

    @contextlib.contextmanager
    def persist(state: dict[str, Any]) -> Iterator[tuple[dict[str, Any], None]]:
        yield {"checkpoint_path": store.save(state)}, None

    reporter = Reporter(tune.report, persist, Shard(), meta, fail_at_epoch, resumed=resume)
    device = torch.device("cuda" if cfg.dist.use_gpu and torch.cuda.is_available() else "cpu")
    fit(cfg, data, device=device, on_epoch=reporter, resume=resume, progress=False, log=lambda _: None)
