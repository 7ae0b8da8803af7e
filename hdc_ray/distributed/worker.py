"""The function every Ray Train worker runs: the pure loop of ``hdc_ray.train.loop`` plus Ray's plumbing.

Ray provides the process group (gloo on CPU, NCCL on GPU), the rank, the device and the checkpoint to
resume from; this module turns them into the loop's ``Shard``, ``wrap`` and ``resume`` arguments and turns
each epoch record into a ``ray.train.report`` (metrics from every rank, the checkpoint from rank 0 only).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hdc_ray.config import Config
from hdc_ray.results.rows import RESTORED_EPOCHS
from hdc_ray.train import checkpoint
from hdc_ray.train.batches import Shard
from hdc_ray.train.loop import fit
from hdc_ray.train.run import run_metadata

STATE_FILE = "state.pt"


def train_worker(config: dict[str, Any]) -> None:
    """``train_loop_per_worker`` of the TorchTrainer. ``config``: ``cfg`` (a Config), optional ``fail_at_epoch``."""
    from hdc_ray.data import build_data

    cfg: Config = config["cfg"]
    _quiet_report_logging()
    context = ray.train.get_context()
    shard = Shard(context.get_world_rank(), context.get_world_size())
    device = ray.train.torch.get_device() if cfg.dist.use_gpu else torch.device("cpu")
    resume = latest_state(ray.train.get_checkpoint()) or newest_in_run_folder(config.get("resume_dir"))
    data = build_data(cfg.data)
    meta = run_metadata(cfg, data) | {"node": socket.gethostname()}
    reporter = Reporter(ray.train.report, train_checkpoint, shard, meta, config.get("fail_at_epoch"), resumed=resume)
    fit(
        cfg, data, device=device, shard=shard, wrap=_ddp(device) if shard.world_size > 1 else None,
        on_epoch=reporter, resume=resume, progress=False, log=print if shard.rank == 0 else _quiet,
    )


def _quiet_report_logging() -> None:
    """Train V2 logs each report's whole metrics dict at INFO, per rank, under a logger named after its
    file (``ray/train/v2/_internal/execution/context.py``) that ``LoggingConfig`` does not reach."""
    with contextlib.suppress(ImportError):
        from ray.train.v2._internal.execution import context

        logging.getLogger(context.__file__).setLevel(logging.WARNING)


def _ddp(device: torch.device):  # type: ignore[no-untyped-def]
    def wrap(net: nn.Module) -> nn.Module:
        # Only the student is wrapped: the EMA teacher is updated identically on every rank from the
        # all-reduced student weights, so it never needs to communicate.
        return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)

    return wrap


def newest_in_run_folder(run_dir: str | None) -> dict[str, Any] | None:
    """The newest readable ``checkpoint_*/state.pt`` of a run folder: the resume point when Ray Train's snapshot was
    set aside (``launch._set_aside_unusable_snapshot``); None when there is none (or no folder was given)."""
    from pyarrow import fs

    if not run_dir:
        return None
    filesystem, root = (fs.LocalFileSystem(), run_dir) if "://" not in run_dir else fs.FileSystem.from_uri(run_dir)
    infos = filesystem.get_file_info(fs.FileSelector(root, allow_not_found=True))
    for name in sorted((i.base_name for i in infos if i.type == fs.FileType.Directory and i.base_name.startswith("checkpoint_")), reverse=True):
        try:
            with filesystem.open_input_stream(f"{root}/{name}/{STATE_FILE}") as f:
                return checkpoint.load(io.BytesIO(f.read()), label=f"{run_dir}/{name}/{STATE_FILE}")
        except (OSError, checkpoint.CheckpointError):
            continue
    return None


def latest_state(found: Any) -> dict[str, Any] | None:
    """The loop's resume state from a Ray (Train or Tune) checkpoint, or None for a fresh start."""
    if found is None:
        return None
    with found.as_directory() as folder:
        return checkpoint.load(Path(folder) / STATE_FILE)


Persist = Callable[[dict[str, Any]], AbstractContextManager[tuple[dict[str, Any], Any]]]


@contextlib.contextmanager
def train_checkpoint(state: dict[str, Any]) -> Iterator[tuple[dict[str, Any], Any]]:
    """A Ray Train checkpoint of ``state`` (a folder Train uploads to the run's storage during the report)."""
    with tempfile.TemporaryDirectory(prefix="hdc-ckpt-") as folder:
        checkpoint.save_atomic(state, Path(folder) / STATE_FILE)
        yield {}, ray.train.Checkpoint.from_directory(folder)


class Reporter:
    """The loop's ``on_epoch``: every rank reports (Train requires it), rank 0 persists the checkpoint.

    ``report`` is Train's ``ray.train.report`` in a Train worker and Tune's ``ray.tune.report`` when a
    one-worker trial trains inside the Tune trial. ``persist(state)`` is a context manager giving the
    metrics and the framework checkpoint (or None) of a snapshot for the duration of the report.
    ``resumed``: the snapshot this attempt resumed from; its epoch records ride on the first report, so the
    sweep's history holds every epoch even when the driver died before it wrote the ones before the kill.
    """

    def __init__(self, report: Callable[..., None], persist: Persist, shard: Shard, meta: dict[str, Any], fail_at_epoch: int | None,
                 resumed: dict[str, Any] | None) -> None:  # fmt: skip
        self.report, self.persist = report, persist
        self.shard, self.meta, self.fail_at_epoch = shard, meta, fail_at_epoch
        self.first_attempt = resumed is None
        self._restored = list(resumed.get("history", [])) if resumed else []

    def __call__(self, record: dict[str, float], state: dict[str, Any] | None) -> None:
        self._maybe_fail(int(record["epoch"]))
        metrics = {**record, **self.meta}
        if self._restored and self.shard.rank == 0:
            metrics[RESTORED_EPOCHS] = json.dumps(self._restored)
            self._restored = []
        if state is None or self.shard.rank != 0:
            self.report(metrics, checkpoint=None)
            return
        with self.persist(state) as (extra, saved):
            self.report({**metrics, **extra}, checkpoint=saved)

    def _maybe_fail(self, epoch: int) -> None:
        """Fault injection for tests: the last rank dies hard at ``fail_at_epoch`` on the first attempt only."""
        if self.first_attempt and epoch == self.fail_at_epoch and self.shard.rank == self.shard.world_size - 1:
            print(f"fault injection: rank {self.shard.rank} exits at epoch {epoch}", flush=True)
            os._exit(1)


def _quiet(_: str) -> None:
    pass
