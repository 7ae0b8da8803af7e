"""The answer as data: paired per-split statistics, the headline rule, labels saved per split, convergence."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hdc_ray.analysis.answer import SweepHint, advise, build_answer, t_interval

POOL = 400


def _trials(scores: dict[tuple[str, int], list[float]], *, best_last: bool = False, epochs: int = 8) -> pd.DataFrame:
    """``{(method, n_labeled): [test Dice per split]}`` -> finished trials, seed i = split i."""
    rows = []
    for (method, n), per_split in scores.items():
        for seed, dice in enumerate(per_split):
            rows.append({
                "trial_id": f"{method}-{n}-{seed}", "status": "completed", "method": method, "label_ratio": n / POOL,
                "n_labeled": n, "seed": seed, "split_hash": f"s{seed}-{n}", "task": "cervix", "test_dice_fg": dice,
                "epochs_done": epochs, "best_epoch": epochs if best_last else epochs - 3,
                "cfg.train.epochs": epochs, "cfg.train.iters_per_epoch": 40, "cfg.train.batch_labeled": 8, "cfg.train.batch_unlabeled": 8,
            })  # fmt: skip
    return pd.DataFrame(rows)


SUP = {4: [0.60, 0.62, 0.58, 0.61, 0.59, 0.60], 8: [0.70, 0.72, 0.68, 0.71, 0.69, 0.70], 16: [0.80, 0.82, 0.78, 0.81, 0.79, 0.80]}


def _study(hdc: dict[int, list[float]], sup: dict[int, list[float]] = SUP, **kw: object) -> pd.DataFrame:
    return _trials({**{("supervised", n): v for n, v in sup.items()}, **{("hdc", n): v for n, v in hdc.items()}}, **kw)  # type: ignore[arg-type]


def test_paired_difference_is_the_per_split_mean_with_a_t_interval() -> None:
    gain = [0.05, 0.01, 0.03, -0.01, 0.04, 0.02]
    hdc4 = [s + g for s, g in zip(SUP[4], gain, strict=True)]
    (arm,) = build_answer(_study({4: hdc4}), "test_dice_fg").arms
    (d,) = arm.differences
    assert d.per_split == pytest.approx(gain) and d.seeds == (0, 1, 2, 3, 4, 5)
    assert d.mean == pytest.approx(np.mean(gain)) and d.n == 6 and d.ahead == 5
    half = stats.t.ppf(0.975, 5) * np.std(gain, ddof=1) / math.sqrt(6)
    assert d.interval == pytest.approx((np.mean(gain) - half, np.mean(gain) + half))
    assert d.verdict == "gain"  # +2.3, interval +0.1 to +4.6
    assert d.words() == "+2.3 points (95% +0.1 to +4.6; ahead on 5 of 6 splits)"


def test_pairing_follows_the_split_not_the_order_of_rows() -> None:
    trials = _study({4: [s + 0.02 for s in SUP[4]]}).sample(frac=1.0, random_state=3)
    (d,) = build_answer(trials, "test_dice_fg").arms[0].differences
    assert d.per_split == pytest.approx([0.02] * 6)  # a per-split shift common to both arms cancels


def test_headline_does_not_present_the_luckiest_budget_as_the_answer() -> None:
    hdc = {4: [s + g for s, g in zip(SUP[4], (0.09, 0.11, 0.10, 0.12, 0.08, 0.10), strict=True)],  # +10 points at 4
           8: [s + g for s, g in zip(SUP[8], (0.01, -0.01, 0.02, -0.02, 0.0, 0.01), strict=True)],  # nothing at 8
           16: [s + g for s, g in zip(SUP[16], (-0.01, 0.01, 0.0, -0.02, 0.02, 0.0), strict=True)]}  # nor at 16  # fmt: skip
    answer = build_answer(_study(hdc), "test_dice_fg")
    (line,) = answer.headline
    verdict = line.split("**")[1]
    assert verdict == "hdc vs supervised: ahead at 4 labelled images; not established at 8 and 16 labelled images."
    for budget in ("@4 images", "@8 images", "@16 images"):  # every measured budget is stated, with its interval
        assert budget in line
    assert line.count("annotation") == 1  # the saving (with its interval) only where the gain is shown
    assert line.index("@4 images") < line.index("@8 images") < line.index("@16 images")


def test_no_interval_excluding_zero_says_no_saving_shown() -> None:
    noise = (0.02, -0.02, 0.01, -0.01, 0.03, -0.03)
    hdc = {n: [s + g for s, g in zip(SUP[n], noise, strict=True)] for n in (4, 8)}
    (line,) = build_answer(_study(hdc), "test_dice_fg").headline
    assert "no saving shown at any measured budget (4 and 8 labelled images): every paired interval includes zero" in line
    assert "annotation" not in line


def test_fewer_than_three_splits_is_not_an_interval_and_the_next_round_is_a_command() -> None:
    sup = {n: v[:2] for n, v in SUP.items()}
    answer = build_answer(_study({4: [0.65, 0.69]}, sup), "test_dice_fg", sweep_hint=SweepHint("study", "demo", "results", 8))
    (line,) = answer.headline
    assert "not established with 2 split(s)" in line and "95%" not in line
    assert math.isnan(answer.arms[0].differences[0].interval[0])
    assert "labels saved not established" in answer.arms[0].saved[0].words()
    (more,) = [s for s in answer.next_steps if "add 3 splits" in s]
    assert "`hdc-ray sweep study --name demo-splits-2-4 --results results --set 'seeds=[2,3,4]'`" in more
    assert "hdc-ray report results --sweep demo --sweep demo-splits-2-4" in more


def test_three_to_five_splits_are_preliminary() -> None:
    sup = {n: v[:3] for n, v in SUP.items()}
    (line,) = build_answer(_study({4: [s + 0.1 for s in sup[4]]}, sup), "test_dice_fg").headline
    assert "ahead at 4 labelled images" in line and "Fewer than 6 splits (3): treat this as preliminary" in line


def test_labels_saved_are_inverted_per_split() -> None:
    # hdc@4 equals supervised@8 on every split: supervised needs 8 on each, -50% annotation, no spread
    answer = build_answer(_study({4: SUP[8]}), "test_dice_fg")
    (saved,) = answer.arms[0].saved
    assert saved.matched == pytest.approx((8,) * 6) and saved.censored == 0
    assert saved.matched_interval == pytest.approx((8, 8))
    assert "supervised needs ~8 (95% ~8 to ~8) to match it: -50% annotation (-50% to -50%)" in saved.words()


def test_labels_saved_carry_the_split_spread() -> None:
    # on split 0 hdc@4 matches supervised@8, on split 1 supervised@16, ...: the interval must be wide
    hdc4 = [0.70, 0.82, 0.68, 0.81, 0.69, 0.80]  # = sup@8, sup@16, sup@8, sup@16, sup@8, sup@16 per split
    (saved,) = build_answer(_study({4: hdc4}), "test_dice_fg").arms[0].saved
    assert saved.matched == pytest.approx((8, 16, 8, 16, 8, 16))
    low, high = saved.matched_interval
    assert low < 8 * 2**0.5 < high and high / low > 1.5  # geometric mean 11.3; the interval spans the splits' spread


def test_a_split_where_supervised_never_catches_up_is_counted_at_the_bound() -> None:
    hdc4 = [0.70, 0.72, 0.68, 0.71, 0.69, 0.95]  # split 5: above anything supervised reached
    (saved,) = build_answer(_study({4: hdc4}), "test_dice_fg").arms[0].saved
    assert math.isinf(saved.matched[5]) and saved.censored == 1
    assert "on 1 of 6 splits outside the measured budgets, counted at the bound" in saved.words()


def test_runs_still_improving_at_their_last_epoch_are_flagged_with_the_command_to_lengthen_them() -> None:
    hint = SweepHint("results/demo/spec.yaml", "demo", "results", 8)
    answer = build_answer(_study({4: SUP[8]}, best_last=True), "test_dice_fg", sweep_hint=hint)
    (line,) = answer.convergence_lines()
    assert "320 training steps per trial (8 epochs x 40 iterations, batch 8 labelled + 8 unlabelled)" in line
    assert "Not converged" in line and "hdc at 4 labelled images (6 of 6 trials peaked at their last epoch)" in line
    assert "supervised at 4, 8 and 16 labelled images (18 of 18" in line
    (longer,) = [s for s in answer.next_steps if "longer training" in s]
    assert "--set overrides.train.epochs=20" in longer and "--name demo-20ep" in longer


def test_converged_runs_are_not_flagged() -> None:
    (line,) = build_answer(_study({4: SUP[8]}), "test_dice_fg").convergence_lines()
    assert "had stopped improving" in line and "Not converged" not in line


def test_a_rising_history_flags_runs_whose_best_epoch_is_not_the_last() -> None:
    trials = _study({4: SUP[8]})
    history = pd.DataFrame([{"trial_id": t, "epoch": e, "val_dice_fg": 0.5 + 0.01 * e} for t in trials["trial_id"] for e in range(1, 9)])
    conv = build_answer(trials, "test_dice_fg", history=history).convergence
    assert all(c.rising == c.n_trials and c.peaked_last == 0 and c.still_rising for c in conv)


def test_advisor_refuses_past_twice_the_largest_budget_and_names_the_budgets_to_measure() -> None:
    trials = _study({4: SUP[8], 8: SUP[16], 16: [0.86, 0.88, 0.84, 0.87, 0.85, 0.86]})
    advice = advise(trials, "test_dice_fg", 0.95, hint=SweepHint("study", "demo", "results", 8), n_boot=50)
    table = advice.table.set_index("arm")
    assert set(table["where"]) <= {"too far", "unidentified", "never reached"}
    (step,) = advice.next_steps
    assert "--set 'space.data.label_count.grid=[32,64]' --set 'exclude=[]' --set 'seeds=[0,1,2]'" in step


def test_the_budgets_to_measure_start_where_the_answer_reached_out_from_not_at_all_labels() -> None:
    sup = {**SUP, POOL: [0.86, 0.88, 0.84, 0.87, 0.85, 0.86]}  # 16 and all 400 measured, nothing between
    advice = advise(_study({4: SUP[8], 8: SUP[16]}, sup), "test_dice_fg", 0.85, hint=SweepHint("study", "demo", "results", 8), n_boot=50)
    supervised = advice.table.set_index("arm").loc["supervised"]
    assert supervised["where"] == "too far" and supervised["reach_from"] == 16
    (step,) = advice.next_steps
    assert "measure 32 and 64 labelled images" in step and "grid=[32,64]" in step


def test_advisor_caps_the_asymptote_at_the_all_labels_ceiling_and_names_a_plateau() -> None:
    sup = {**SUP, 32: [0.84] * 6, POOL: [0.83, 0.84, 0.83, 0.84, 0.83, 0.84]}  # all labels no better than 32
    trials = _study({4: SUP[8], 8: SUP[16], 16: [0.83] * 6}, sup)
    advice = advise(trials, "test_dice_fg", 0.9, n_boot=30)
    hdc = advice.table.set_index("arm").loc["hdc"]
    high = t_interval([0.83, 0.84, 0.83, 0.84, 0.83, 0.84])[1]
    assert hdc["a"] <= high + 1e-9 and hdc["where"] == "never reached"
    assert "even all labels reach only" in hdc["sentence"]
    assert any(line.startswith("Compute-limited plateau: supervised with all 400 labels scores 0.835, no better than with 32") for line in advice.lines)


def _with_classes(trials: pd.DataFrame, lost_at: tuple[str, int, int] | None = None) -> pd.DataFrame:
    """Per-class validation and test Dice: healthy everywhere, except one trial (method, n, seed) losing the symphysis on validation."""
    out = trials.assign(val_dice_head=0.80, val_dice_pubic_symphysis=0.60, test_dice_pubic_symphysis=0.60, val_dice_fg=0.70)
    if lost_at is not None:
        method, n, seed = lost_at
        hit = (out["method"] == method) & (out["n_labeled"] == n) & (out["seed"] == seed)
        out.loc[hit, "val_dice_pubic_symphysis"] = 0.0
    return out


def test_a_trial_that_lost_a_class_on_validation_is_named_with_the_class_and_its_dice() -> None:
    trials = _with_classes(_study({4: [s + 0.02 for s in SUP[4]]}), lost_at=("hdc", 4, 2))
    answer = build_answer(trials, "test_dice_fg")
    assert answer.lost.startswith("**1 of 24 trials lost a class**")
    assert "hdc at 4 images, split 2 (pubic_symphysis 0.00)" in answer.lost
    assert answer.lost in answer.lines()


def test_healthy_classes_and_a_collapse_seen_only_on_test_are_not_flagged() -> None:
    healthy = _with_classes(_study({4: [s + 0.02 for s in SUP[4]]}))
    assert build_answer(healthy, "test_dice_fg").lost == ""
    test_only = healthy.copy()
    test_only.loc[0, "test_dice_pubic_symphysis"] = 0.0  # the flag must not select on what is reported
    assert build_answer(test_only, "test_dice_fg").lost == ""
    no_classes = _study({4: [s + 0.02 for s in SUP[4]]})  # results without per-class columns: nothing to say
    assert build_answer(no_classes, "test_dice_fg").lost == ""
