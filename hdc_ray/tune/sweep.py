"""``hdc-ray sweep``: Ray Tune + Optuna over a spec; each trial trains one configuration of HDC or a baseline.

Three thin layers: the per-trial driver (a Tune function that trains a one-worker trial in its own process,
or builds and fits a TorchTrainer for several workers, whose reports reach Tune through
``TuneReportCallback``), the searcher/scheduler translation of the spec, and the Tuner. Folder layout of a
sweep ``RESULTS/NAME/``: ``trials.parquet``, ``history.parquet``, ``spec.yaml``, ``optuna.db`` (the study),
``tune/`` (Tune's experiment, for ``--resume``), ``train/`` (checkpoints, named after trial ids so a resumed
trial continues from its newest one: ``train/TRIAL_ID/checkpoints/`` in-trial, ``train/NAME-TRIAL_ID/`` for Train runs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml
from ray import tune

from hdc_ray.distributed.launch import storage_uri
from hdc_ray.outputs import check_writable
from hdc_ray.results.dataset import read_text, write_text
from hdc_ray.tune.experiment import SPEC_FILE, TUNE_DIR, plan_concurrency, run_experiment, save_spec, start_ray
from hdc_ray.tune.spec import Spec, SpecError

__all__ = ["FROZEN_SPEC_KEYS", "SPEC_CHANGES", "check_spec_unchanged", "plan_concurrency", "run_sweep", "save_spec", "spec_differences"]


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
    accept_spec_change: bool = False,
) -> tuple[str, tune.ResultGrid | None]:
    """Run (or finish, with ``resume``) a sweep; returns the sweep folder (Parquet files) and Tune's results
    (a study with ``stopping``: its last round's; None when it had already stopped).

    ``verbose``: per-epoch lines and Ray's own log lines (also ``HDC_RAY_VERBOSE=1``); by default one
    progress line at a time and the warnings that matter. ``accept_spec_change``: a resume may run with a
    spec whose base/overrides/resources differ from the stored one (recorded in ``spec_changes.yaml``).
    """
    name = name or spec.name
    sweep_dir = f"{storage_uri(results)}/{name}"
    check_writable(sweep_dir, "--results")  # before Ray starts
    if resume:
        check_spec_unchanged(spec, sweep_dir, accept=accept_spec_change)
    if spec.stopping is not None:
        from hdc_ray.tune.rounds import run_rounds

        return run_rounds(spec, name=name, sweep_dir=sweep_dir, address=address, resume=resume, study_storage=study_storage,
                          fail_at_epoch=fail_at_epoch, verbose=verbose)  # fmt: skip
    restart = resume and _died_before_first_save(f"{sweep_dir}/{TUNE_DIR}", sweep_dir)
    if restart:
        print(f"--resume: the sweep {name!r} was stopped before Tune saved its first state; starting it again", flush=True)
        resume = False
    else:
        _check_fresh_or_resumable(f"{sweep_dir}/{TUNE_DIR}", resume, name)
    verbose = start_ray(address, verbose)
    save_spec(spec, sweep_dir)
    grid = run_experiment(spec, name=name, sweep_dir=sweep_dir, tune_name=TUNE_DIR, address=address, resume=resume, restart=restart,
                          study_storage=study_storage, fail_at_epoch=fail_at_epoch, verbose=verbose)  # fmt: skip
    return sweep_dir, grid


# Parts of a spec that live inside Tune's and Optuna's saved state (the param space, the searcher, the
# scheduler, the number of samples): a restored experiment keeps the old ones whatever the new file says,
# so a change there is refused even with --accept-spec-change. The rest reaches every trial started after
# the resume (the trial config and the resources are built from the new spec).
FROZEN_SPEC_KEYS = ("space", "variants", "seeds", "objectives", "search", "scheduler")


def spec_differences(stored: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (stored value, current value) for every leaf that differs (``None``: absent)."""
    old, new = _leaves(stored), _leaves(current)
    return {k: (old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)}


def check_spec_unchanged(spec: Spec, sweep_dir: str, *, accept: bool = False) -> None:
    """A resume runs the spec it started with; refuse a changed one, naming the keys (or record an accepted one)."""
    stored_path = f"{sweep_dir}/{SPEC_FILE}"
    text = read_text(sweep_dir, SPEC_FILE)
    if text is None:
        return
    try:
        stored = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"{stored_path}: the stored spec is not valid YAML ({exc}); restore it, or start a new sweep with another --name") from None
    diff = spec_differences(stored, yaml.safe_load(spec.resolved_yaml()) or {})
    if not diff:
        return
    shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in ((k, *v) for k, v in list(diff.items())[:6])) + ("; ..." if len(diff) > 6 else "")
    frozen = [k for k in diff if k.split(".")[0] in FROZEN_SPEC_KEYS]
    if frozen:
        raise SpecError(f"--resume: the spec differs from the one this sweep started with ({stored_path}): {shown}. "
                        f"{', '.join(frozen[:4])} cannot change in a resumed sweep (Tune and Optuna keep their saved search); "
                        "rerun with the original spec, or start a new sweep with another --name")
    if not accept:
        raise SpecError(f"--resume: the spec differs from the one this sweep started with ({stored_path}): {shown}. "
                        "Rerun with the original spec, pass --accept-spec-change to run the remaining trials with the new one, or use another --name")
    _record_spec_change(sweep_dir, diff)
    print(f"note: --accept-spec-change: trials started from now on use the new spec ({shown}); recorded in {sweep_dir}/{SPEC_CHANGES}", flush=True)


SPEC_CHANGES = "spec_changes.yaml"


def _record_spec_change(folder: str, diff: dict[str, tuple[Any, Any]]) -> None:
    history = yaml.safe_load(read_text(folder, SPEC_CHANGES) or "") or []
    history.append({"at": datetime.now(UTC).isoformat(timespec="seconds"), "changes": {k: {"from": a, "to": b} for k, (a, b) in diff.items()}})
    write_text(folder, SPEC_CHANGES, yaml.safe_dump(history, sort_keys=False))


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out |= _leaves(value, f"{prefix}{key}.") if isinstance(value, dict) and value else {f"{prefix}{key}": value}
    return out


def _died_before_first_save(tune_path: str, sweep_dir: str) -> bool:
    """A started sweep (its spec.yaml is written before Tune starts, locally or on s3://) without Tune state to restore."""
    return read_text(sweep_dir, SPEC_FILE) is not None and not tune.Tuner.can_restore(tune_path)


def _check_fresh_or_resumable(tune_path: str, resume: bool, name: str) -> None:
    exists = tune.Tuner.can_restore(tune_path)
    if resume and not exists:
        raise SpecError(f"--resume: no interrupted sweep {name!r} at {tune_path}")
    if not resume and exists:
        raise SpecError(f"a sweep named {name!r} already exists at {tune_path}: pass --resume to finish it, or choose another --name")
