"""``hdc-ray evaluate``: reproduces what training recorded, scores other labelled folders, challenge conventions."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hdc_ray.cli import main
from hdc_ray.data import SyntheticSpec, write_fugc_layout, write_psfh_layout
from hdc_ray.data.tasks import CLASS_NAMES
from hdc_ray.inference.challenge import fugc_case, fugc_summary, psfh_case, psfh_score, psfh_summary
from hdc_ray.metrics import aggregate
from tests.inference.conftest import TinyRun, save_variant


def _evaluate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["evaluate", *args, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("split", ["test", "val"])
def test_evaluate_reproduces_the_recorded_dice_of_the_run(split: str, tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    code, printed, _ = _evaluate(capsys, str(tiny_run.folder), "--split", split, "--out", str(out))
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    recorded = tiny_run.summary[f"{split}_dice_fg"]
    assert summary["recorded"][f"{split}_dice_fg"] == pytest.approx(recorded)
    assert abs(summary["as_training"][f"{split}_dice_fg"] - recorded) <= 0.005
    assert f"{split}_dice_fg reproduced" in printed
    with (out / "cases.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and all(r["case"].startswith("synthetic/cervix-easy-32") for r in rows)  # tiny: 6 val, 6 test images
    assert np.mean([float(r["dice_fg"]) for r in rows]) == pytest.approx(summary["as_training"][f"{split}_dice_fg"])
    assert summary["runtime"]["ms_per_image_mean"] > 0 and "fugc_dice" in summary["challenge"] and "fugc_hd" in summary["challenge"]
    assert summary["challenge"]["ranking_inputs"]["runtime_ms_per_image"] == summary["runtime"]["ms_per_image_mean"]
    # nnU-Net's block: every test image present in both masks, so its foreground Dice is training's.
    assert len(summary["metric_per_case"]) == 6 and summary["distance_unit"] == "px"
    assert summary["foreground_mean"]["Dice"] == pytest.approx(summary["as_training"][f"{split}_dice_fg"])


def test_other_weights_do_not_reproduce_the_record(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The comparison can fail: the same run's record against other weights is not matched exactly."""
    state = torch.load(tiny_run.folder / "best.pt", weights_only=True)
    g = torch.Generator().manual_seed(0)
    noisy = save_variant(tiny_run.folder / "best.pt", tmp_path / "run" / "best.pt", weights={k: v + 0.5 * torch.randn(v.shape, generator=g) for k, v in state["weights"].items()})
    (tmp_path / "run" / "metrics.json").write_text((tiny_run.folder / "metrics.json").read_text())
    assert _evaluate(capsys, str(noisy.parent))[0] == 0
    summary = json.loads((tmp_path / "run" / "evaluate-test" / "summary.json").read_text())
    assert summary["difference"]["test_dice_fg"] != 0.0


def test_evaluate_on_a_fugc_folder_with_the_challenge_conventions(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 48), 5, 2, seed=3)
    out = tmp_path / "eval"
    # Not the run's training data: without --split, every labelled image is scored (said), not the run's split.
    code, printed, _ = _evaluate(capsys, str(tiny_run.folder), "--set", f"data.root={root}", "--out", str(out))
    assert code == 0, printed
    assert "is not the data the run was trained on, so every labelled image is scored (--split all)" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["split"] == "all" and summary["n_cases"] == 5 and summary["data"].startswith("fugc at") and summary["recorded"] == {}
    assert {"fugc_dice", "fugc_dice_lip1", "fugc_dice_lip2", "fugc_hd", "fugc_hd_union", "fugc_hd_penalised"} <= set(summary["challenge"])
    with (out / "cases.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["case"] for r in rows] == [f"fugc/labeled/{i:04d}" for i in range(1, 6)]
    assert rows[0]["reference_file"] == str(root / "train" / "labeled_data" / "labels" / "0001.png")
    assert "fugc_dice" in printed and "ms per image" in printed and "ranking inputs" in printed
    # The run's test split, asked for, does not fit in 5 labelled images: said, with the way out, nothing written.
    code, _, err = _evaluate(capsys, str(tiny_run.folder), "--set", f"data.root={root}", "--split", "test", "--out", str(tmp_path / "e2"))
    assert code == 2 and "n_val + n_test" in err and "pass --split all" in err and not (tmp_path / "e2").exists()


def test_evaluate_refuses_another_task_and_an_existing_output(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_psfh_layout(tmp_path / "psfh", SyntheticSpec("psfh", "easy", 32), 4, seed=0)
    code, _, err = _evaluate(capsys, str(tiny_run.folder), "--set", f"data.root={root}", "--split", "all", "--out", str(tmp_path / "e"))
    assert code == 2 and "segments cervix" in err and "is psfh (pubic_symphysis, fetal_head)" in err
    card = torch.load(tiny_run.folder / "best.pt", weights_only=True)["card"]
    psfh = save_variant(tiny_run.folder / "best.pt", tmp_path / "psfh" / "m.pt", card=card | {"task": "psfh", "class_names": list(CLASS_NAMES["psfh"])})
    assert _evaluate(capsys, str(psfh), "--set", f"data.root={root}", "--split", "all", "--out", str(tmp_path / "e"))[0] == 0
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert {"psfh_dice", "psfh_hd", "psfh_asd", "psfh_delta_aop", "psfh_score"} <= set(summary["challenge"])
    assert summary["distance_unit"] == "mm"  # .mha spacing known: nnU-Net's block in mm; the challenge's in px
    code, _, err = _evaluate(capsys, str(psfh), "--set", f"data.root={root}", "--split", "all", "--out", str(tmp_path / "e"))
    assert code == 2 and "--overwrite" in err


# ------------------------------------------------------------------------------ challenge conventions


def _masks() -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros((10, 10), np.uint8)
    gt[2:4, 2:6] = 1  # 8 px of class 1
    gt[6:8, 2:6] = 2  # 8 px of class 2
    pred = gt.copy()
    pred[6:8, 2:4] = 0  # class 2: 4 of 8 pixels found
    return pred, gt


def test_fugc_dice_is_the_mean_over_the_lips_and_hd_the_maximum() -> None:
    pred, gt = _masks()
    case = fugc_case(pred, gt)
    assert case["fugc_dice_lip1"] == 1.0 and case["fugc_dice_lip2"] == pytest.approx(2 * 4 / 12)
    assert case["fugc_dice"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert case["fugc_hd_lip1"] == 0.0 and case["fugc_hd_lip2"] == pytest.approx(2.0)  # gt's column 2 to pred's column 4
    assert case["fugc_hd"] == pytest.approx((0.0 + 2.0 + 2.0) / 3)
    pred[pred == 2] = 0  # lip 2 missed entirely: an infinite distance (FUGC parity)
    assert math.isinf(fugc_case(pred, gt)["fugc_hd_lip2"]) and math.isinf(fugc_case(pred, gt)["fugc_hd"])
    assert fugc_case(pred, gt)["fugc_missed"] == 1.0


def test_psfh_dice_is_smoothed_and_an_empty_prediction_is_penalised() -> None:
    pred, gt = _masks()
    case = psfh_case(pred, gt)
    assert case["psfh_dice_ps"] == pytest.approx((2 * 8 + 1) / (8 + 8 + 1))
    assert case["psfh_dice_fh"] == pytest.approx((2 * 4 + 1) / (4 + 8 + 1))
    pred[pred == 2] = 0
    empty = psfh_case(pred, gt)
    assert (empty["psfh_dice_fh"], empty["psfh_hd_fh"], empty["psfh_asd_fh"]) == (0.0, 100.0, 100.0)
    assert empty["psfh_hd"] == pytest.approx((0.0 + 100.0 + empty["psfh_hd_union"]) / 3)


def test_a_missed_lip_makes_fugcs_mean_infinite_and_scores_worse_than_a_bad_find() -> None:
    """Dropping the infinite case from the mean (training's ``aggregate``) would rank the model that misses a
    lip above the one that finds it badly; FUGC's rule and the penalised mean do not."""
    _, gt = _masks()
    bad = gt.copy()
    bad[gt == 2] = 0
    bad[9, 9] = 2  # lip 2 found far away: gt's (6, 2) is hypot(3, 7) from it
    missed = gt.copy()
    missed[gt == 2] = 0
    finds_badly = [fugc_case(gt, gt), fugc_case(bad, gt)]
    misses = [fugc_case(gt, gt), fugc_case(missed, gt)]
    assert finds_badly[1]["fugc_hd_lip2"] == pytest.approx(math.hypot(3, 7)) and misses[1]["fugc_missed"] == 1.0
    a, b = fugc_summary(finds_badly), fugc_summary(misses)
    assert math.isfinite(a["fugc_hd"]) and math.isinf(b["fugc_hd"]) and b["fugc_images_with_infinite_hd"] == 1
    diagonal = math.hypot(10, 10)
    assert misses[1]["fugc_hd_penalised"] == pytest.approx((0.0 + diagonal + misses[1]["fugc_hd_union"]) / 3)
    assert b["fugc_hd_penalised"] > a["fugc_hd_penalised"]
    assert aggregate(misses)["fugc_hd"] < aggregate(finds_badly)["fugc_hd"]  # the old mean: the miss looked better
    assert b["ranking_inputs"]["hd"] == b["fugc_hd"] and b["ranking_inputs"]["weights"] == {"dsc": 0.4, "hd": 0.4, "runtime": 0.2}


def test_a_lip_in_neither_mask_has_no_dice_and_leaves_the_means() -> None:
    gt = np.zeros((10, 10), np.uint8)
    gt[2:4, 2:6] = 1
    case = fugc_case(gt, gt)
    assert math.isnan(case["fugc_dice_lip2"]) and math.isnan(case["fugc_hd_lip2"])
    assert case["fugc_dice"] == 1.0 and case["fugc_hd"] == 0.0 and case["fugc_missed"] == 0.0


def test_the_psfh_score_by_hand() -> None:
    # 0.25 * 0.9 + 0.25 * (0.5 * (1 - 0.10) + 0.5 * (1 - 0.02)) + 0.5 * (1 - 9 / 180) = 0.225 + 0.235 + 0.475
    assert psfh_score(0.9, 10.0, 2.0, 9.0) == pytest.approx(0.935)
    _, gt = _masks()
    perfect = psfh_summary([psfh_case(gt, gt)])
    assert perfect["psfh_dice"] == 1.0 and perfect["psfh_hd"] == 0.0 and perfect["psfh_asd"] == 0.0
    assert perfect["psfh_delta_aop"] == 0.0 and perfect["psfh_score"] == pytest.approx(1.0)
    # Neither 2x4 block yields an ellipse (too few vertices): both AoPs are 0 as the organisers score it, and said.
    assert perfect["psfh_aop_undefined"] == 2
