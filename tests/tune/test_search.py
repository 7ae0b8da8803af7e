"""The Optuna searcher tags each Optuna trial with its Tune trial id and how it ended (no cluster needed)."""

from __future__ import annotations

import optuna
from ray import tune

from hdc_ray.tune.search import TaggedOptunaSearch


def _searcher() -> TaggedOptunaSearch:
    return TaggedOptunaSearch(
        space={"x": tune.uniform(0.0, 1.0)}, metric="val_dice_fg", mode="max",
        sampler=optuna.samplers.RandomSampler(seed=0), storage=optuna.storages.InMemoryStorage(), study_name="t",
    )  # fmt: skip


def test_user_attributes_name_the_tune_trial_and_its_end() -> None:
    searcher = _searcher()
    for tid in ("full", "stopped", "broken"):
        assert searcher.suggest(tid) is not None
    searcher.on_trial_complete("full", {"val_dice_fg": 0.8, "epoch": 4.0, "done": 1.0})
    searcher.on_trial_complete("stopped", {"val_dice_fg": 0.3, "epoch": 1.0})  # ASHA stopped it: no final report
    searcher.on_trial_complete("broken", None, error=True)
    attrs = {t.user_attrs["tune_trial_id"]: (t.user_attrs["tune_status"], t.state) for t in searcher._ot_study.trials}
    assert attrs == {
        "full": ("completed", optuna.trial.TrialState.COMPLETE),
        "stopped": ("early_stopped", optuna.trial.TrialState.COMPLETE),  # Ray tells Optuna COMPLETE: the tag says why
        "broken": ("failed", optuna.trial.TrialState.FAIL),
    }


def test_a_trial_the_killed_driver_already_finished_keeps_its_first_result() -> None:
    """A resumed sweep's searcher (restored from a state saved while the trial ran) reports a trial that the study's live
    database already holds as finished: once this crashed the resume with UpdateFinishedTrialError."""
    searcher = _searcher()
    assert searcher.suggest("t1") is not None
    study = searcher._ot_study
    assert study is not None
    study.tell(searcher._ot_trials["t1"], 0.7)  # what the killed driver did after Tune's last save
    searcher.on_trial_complete("t1", {"val_dice_fg": 0.5, "done": 1.0})  # the resumed run of it
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 0.7 and "tune_status" not in trial.user_attrs
