"""Building the ``TorchTrainer`` for one run, and ``hdc-ray train CONFIG --workers N [--gpu] [--address]``.

The same builder serves a single distributed training and every sweep trial (``hdc_ray.tune.sweep``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hdc_ray.config import Config, with_overrides
from hdc_ray.distributed.cluster import ClusterError, check_placement, connect
from hdc_ray.distributed.worker import train_worker
from hdc_ray.outputs import check_writable
from hdc_ray.train.run import ResumeError

DEFAULT_STORAGE = "~/hdc-ray-results"


def storage_uri(path: str) -> str:
    """A URI (``s3://``, ``gs://``, ...) passes through to pyarrow; a local path becomes absolute."""
    if "://" in path:
        return path.rstrip("/")
    return str(Path(path).expanduser().resolve())


def build_trainer(
    cfg: Config,
    *,
    name: str,
    storage_path: str | None = None,
    callbacks: list[Any] | None = None,
    num_workers: int | None = None,
    loop_extra: dict[str, Any] | None = None,
) -> Any:
    """A TorchTrainer running :func:`train_worker` with the config's scaling, checkpoint and failure settings.

    ``name`` must be stable (no timestamps): a Train run restarted under the same name and storage resumes
    from its latest checkpoint. ``num_workers=0`` is Train's local mode (in-process, for tests).
    """
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    workers = cfg.dist.workers if num_workers is None else num_workers
    per_worker = {"CPU": cfg.dist.cpus_per_worker}
    return TorchTrainer(
        train_worker,
        train_loop_config={"cfg": cfg, **(loop_extra or {})},
        torch_config=TorchConfig(backend="nccl" if cfg.dist.use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=cfg.dist.use_gpu and workers > 0, resources_per_worker=per_worker),
        run_config=RunConfig(  # type: ignore[call-arg]  # mypy sees ray.air.config.RunConfig; Train V2 takes logging_config
            name=name,
            storage_path=storage_uri(storage_path or cfg.dist.storage_path or DEFAULT_STORAGE),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.train.keep_checkpoints),
            failure_config=FailureConfig(max_failures=cfg.dist.max_failures),
            callbacks=callbacks or [],
            logging_config=LoggingConfig(log_level="WARNING"),  # INFO prints every report's metrics dict per rank
        ),
    )


def train_distributed(
    cfg: Config, out: Path, *, workers: int | None = None, gpu: bool = False, address: str | None = None, resume: bool = False
) -> tuple[dict[str, Any], str]:
    """Train one config on Ray Train: checks first (seconds), then trains with per-epoch lines from rank 0.

    Returns the run summary (``metrics.json``) and the run folder. ``workers`` defaults to ``dist.workers``.
    """
    import ray

    workers = workers or cfg.dist.workers
    cfg = with_overrides(cfg, {"dist.workers": workers, "dist.use_gpu": bool(gpu or cfg.dist.use_gpu)})
    storage = storage_uri(cfg.dist.storage_path or str(out.parent))
    run_dir = f"{storage}/{out.name}"
    check_writable(run_dir, "--out")  # before Ray starts
    _check_fresh_or_resumable(run_dir, resume)
    if cfg.dist.use_gpu and address is None and not _local_gpu():
        raise ClusterError("--gpu / dist.use_gpu: no GPU on this machine (no CUDA device, or torch is a CPU build); drop --gpu to train on CPU workers (gloo)")
    connect(address)
    check_placement(workers, cfg.dist.cpus_per_worker, cfg.dist.use_gpu, ray.cluster_resources())
    print(f"Ray Train: {workers} worker(s) ({'NCCL, GPU' if cfg.dist.use_gpu else 'gloo, CPU'}), run folder {run_dir}", flush=True)
    if resume:
        _set_aside_unusable_snapshot(run_dir)
    result = build_trainer(cfg, name=out.name, storage_path=storage, loop_extra={"resume_dir": run_dir}).fit()
    if result.error is not None:
        raise ClusterError(f"training failed: {result.error}") from result.error
    summary = {k: v for k, v in result.metrics.items() if not k.startswith("best_") or k == "best_epoch"}
    summary |= {k.removeprefix("best_"): v for k, v in result.metrics.items() if k.startswith("best_val_")}
    summary["checkpoint_path"] = result.checkpoint.path if result.checkpoint else None
    if "://" not in run_dir:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary, run_dir


TRAIN_SNAPSHOT = "checkpoint_manager_snapshot.json"  # Ray Train's list of a run's checkpoints (Ray 2.60)


def _set_aside_unusable_snapshot(run_dir: str) -> None:
    """Ray Train resumes from the checkpoint its snapshot names, and refuses to start when the snapshot is not valid
    JSON (a driver killed while writing it) or names a checkpoint that is gone. Such a snapshot is renamed aside;
    the workers then resume from the newest readable ``checkpoint_*/state.pt`` of the run folder instead."""
    from pyarrow import fs

    filesystem, root = (fs.LocalFileSystem(), run_dir) if "://" not in run_dir else fs.FileSystem.from_uri(run_dir)
    path = f"{root}/{TRAIN_SNAPSHOT}"
    if filesystem.get_file_info(path).type != fs.FileType.File:
        return
    with filesystem.open_input_stream(path) as f:
        raw = f.read()
    try:
        named = [c["checkpoint_dir_name"] for c in json.loads(raw).get("checkpoint_results", [])]
        why = next((f"it names {n}, which is gone" for n in named if filesystem.get_file_info(f"{root}/{n}").type != fs.FileType.Directory), None)
    except (ValueError, KeyError, TypeError, AttributeError):
        why = "it is not valid JSON (written when the run was killed)"
    if why is not None:
        filesystem.move(path, f"{path}.unusable")
        print(f"note: --resume: Ray Train's {TRAIN_SNAPSHOT} cannot be used ({why}); set aside as {TRAIN_SNAPSHOT}.unusable, "
              "resuming from the newest readable checkpoint in the run folder", flush=True)


def _local_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _check_fresh_or_resumable(run_dir: str, resume: bool) -> None:
    """Train resumes a run of the same name by itself; make that an explicit choice, as in-process runs do."""
    if "://" in run_dir:
        return
    has_checkpoints = Path(run_dir).is_dir() and any(p.name.startswith("checkpoint_") for p in Path(run_dir).iterdir())
    if has_checkpoints and not resume:
        raise ResumeError(f"{run_dir} already holds checkpoints of a run: pass --resume to continue it, or choose another --out")
    if resume and not has_checkpoints:
        print(f"--resume: no checkpoint in {run_dir}; starting from scratch", flush=True)
    os.makedirs(run_dir, exist_ok=True)
