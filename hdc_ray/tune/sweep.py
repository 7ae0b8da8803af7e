"""``hdc-ray sweep``: Ray Tune + Optuna over a spec; each trial is a Ray Train run of HDC.

Three thin layers: the per-trial driver (a Tune function that builds and fits a TorchTrainer, whose
reports reach Tune through ``TuneReportCallback``), the searcher/scheduler translation of the spec, and the
Tuner. Folder layout of a sweep ``RESULTS/NAME/``: ``trials.parquet``, ``history.parquet``, ``spec.yaml``,
``optuna.db`` (the study), ``tune/`` (Tune's experiment, for ``--resume``), ``train/`` (Train runs and
checkpoints, named after trial ids so a resumed trial continues from its checkpoint).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback

from hdc_ray.distributed.cluster import ClusterError, connect
from hdc_ray.distributed.launch import build_trainer, storage_uri
from hdc_ray.tune.callback import ParquetCallback
from hdc_ray.tune.console import is_verbose, quiet_console
from hdc_ray.tune.search import build_param_space, build_scheduler, build_searcher
from hdc_ray.tune.spec import Spec, SpecError, trial_params

TUNE_DIR = "tune"


@dataclass(frozen=True)
class SweepContext:
    """What every trial driver needs, passed once through the object store (``tune.with_parameters``)."""

    spec: Spec
    name: str
    train_storage: str
    fail_at_epoch: int | None = None  # fault-injection hook for tests


def trial_driver(params: dict[str, Any], sweep: SweepContext) -> None:
    """One trial: resolve its config, then train it here (one worker) or on Ray Train (several workers)."""
    cfg = sweep.spec.trial_config(trial_params(sweep.spec, params))
    if sweep.spec.resources.in_trial:
        from hdc_ray.tune.in_trial import train_in_trial

        train_in_trial(cfg, sweep.fail_at_epoch)
        return
    trial_id = tune.get_context().get_trial_id()
    extra = {"fail_at_epoch": sweep.fail_at_epoch} if sweep.fail_at_epoch else None
    trainer = build_trainer(cfg, name=f"{sweep.name}-{trial_id}", storage_path=sweep.train_storage, callbacks=[TuneReportCallback()], loop_extra=extra)
    result = trainer.fit()
    if result.error is not None:
        raise result.error


def plan_concurrency(spec: Spec, cluster_cpus: float, cluster_gpus: float, *, may_scale: bool = False) -> int:
    """Never more trials at once than the cluster can place: (driver + workers) per trial.

    ``may_scale``: the cluster is an existing one (``--address``) that may autoscale. Such clusters start
    without their GPU workers, so what fits *now* says nothing; an explicit ``search.concurrency`` is then
    the user's statement of what the cluster grows to, and Tune queues trials until the nodes join.
    """
    fits = trials_that_fit(spec, cluster_cpus, cluster_gpus)
    if may_scale and spec.concurrency:
        return min(spec.concurrency, spec.n_trials())
    if fits < 1:
        r = spec.resources
        need = f"{r.per_trial_cpus():g} CPU" + (f" and {r.workers * r.gpus_per_worker:g} GPU" if r.gpus_per_worker else "")
        hint = "; on an autoscaling cluster set search.concurrency to what it scales to" if may_scale else ""
        raise ClusterError(f"one trial needs {need} but the cluster has {cluster_cpus:g} CPU / {cluster_gpus:g} GPU; lower resources.workers or cpus_per_worker{hint}")
    return max(1, min(spec.concurrency or fits, fits, spec.n_trials()))


def trials_that_fit(spec: Spec, cluster_cpus: float, cluster_gpus: float) -> int:
    r = spec.resources
    fit_cpu = math.floor(cluster_cpus / r.per_trial_cpus() + 1e-9)
    fit_gpu = math.floor(cluster_gpus / (r.workers * r.gpus_per_worker)) if r.gpus_per_worker > 0 else fit_cpu
    return min(fit_cpu, fit_gpu)


def run_sweep(
    spec: Spec,
    *,
    results: str,
    name: str | None = None,
    address: str | None = None,
    resume: bool = False,
    study_storage: str | None = None,
    fail_at_epoch: int | None = None,
    verbose: bool = False,
) -> tuple[str, tune.ResultGrid]:
    """Run (or finish, with ``resume``) a sweep; returns the sweep folder (Parquet files) and Tune's results.

    ``verbose``: per-epoch lines and Ray's own log lines (also ``HDC_RAY_VERBOSE=1``); by default one
    progress line at a time and the warnings that matter.
    """
    import ray

    name = name or spec.name
    sweep_dir = f"{storage_uri(results)}/{name}"
    tune_path = f"{sweep_dir}/{TUNE_DIR}"
    _check_fresh_or_resumable(tune_path, resume, name)
    verbose = is_verbose(verbose)
    quiet_console(verbose)
    connect(address, log_to_driver=verbose)
    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
    concurrency = plan_concurrency(spec, cpus, gpus, may_scale=address is not None)
    if concurrency > trials_that_fit(spec, cpus, gpus):
        print(f"note: {concurrency} concurrent trials asked for, {trials_that_fit(spec, cpus, gpus)} fit on the cluster now "
              f"({cpus:g} CPU / {gpus:g} GPU); the rest wait for the autoscaler to add nodes", flush=True)
    how = "trained inside each trial" if spec.resources.in_trial else f"{spec.resources.workers} Ray Train worker(s) each"
    print(f"sweep {name!r}: {spec.n_trials()} trials, up to {concurrency} at once ({how}), results in {sweep_dir}", flush=True)
    _save_spec(spec, sweep_dir)
    context = SweepContext(spec, name, f"{sweep_dir}/train", fail_at_epoch)
    trainable = tune.with_resources(tune.with_parameters(trial_driver, sweep=context), _driver_resources(spec))
    if resume:
        tuner = tune.Tuner.restore(tune_path, trainable=trainable, resume_unfinished=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=build_param_space(spec),
            tune_config=_tune_config(spec, sweep_dir, name, study_storage, concurrency),
            run_config=tune.RunConfig(
                name=TUNE_DIR,
                storage_path=sweep_dir,
                callbacks=[ParquetCallback(spec, name, sweep_dir, verbose=verbose)],
                failure_config=tune.FailureConfig(max_failures=0),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.base_config().train.keep_checkpoints),  # in-trial runs
                verbose=0,
            ),
        )
    started = time.perf_counter()
    grid = tuner.fit()
    errors = sum(1 for i in range(len(grid)) if grid[i].error is not None)
    print(f"sweep {name!r} finished in {time.perf_counter() - started:.0f} s: {len(grid)} trials, {errors} failed; "
          f"Parquet: {sweep_dir}/trials.parquet, {sweep_dir}/history.parquet", flush=True)
    return sweep_dir, grid


def _tune_config(spec: Spec, sweep_dir: str, name: str, study_storage: str | None, concurrency: int) -> tune.TuneConfig:
    searcher = None if spec.is_grid else build_searcher(spec, study_storage or _default_study_storage(sweep_dir), name)
    # metric/mode live in the searcher (and ASHA has its own): setting them here as well would silently turn
    # a multi-objective Optuna study into a single-objective one.
    return tune.TuneConfig(
        search_alg=searcher,
        scheduler=build_scheduler(spec),
        num_samples=1 if spec.is_grid else spec.n_trials(),
        max_concurrent_trials=concurrency,
        trial_name_creator=_trial_name,
        trial_dirname_creator=_trial_name,
    )


def _trial_name(trial: Any) -> str:
    return str(trial.trial_id)


def _driver_resources(spec: Spec) -> tune.PlacementGroupFactory:
    """The trial process: a light driver of a Train run, or the one worker itself when it trains in-trial."""
    r = spec.resources
    bundle: dict[str, float] = {"CPU": r.per_trial_cpus()} if r.in_trial else {"CPU": r.driver_cpus}
    if r.in_trial and r.gpus_per_worker > 0:
        bundle["GPU"] = r.gpus_per_worker
    if r.driver_resource:
        bundle[r.driver_resource] = 1.0
    return tune.PlacementGroupFactory([bundle])


def _default_study_storage(sweep_dir: str) -> str:
    if "://" in sweep_dir:
        # SQLite needs a local file; keep the study next to the driver and say so.
        local = Path("~/.cache/hdc-ray/optuna").expanduser()
        local.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{local / (sweep_dir.rstrip('/').rsplit('/', 1)[-1] + '.db')}"
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(sweep_dir) / 'optuna.db'}"


def _check_fresh_or_resumable(tune_path: str, resume: bool, name: str) -> None:
    exists = tune.Tuner.can_restore(tune_path)
    if resume and not exists:
        raise SpecError(f"--resume: no interrupted sweep {name!r} at {tune_path}")
    if not resume and exists:
        raise SpecError(f"a sweep named {name!r} already exists at {tune_path}: pass --resume to finish it, or choose another --name")


def _save_spec(spec: Spec, sweep_dir: str) -> None:
    if "://" in sweep_dir:
        return
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    target = Path(sweep_dir) / "spec.yaml"
    if not target.exists():
        target.write_text(spec.resolved_yaml())

