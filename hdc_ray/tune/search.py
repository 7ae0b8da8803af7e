"""Translating a :class:`~hdc_ray.tune.spec.Spec` into Tune's param space, an OptunaSearch and ASHA."""

from __future__ import annotations

from typing import Any

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Repeater, Searcher
from ray.tune.search.optuna import OptunaSearch

from hdc_ray.tune.spec import Dist, Spec


def build_param_space(spec: Spec) -> dict[str, Any]:
    """Dotted config keys -> Tune domains. Grid specs cross variants x seeds x grid values."""
    space = {key: _domain(dist, spec.is_grid) for key, dist in spec.space.items()}
    if spec.is_grid and spec.exclude:  # Tune crosses grid axes fully: pass the remaining cells as one axis
        space = {k: v for k, v in space.items() if spec.space[k].kind != "grid"}
        space["cell"] = tune.grid_search(spec.grid_cells())
        space["train.seed"] = tune.grid_search(list(spec.seeds))
    elif spec.is_grid:
        if spec.variants:
            space["variant"] = tune.grid_search(list(spec.variants))
        space["train.seed"] = tune.grid_search(list(spec.seeds))
    elif len(spec.seeds) == 1:
        space["train.seed"] = spec.seeds[0]
    return space  # several seeds per Optuna config: the Repeater sets __trial_index__ -> seed


def _domain(dist: Dist, grid: bool) -> Any:
    if dist.kind == "fixed":
        return dist.args[0]
    if dist.kind in ("grid", "choice") and grid:
        return tune.grid_search(list(dist.args))
    low, high = dist.args[0], dist.args[-1]
    if dist.kind == "uniform":
        return tune.uniform(low, high)
    if dist.kind == "loguniform":
        return tune.loguniform(low, high)
    if dist.kind == "int":
        return tune.randint(low, high + 1)  # Tune's randint excludes the upper bound; the spec includes it
    return tune.choice(list(dist.args))


def build_sampler(spec: Spec) -> optuna.samplers.BaseSampler:
    seed = spec.sampler_seed
    if spec.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, spec.trials // 3)))


class TaggedOptunaSearch(OptunaSearch):
    """OptunaSearch whose Optuna trials carry the Tune trial id and how the Tune trial ended.

    User attributes ``tune_trial_id`` and ``tune_status`` (completed / early_stopped / failed) make the
    study join ``trials.parquet`` in optuna-dashboard or pandas: ASHA-stopped trials are told to Optuna as
    COMPLETE with their truncated value (Ray's behaviour), so without the tag they look finished. With
    several seeds (Repeater), one Optuna trial stands for ``len(seeds)`` Tune trials: the tag is the first.
    """

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        if trial_id in self._ot_trials:
            self._ot_trials[trial_id].set_user_attr("tune_trial_id", trial_id)
        return config

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._ot_trials and trial_id not in self._completed_trials:
            if self._finished_in_storage(trial_id):
                # A resumed sweep: the killed driver told Optuna this trial's result after Tune's last saved state, so the
                # restored searcher thinks it still runs while the study (a live database) has it finished. Keep the first.
                self._completed_trials.add(trial_id)
                return
            status = "failed" if error else "completed" if result and result.get("done") == 1 else "early_stopped"
            self._ot_trials[trial_id].set_user_attr("tune_status", status)
        super().on_trial_complete(trial_id, result, error)

    def _finished_in_storage(self, trial_id: str) -> bool:
        ot_trial, study = self._ot_trials[trial_id], self._ot_study
        assert study is not None  # set once the searcher has a space (it suggested this trial)
        state = study._storage.get_trial(ot_trial._trial_id).state  # Optuna has no public "trial by id" lookup
        return bool(state.is_finished())


def abandon_running_trials(storage_url: str, study_name: str, known: set[str]) -> int:
    """Optuna trials left RUNNING by a killed driver, whose Tune trial the restored experiment does not know:
    set to FAIL with ``tune_status`` "abandoned" (a RUNNING trial of a known, unfinished Tune trial is left
    to finish). Returns how many were changed."""
    storage = optuna.storages.RDBStorage(storage_url)
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:  # the driver died before Optuna created the study
        return 0
    changed = 0
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get("tune_trial_id") in known:
            continue
        storage.set_trial_user_attr(trial._trial_id, "tune_status", "abandoned")
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        changed += 1
    return changed


def build_searcher(spec: Spec, storage_url: str, study_name: str) -> Searcher:
    metrics = [o.searcher_metric for o in spec.objectives]
    modes = [o.mode for o in spec.objectives]
    searcher: Searcher = TaggedOptunaSearch(
        metric=metrics if spec.multi_objective else metrics[0],
        mode=modes if spec.multi_objective else modes[0],
        sampler=build_sampler(spec),
        storage=optuna.storages.RDBStorage(storage_url),
        study_name=study_name,
    )
    if len(spec.seeds) > 1:
        searcher = Repeater(searcher, repeat=len(spec.seeds), set_index=True)
    return searcher


def build_scheduler(spec: Spec) -> TrialScheduler | None:
    sch = spec.scheduler
    if sch.kind != "asha":
        return None
    max_t = sch.max_t or spec.base_config().train.epochs
    return ASHAScheduler(
        time_attr="epoch", metric=sch.metric, mode=sch.mode, max_t=max_t,
        grace_period=min(sch.grace_period, max_t), reduction_factor=sch.reduction_factor,
    )
