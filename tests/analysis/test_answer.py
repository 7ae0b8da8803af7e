"""The Answer in words: every budget stated, the error rate named, adjusted intervals first, labels saved only where a
gain is claimed, convergence, lost classes, and next-round commands that do what they say."""

from __future__ import annotations

import pandas as pd
import pytest
from study_fakes import POOL, SUP, shifted, study

from hdc_ray.analysis.answer import build_answer
from hdc_ray.analysis.evidence import t_interval
from hdc_ray.analysis.evidence.advice import advise
from hdc_ray.analysis.render import SweepHint

CLEAR = (0.09, 0.11, 0.10, 0.12, 0.08, 0.10)
NOISE = (0.02, -0.02, 0.01, -0.01, 0.03, -0.03)


def test_headline_states_every_budget_and_never_the_luckiest_alone() -> None:
    answer = build_answer(study({4: shifted(4, CLEAR), 8: shifted(8, NOISE), 16: shifted(16, NOISE)}), "test_dice_fg")
    (line,) = answer.headline
    assert line.split("**")[1] == "hdc vs supervised: ahead at 4 labelled images; not established at 8 and 16 labelled images."
    assert line.index("@4 images") < line.index("@8 images") < line.index("@16 images")
    assert "+10.0 points (adjusted +" in line and "at level 1.7%; raw 95% +8.5 to +11.5; ahead on 6 of 6 splits)" in line
    assert line.count("fewer labels") == 1  # labels saved only where the gain is claimed


def test_the_error_rate_controlled_is_named() -> None:
    answer = build_answer(study({4: shifted(4, CLEAR), 8: shifted(8, NOISE)}), "test_dice_fg")
    assert answer.control.startswith("Error control: at most a 5% chance that any claim here is wrong, over the 2 comparisons")
    assert answer.lines().index(answer.control) == 1  # right after the headline


def test_no_claim_says_no_saving_shown_and_how_many_splits_would_decide() -> None:
    (line,) = build_answer(study({4: shifted(4, (0.03, 0.01, 0.02, 0.0, 0.04, 0.01)), 8: shifted(8, NOISE)}), "test_dice_fg").headline
    assert "no saving shown at any measured budget (4 and 8 labelled images): no adjusted interval excludes zero" in line
    assert "fewer labels" not in line and "splits in all would decide it if this mean and spread held" in line


def test_three_splits_claim_nothing_and_the_next_round_is_a_command() -> None:
    sup = {n: v[:3] for n, v in SUP.items()}
    answer = build_answer(study({4: [s + 0.1 for s in sup[4]]}, sup), "test_dice_fg", hint=SweepHint("study", "demo", "results", 8))
    (line,) = answer.headline
    assert "not established with 3 split(s) at any measured budget (4 labelled images): too few splits for any claim" in line
    assert "unbounded with 3 splits at level 5.0%" in line and "3 split(s): fewer than the 6" in line
    (more,) = [s for s in answer.next_steps if "add splits" in s]
    assert "`hdc-ray sweep study --name demo-splits-3-5 --results results --set 'seeds=[3,4,5]'`" in more
    assert "hdc-ray report results --sweep demo --sweep demo-splits-3-5" in more


def test_a_study_in_rounds_is_told_to_raise_max_seeds_past_what_it_ran() -> None:
    hint = SweepHint("results/demo/spec.yaml", "demo", "results", 8, max_seeds=6, seeds_run=6)
    answer = build_answer(study({4: shifted(4, NOISE)}), "test_dice_fg", hint=hint)
    (more,) = [s for s in answer.next_steps if "more rounds" in s]
    assert "--resume --accept-spec-change --set stopping.max_seeds=9" in more and "splits 6-8" in more


def test_labels_saved_words_follow_the_evidence() -> None:
    (line,) = build_answer(study({4: SUP[8]}), "test_dice_fg").headline
    assert "supervised needs ~8 (~8 to ~8) to match it: 50% fewer labels (50% to 50%)" in line
    sup = {**SUP, POOL: [0.9] * 6}
    (gap,) = build_answer(study({8: shifted(16, (0.02,) * 6)}, sup), "test_dice_fg").headline
    assert "6 of 6 splits need more than the measured supervised budgets or fall in an unmeasured gap" in gap
    assert "~80" not in gap and "90%" not in gap  # never interpolated across the 16 -> 400 gap


def test_runs_still_improving_are_flagged_with_the_command_to_lengthen_them() -> None:
    hint = SweepHint("results/demo/spec.yaml", "demo", "results", 8)
    answer = build_answer(study({4: SUP[8]}, best_last=True), "test_dice_fg", hint=hint)
    (line,) = answer.convergence
    assert "320 training steps per trial (8 epochs x 40 iterations, batch 8 labelled + 8 unlabelled)" in line
    assert "Not converged" in line and "hdc at 4 labelled images (6 of 6 trials peaked at their last epoch)" in line
    (longer,) = [s for s in answer.next_steps if "longer training" in s]
    assert "--set overrides.train.epochs=20" in longer and "--name demo-20ep" in longer
    (settled,) = build_answer(study({4: SUP[8]}), "test_dice_fg").convergence
    assert "had stopped improving" in settled


def test_a_rising_history_flags_runs_whose_best_epoch_is_not_the_last() -> None:
    trials = study({4: SUP[8]})
    history = pd.DataFrame([{"trial_id": t, "epoch": e, "val_dice_fg": 0.5 + 0.01 * e} for t in trials["trial_id"] for e in range(1, 9)])
    conv = build_answer(trials, "test_dice_fg", history=history).decision.convergence
    assert all(c.rising == c.n_trials and c.peaked_last == 0 and c.still_rising for c in conv)


def test_advisor_refuses_past_twice_the_largest_budget_and_names_the_budgets_to_measure() -> None:
    trials = study({4: SUP[8], 8: SUP[16], 16: [0.86, 0.88, 0.84, 0.87, 0.85, 0.86]})
    answer = build_answer(trials, "test_dice_fg", target=0.95, n_boot=50, hint=SweepHint("study", "demo", "results", 8))
    assert set(advise(trials, "test_dice_fg", 0.95, n_boot=50).table["where"]) <= {"too far", "unidentified", "never reached"}
    (step,) = [s for s in answer.advice if s.startswith("To replace")]
    assert "--set 'space.data.label_count.grid=[32,64]' --set 'exclude=[]' --set 'seeds=[0,1,2]'" in step


def test_the_budgets_to_measure_start_where_the_answer_reached_out_from() -> None:
    sup = {**SUP, POOL: [0.86, 0.88, 0.84, 0.87, 0.85, 0.86]}  # 16 and all 400 measured, nothing between
    advice = advise(study({4: SUP[8], 8: SUP[16]}, sup), "test_dice_fg", 0.85, n_boot=50)
    supervised = advice.table.set_index("arm").loc["supervised"]
    assert supervised["where"] == "too far" and supervised["reach_from"] == 16 and advice.measure == (32, 64)


def test_advisor_caps_the_asymptote_at_the_all_labels_ceiling_and_names_a_plateau() -> None:
    sup = {**SUP, 32: [0.84] * 6, POOL: [0.83, 0.84, 0.83, 0.84, 0.83, 0.84]}  # all labels no better than 32
    trials = study({4: SUP[8], 8: SUP[16], 16: [0.83] * 6}, sup)
    answer = build_answer(trials, "test_dice_fg", target=0.9, n_boot=30)
    hdc = advise(trials, "test_dice_fg", 0.9, n_boot=30).table.set_index("arm").loc["hdc"]
    assert hdc["a"] <= t_interval([0.83, 0.84, 0.83, 0.84, 0.83, 0.84])[1] + 1e-9 and hdc["where"] == "never reached"
    assert any(line.startswith("Compute-limited plateau: supervised with all 400 labels scores 0.835, no better than with 32") for line in answer.advice)


def _with_classes(trials: pd.DataFrame, lost_at: tuple[str, int, int] | None = None) -> pd.DataFrame:
    out = trials.assign(val_dice_head=0.80, val_dice_pubic_symphysis=0.60, test_dice_pubic_symphysis=0.60, val_dice_fg=0.70)
    if lost_at is not None:
        method, n, seed = lost_at
        hit = (out["method"] == method) & (out["n_labeled"] == n) & (out["seed"] == seed)
        out.loc[hit, "val_dice_pubic_symphysis"] = 0.0
    return out


def test_a_trial_that_lost_a_class_on_validation_is_named_but_one_lost_only_on_test_is_not() -> None:
    answer = build_answer(_with_classes(study({4: shifted(4, (0.02,) * 6)}), lost_at=("hdc", 4, 2)), "test_dice_fg")
    assert answer.lost.startswith("**1 of 24 trials lost a class**") and "hdc at 4 images, split 2 (pubic_symphysis 0.00)" in answer.lost
    assert answer.lost in answer.lines()
    healthy = _with_classes(study({4: shifted(4, (0.02,) * 6)}))
    healthy.loc[0, "test_dice_pubic_symphysis"] = 0.0  # the flag must not select on what is reported
    assert build_answer(healthy, "test_dice_fg").lost == ""


def test_no_baseline_is_said_in_words() -> None:
    trials = study({4: shifted(4, CLEAR)})
    answer = build_answer(trials[trials["method"] == "hdc"], "test_dice_fg")
    assert answer.headline == () and any("no supervised arm in these results (hdc)" in p for p in answer.problems)


@pytest.mark.parametrize("budget", [4, 8])
def test_every_line_is_one_line(budget: int) -> None:
    answer = build_answer(study({budget: shifted(budget, CLEAR)}), "test_dice_fg", target=0.8, n_boot=20)
    assert all("\n" not in line for line in answer.lines())
