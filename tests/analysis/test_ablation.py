"""Ablation table: paired differences against full HDC, with known differences and intervals."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy import stats

from hdc_ray.analysis import AnalysisError, ablation_table, infer_variant, read_results

T_975_DF2 = 4.302652729911275


def _rows(variant: str | None, values: list[float], **extra) -> list[dict]:
    return [{"variant": variant, "seed": s, "test_dice_fg": v, **extra} for s, v in enumerate(values)]


def test_known_paired_difference(trials_of) -> None:
    ref = [0.80, 0.70, 0.90]
    cut = [0.78, 0.66, 0.87]  # differences -0.02, -0.04, -0.03
    table = ablation_table(trials_of(_rows("hdc", ref) + _rows("no_cg", cut))).set_index("variant")
    row = table.loc["no_cg"]
    half = T_975_DF2 * 0.01 / math.sqrt(3)
    assert row["n_pairs"] == 3 and row["diff"] == pytest.approx(-0.03)
    assert row["diff_ci_low"] == pytest.approx(-0.03 - half) and row["diff_ci_high"] == pytest.approx(-0.03 + half)
    assert row["mean"] == pytest.approx(0.77) and row["rel_diff"] == pytest.approx(-0.03 / 0.8)
    assert row["p_value"] == pytest.approx(stats.ttest_rel(cut, ref).pvalue)
    assert row["kind"] == "ablation" and row["effect"] == "worse than hdc"
    assert table.index[0] == "hdc" and table.loc["hdc", "diff"] == 0 and table.loc["hdc", "kind"] == "reference"


def test_pairs_by_seed_and_split_only(trials_of) -> None:
    rows = _rows("hdc", [0.8, 0.7]) + _rows("no_mi", [0.9, 0.6])
    rows.append({"variant": "no_mi", "seed": 7, "test_dice_fg": 0.1})  # no hdc partner: unpaired
    rows.append({"variant": "no_mi", "seed": 0, "split_hash": "other", "test_dice_fg": 0.1})  # other split
    row = ablation_table(trials_of(rows)).set_index("variant").loc["no_mi"]
    assert row["n"] == 4 and row["n_pairs"] == 2 and row["diff"] == pytest.approx(0.0)
    assert row["effect"] == "no clear difference"


def test_repeats_within_a_pair_are_averaged(trials_of) -> None:
    rows = _rows("hdc", [0.8, 0.8]) + _rows("hdc", [0.6, 0.6]) + _rows("no_pc", [0.6, 0.6])
    row = ablation_table(trials_of(rows)).set_index("variant").loc["no_pc"]
    assert row["n_pairs"] == 2 and row["diff"] == pytest.approx(-0.1) and row["p_value"] == 0.0


def test_variants_inferred_from_zero_weights_and_baselines(trials_of) -> None:
    w = {"cfg.loss.w_pc": 1.0, "cfg.loss.w_cg": 1.0, "cfg.loss.w_mi": 1.0}
    rows = _rows(None, [0.8, 0.8, 0.8], **w)
    rows += _rows(None, [0.7, 0.7, 0.7], **{**w, "cfg.loss.w_cg": 0.0, "cfg.loss.w_mi": 0.0})
    rows += _rows(None, [0.9, 0.91, 0.92], **{**w, "method": "supervised"})
    assert infer_variant(trials_of(rows)).unique().tolist() == ["hdc", "hdc-no_cg-no_mi", "supervised"]
    table = ablation_table(trials_of(rows)).set_index("variant")
    assert table.loc["hdc-no_cg-no_mi", "kind"] == "ablation" and table.loc["supervised", "kind"] == "baseline"
    assert table.loc["supervised", "effect"] == "better than hdc"
    assert table.index.tolist() == ["hdc", "hdc-no_cg-no_mi", "supervised"]


def test_lower_is_better_metric(trials_of) -> None:
    rows = [{"variant": v, "seed": s, "test_hd95_fg": h + s} for v, h in (("hdc", 5.0), ("no_cg", 7.0)) for s in range(3)]
    rows[3]["test_hd95_fg"] += 0.5
    row = ablation_table(trials_of(rows), "test_hd95_fg").set_index("variant").loc["no_cg"]
    assert row["diff"] > 0 and row["effect"] == "worse than hdc"


def test_too_few_pairs(trials_of) -> None:
    row = ablation_table(trials_of(_rows("hdc", [0.8]) + _rows("no_cg", [0.7]))).set_index("variant").loc["no_cg"]
    assert row["n_pairs"] == 1 and math.isnan(row["diff_ci_low"]) and row["effect"] == "too few pairs"


def test_missing_reference_or_split_hash(trials_of) -> None:
    with pytest.raises(AnalysisError, match=r"no finished 'hdc' trials.*present: no_cg"):
        ablation_table(trials_of(_rows("no_cg", [0.7])))
    with pytest.raises(AnalysisError, match="split_hash"):
        ablation_table(trials_of(_rows("hdc", [0.7])).drop(columns="split_hash"))


def test_fake_ablation_sweep(fake_results: Path) -> None:
    table = ablation_table(read_results(fake_results, ["ablation"]).trials).set_index("variant")
    assert table.loc["hdc-no_cg", "diff"] == pytest.approx(-0.03)
    assert table.loc["no_pc", "diff"] == pytest.approx(-0.06)  # includes the early-stopped trial
    assert table.loc["no_mi", "diff"] == pytest.approx(-0.001) and table.loc["no_mi", "effect"] == "no clear difference"
    assert table.loc["supervised", "diff"] == pytest.approx(-0.10) and table.loc["supervised", "kind"] == "baseline"
    assert (table["n_pairs"] == 4).all()
