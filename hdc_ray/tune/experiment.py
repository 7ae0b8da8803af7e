"""One Tune experiment: a whole sweep, or one round of a study in rounds (``tune/rounds.py``), into the sweep's Parquet.

The per-trial driver (a Tune function that trains a one-worker trial in its own process, or builds and fits a
TorchTrainer for several workers), the Tuner built from a spec (searcher, scheduler, the Parquet callback), and its
restoration after a killed driver. ``tune/sweep.py`` and ``tune/rounds.py`` both run experiments through here, and
neither imports the other's internals.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback

from hdc_ray.console import is_verbose
from hdc_ray.distributed.cluster import ClusterError, connect
from hdc_ray.distributed.launch import build_trainer
from hdc_ray.results.dataset import read_text, write_text
from hdc_ray.tune.callback import ABANDONED, ParquetCallback, abandon_ghost_rows
from hdc_ray.tune.console import quiet_console
from hdc_ray.tune.search import abandon_running_trials, build_param_space, build_scheduler, build_searcher
from hdc_ray.tune.spec import Spec, trial_params

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
    trial_id = tune.get_context().get_trial_id()
    if sweep.spec.resources.in_trial:
        from hdc_ray.tune.in_trial import train_in_trial

        train_in_trial(cfg, f"{sweep.train_storage}/{trial_id}/checkpoints", sweep.fail_at_epoch)
        return
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


def start_ray(address: str | None, verbose: bool) -> bool:
    """Quiet the console (unless verbose) and join or start the cluster; returns the effective verbosity."""
    verbose = is_verbose(verbose)
    quiet_console(verbose)
    connect(address, log_to_driver=verbose)
    return verbose


def run_experiment(
    spec: Spec,
    *,
    name: str,
    sweep_dir: str,
    tune_name: str,
    address: str | None,
    resume: bool,
    restart: bool,
    study_storage: str | None,
    fail_at_epoch: int | None,
    verbose: bool,
    earlier: int = 0,
) -> tune.ResultGrid:
    """One Tune experiment (a whole sweep, or one round of a study) at ``sweep_dir/tune_name``, its rows in the
    sweep's Parquet. ``resume``: restore it; ``restart``: it died before Tune saved it, so start it anew."""
    import ray

    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
    concurrency = plan_concurrency(spec, cpus, gpus, may_scale=address is not None)
    if concurrency > trials_that_fit(spec, cpus, gpus):
        print(f"note: {concurrency} concurrent trials asked for, {trials_that_fit(spec, cpus, gpus)} fit on the cluster now "
              f"({cpus:g} CPU / {gpus:g} GPU); the rest wait for the autoscaler to add nodes", flush=True)
    how = "trained inside each trial" if spec.resources.in_trial else f"{spec.resources.workers} Ray Train worker(s) each"
    print(f"sweep {name!r}: {spec.n_trials()} trials, up to {concurrency} at once ({how}), results in {sweep_dir}", flush=True)
    context = SweepContext(spec, name, f"{sweep_dir}/train", fail_at_epoch)
    trainable = tune.with_resources(tune.with_parameters(trial_driver, sweep=context), _driver_resources(spec))
    tune_path = f"{sweep_dir}/{tune_name}"
    if restart:
        _abandon_ghosts(spec, name, sweep_dir, set(), study_storage)  # Tune knows none of them
    tuner = _restored_tuner(spec, name, sweep_dir, tune_path, trainable, study_storage, earlier) if resume else _new_tuner(
        spec, name, sweep_dir, tune_name, trainable, study_storage, concurrency, verbose, earlier
    )
    started = time.perf_counter()
    grid = tuner.fit()
    errors = sum(1 for i in range(len(grid)) if grid[i].error is not None)
    print(f"sweep {name!r} finished in {time.perf_counter() - started:.0f} s: {len(grid)} trials, {errors} failed; "
          f"Parquet: {sweep_dir}/trials.parquet, {sweep_dir}/history.parquet", flush=True)
    return grid


def _new_tuner(spec: Spec, name: str, sweep_dir: str, tune_name: str, trainable: Any, study_storage: str | None, concurrency: int, verbose: bool,
               earlier: int = 0) -> tune.Tuner:  # fmt: skip
    return tune.Tuner(
        trainable,
        param_space=build_param_space(spec),
        tune_config=_tune_config(spec, sweep_dir, name, study_storage, concurrency),
        run_config=tune.RunConfig(
            name=tune_name,
            storage_path=sweep_dir,
            callbacks=[ParquetCallback(spec, name, sweep_dir, verbose=verbose, earlier=earlier)],
            failure_config=tune.FailureConfig(max_failures=0),
            # No trial reports a checkpoint to Tune: in-trial runs keep their own (tune/in_trial.py), Train runs Train's.
            verbose=0,
        ),
    )


def _restored_tuner(spec: Spec, name: str, sweep_dir: str, tune_path: str, trainable: Any, study_storage: str | None, earlier: int = 0) -> tune.Tuner:
    """The interrupted experiment, its callbacks given the (checked) spec, and ghosts it never saved marked abandoned."""
    tuner = tune.Tuner.restore(tune_path, trainable=trainable, resume_unfinished=True)
    _give_callbacks_the_spec(tuner, spec, earlier)
    _abandon_ghosts(spec, name, sweep_dir, _known_trial_ids(tune_path), study_storage)
    return tuner


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
        # A new trial process per trial costs ~5 s (process start, torch import) per pair of 2-core trials:
        # 30 s of the 75 s of a 12-trial 1-epoch sweep (bench: docs/benchmarks.md, "The two README commands").
        # The trainable keeps no state between trials, so reusing the process changes no number.
        reuse_actors=True,
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


SPEC_FILE = "spec.yaml"


def save_spec(spec: Spec, sweep_dir: str) -> None:
    """``RESULTS/NAME/spec.yaml``, locally or on an object store: the spec as it runs (what a resume is checked against)."""
    text = spec.resolved_yaml()
    if read_text(sweep_dir, SPEC_FILE) != text:  # new, or a change --accept-spec-change let through
        write_text(sweep_dir, SPEC_FILE, text)


def _give_callbacks_the_spec(tuner: tune.Tuner, spec: Spec, earlier: int = 0) -> None:
    """The Parquet callback comes back from Tune's pickle with the spec of the first run; give it this one
    (identical unless --accept-spec-change), so its rows describe the trials as they now run."""
    local = getattr(tuner, "_local_tuner", None)  # Ray has no public way to reach a restored run config
    callbacks = local.get_run_config().callbacks if local is not None else None
    for callback in callbacks or []:
        if isinstance(callback, ParquetCallback):
            callback.spec, callback.earlier = spec, earlier


def _abandon_ghosts(spec: Spec, name: str, sweep_dir: str, known: set[str], study_storage: str | None) -> None:
    """Trials started after Tune's last saved state died with the driver and will never report again:
    say so in ``trials.parquet`` and in the Optuna study instead of leaving them ``running`` forever."""
    rows = abandon_ghost_rows(spec, name, sweep_dir, known)
    studies = 0
    if not spec.is_grid and (study_storage or "://" in sweep_dir or (Path(sweep_dir) / "optuna.db").exists()):
        studies = abandon_running_trials(study_storage or _default_study_storage(sweep_dir), name, known)
    if rows or studies:
        print(f"note: {rows} trial row(s) and {studies} Optuna trial(s) were started after Tune's last save and lost with the driver; marked failed ({ABANDONED})", flush=True)


def _known_trial_ids(tune_path: str) -> set[str]:
    """The trials in Tune's saved experiment state: those Tune will resume or already finished."""
    from ray.tune import ExperimentAnalysis

    return {t.trial_id for t in ExperimentAnalysis(tune_path).trials}

