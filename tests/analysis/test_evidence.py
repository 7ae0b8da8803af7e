"""The study's evidence layer (issue 31): pairing checked on the split, one error control over comparisons and looks,
labels saved only where a gain is claimed and never across a gap, and the decision a study in rounds stops on."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from study_fakes import POOL, SUP, shifted, study, trials

from hdc_ray.analysis.evidence import PairingError, decide, t_interval
from hdc_ray.analysis.evidence.control import ALPHA, anytime_p, confidence_sequence, critical_t, e_value, holm
from hdc_ray.analysis.evidence.paired import paired_differences
from hdc_ray.analysis.evidence.saved import match

CLEAR = (0.09, 0.11, 0.10, 0.12, 0.08, 0.10)  # +10 points, sd 1.4
NOISE = (0.02, -0.02, 0.01, -0.01, 0.03, -0.03)


def test_the_paired_difference_is_per_split_in_seed_order_with_a_raw_t_interval() -> None:
    gain = [0.05, 0.01, 0.03, -0.01, 0.04, 0.02]
    (d,), _ = paired_differences(study({4: shifted(4, tuple(gain))}).sample(frac=1.0, random_state=3), "test_dice_fg")
    assert d.per_split == pytest.approx(gain) and d.seeds == (0, 1, 2, 3, 4, 5) and d.ahead == 5
    half = stats.t.ppf(0.975, 5) * np.std(gain, ddof=1) / math.sqrt(6)
    assert d.raw_interval == pytest.approx((np.mean(gain) - half, np.mean(gain) + half))
    assert t_interval(gain) == pytest.approx(d.raw_interval)


def test_pairing_holds_when_arms_differ_on_every_split_not_only_by_a_shift() -> None:
    """Issue 31: pairing was only ever tested through a constant shift. Scores that move split by split must pair by split."""
    rng = np.random.default_rng(0)
    sup = {4: list(rng.uniform(0.5, 0.7, 6))}
    hdc = [s + g for s, g in zip(sup[4], rng.normal(0.03, 0.02, 6), strict=True)]
    table = study({4: hdc}, sup)
    (d,), _ = paired_differences(table, "test_dice_fg")
    assert d.per_split == pytest.approx([h - s for h, s in zip(hdc, sup[4], strict=True)])
    shuffled = table.assign(seed=table["seed"].where(table["method"] == "hdc", (table["seed"] + 1) % 6))  # supervised's splits relabelled
    (wrong,), _ = paired_differences(shuffled.drop(columns="split_hash"), "test_dice_fg")
    assert wrong.per_split != pytest.approx(d.per_split)  # so the test above can fail


def test_a_duplicate_cell_is_refused_naming_the_trials() -> None:
    table = study({4: shifted(4, CLEAR)})
    twice = pd.concat([table, table.iloc[[0]].assign(trial_id="again", sweep="other")])
    with pytest.raises(PairingError, match=r"share an \(arm, budget, split\): e\.g\. supervised at 4 images, split 0: trials s/supervised-4-0, other/again"):
        decide(twice, "test_dice_fg")


def test_arms_trained_on_other_labelled_images_are_refused() -> None:
    table = study({4: shifted(4, CLEAR)})
    table.loc[(table["method"] == "hdc") & (table["seed"] == 2), "split_hash"] = "elsewhere"
    with pytest.raises(PairingError, match=r"split 2 at 4 images: hdc trained on other labelled images than supervised \(split_hash elsewhere vs s2-4"):
        decide(table, "test_dice_fg")


def test_an_arm_is_found_whatever_its_variant_name() -> None:
    """Issue 31: ``hdc_lam3`` (method hdc) was dropped and the answer said only the baseline was run."""
    table = trials({**{("supervised", n): v for n, v in SUP.items()}, ("hdc_lam3", 4): shifted(4, CLEAR)}, arms={"hdc_lam3": "hdc"})
    (j,) = decide(table, "test_dice_fg").comparisons
    assert j.diff.arm == "hdc_lam3" and j.verdict == "gain"


def test_the_e_value_reaches_its_threshold_at_the_critical_t_and_three_splits_can_claim_nothing() -> None:
    for n in (4, 6, 12, 30):
        t = critical_t(n, 0.05)
        assert e_value(t, n) == pytest.approx(20.0)
    assert math.isinf(critical_t(3, 0.05))  # E_3 <= 1 + 3g = 7 < 20
    assert anytime_p(np.array([0.10, 0.11, 0.12])) > 0.05  # a +11-point gain on 3 splits is not a claim at 5%
    low, high = confidence_sequence([0.10, 0.11, 0.12], 0.05)
    assert math.isinf(low) and math.isinf(high)


def test_the_confidence_sequence_is_wider_than_the_t_interval_and_holds_over_every_prefix() -> None:
    x = np.array([0.05, 0.01, 0.03, -0.01, 0.04, 0.02, 0.03, 0.0, 0.02])
    low, high = confidence_sequence(x, 0.05)
    t_low, t_high = t_interval(x)
    assert low < t_low and high > t_high and low < x.mean() < high
    for k in range(2, len(x)):  # the intersection: never wider than an earlier prefix's interval
        pl, ph = confidence_sequence(x[:k], 0.05)
        assert pl <= low + 1e-12 and ph >= high - 1e-12


def test_holm_steps_down_and_its_levels_match_its_claims() -> None:
    family = holm([0.001, 0.015, 0.04, 0.3], alpha=0.05)
    assert family.claimed == (True, True, False, False)  # 0.001 <= .0125, 0.015 <= .0167, then 0.04 > .025 stops it
    assert family.levels == pytest.approx((0.0125, 0.05 / 3, 0.025, 0.025))
    assert holm([0.001, 0.02, 0.04, 0.3]).claimed == (True, False, False, False)  # 0.02 > .0167
    assert holm([float("nan"), 0.001]).claimed == (False, True)


def test_claims_and_adjusted_intervals_agree_and_the_family_is_corrected() -> None:
    decision = decide(study({4: shifted(4, CLEAR), 8: shifted(8, NOISE), 16: shifted(16, NOISE)}), "test_dice_fg")
    verdicts = {j.diff.budget: j.verdict for j in decision.comparisons}
    assert verdicts == {4: "gain", 8: "not established", 16: "not established"}
    for j in decision.comparisons:
        assert (j.low > 0 or j.high < 0) == j.claimed  # the interval at its Holm level excludes zero iff claimed
    four = next(j for j in decision.comparisons if j.diff.budget == 4)
    assert four.level == pytest.approx(ALPHA / 3) and four.low < four.diff.raw_interval[0]


def test_one_arm_at_one_budget_claimed_at_5_percent_is_not_claimed_when_the_family_grows() -> None:
    """The demo's case (issue 31): a gain whose raw interval just excludes zero is not a claim over several comparisons."""
    z = np.random.default_rng(31).standard_normal(12)
    gains = tuple(0.01 + 0.0144 * (z - z.mean()) / z.std(ddof=1))  # +1.0 points, t = 2.4 on 12 splits: raw 95% lower bound +0.08
    sup = {n: [0.6 + 0.01 * (i % 3) for i in range(12)] for n in (4, 8)}
    table = study({4: shifted(4, gains, sup), 8: shifted(8, tuple(-g for g in gains), sup)}, sup)
    decision = decide(table, "test_dice_fg")
    assert all(j.diff.raw_interval[0] > 0 or j.diff.raw_interval[1] < 0 for j in decision.comparisons)  # raw: both "established"
    assert [j.verdict for j in decision.comparisons] == ["not established", "not established"]


def test_labels_saved_only_where_a_gain_is_claimed() -> None:
    decision = decide(study({4: SUP[8], 8: shifted(8, NOISE)}), "test_dice_fg")
    four, eight = decision.comparisons
    assert four.verdict == "gain" and four.saved is not None and eight.saved is None
    assert four.saved.matched == pytest.approx((8,) * 6) and four.saved.kind == "interval"
    assert four.saved.low == pytest.approx(8) and four.saved.high == pytest.approx(8)  # no spread: hdc@4 equals sup@8 on every split


def test_a_match_inside_a_gap_wider_than_max_gap_is_a_lower_bound() -> None:
    """Issue 31: supervised at 4/8/16/400 and hdc@8 above supervised@16 gave "-90% annotation (~80 to ~80)"."""
    assert match(np.array([4.0, 8, 16, POOL]), np.array([0.6, 0.7, 0.8, 0.9]), 0.82) == (16.0, "above")
    assert match(np.array([4.0, 8, 16]), np.array([0.6, 0.7, 0.8]), 0.75) == pytest.approx((8 * 2**0.5, ""))
    assert match(np.array([4.0, 8, 16]), np.array([0.6, 0.7, 0.8]), 0.95) == (16.0, "above")  # never reached: more than 16
    assert match(np.array([4.0, 8, 16]), np.array([0.6, 0.7, 0.8]), 0.55) == (4.0, "below")
    sup = {**SUP, POOL: [0.90] * 6}
    decision = decide(study({8: shifted(16, (0.02,) * 6)}, sup), "test_dice_fg")
    (j,) = decision.comparisons
    assert j.verdict == "gain" and j.saved is not None and j.saved.kind == "at least" and j.saved.above == 6
    assert j.saved.low <= 16 + 1e-9 and max(j.saved.matched) <= POOL  # never a number past the gap, nor the pool


def test_splits_that_never_reach_the_arm_make_labels_saved_one_sided() -> None:
    hdc4 = [0.70, 0.72, 0.68, 0.71, 0.69, 0.95]  # split 5: above anything supervised reached
    (j,) = decide(study({4: hdc4}), "test_dice_fg").comparisons
    assert j.saved is not None and j.saved.kind == "at least" and j.saved.above == 1 and j.saved.matched[5] == 16


def test_the_decision_stops_on_claims_or_narrow_intervals_and_names_what_is_open() -> None:
    decided = decide(study({4: shifted(4, CLEAR)}), "test_dice_fg", width=0.03)
    assert decided.decided and decided.stop(6, 6, 18)[0] == "decided"
    assert decided.stop(6, 9, 18) == ("", "")  # decided, but fewer splits than min_seeds
    tiny = decide(study({4: shifted(4, (0.001, -0.001, 0.0005, -0.0005, 0.0, 0.0))}), "test_dice_fg", width=0.03)
    assert not tiny.comparisons[0].claimed and tiny.decided  # pinned down within 3 points: no difference that matters
    wide = decide(study({4: shifted(4, NOISE), 8: shifted(8, NOISE)}), "test_dice_fg", width=0.03)
    assert not wide.decided and wide.open_budgets() == ["hdc@4 images", "hdc@8 images"]
    kind, reason = wide.stop(18, 6, 18)
    assert kind == "max_seeds" and reason.startswith("max_seeds reached (18 splits); still open: hdc@4 images")
    assert wide.next_seeds() == [6, 7, 8]
    records = wide.records()
    assert {r["verdict"] for r in records} == {"not established"} and all(r["level"] == pytest.approx(0.025) for r in records)


def test_two_splits_give_no_interval_and_no_claim() -> None:
    sup = {n: v[:2] for n, v in SUP.items()}
    (j,) = decide(study({4: [0.65, 0.69]}, sup), "test_dice_fg").comparisons
    assert j.verdict == "not established" and not j.claimed and math.isinf(j.low)
