"""``hdc-ray evaluate REF PRED``: nnU-Net's summary.json from two folders of masks, in any layout, and every refusal."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hdc_ray.cli import main
from hdc_ray.data import SyntheticSpec, read_mha, write_fugc_layout, write_mha, write_psfh_layout
from hdc_ray.inference.scoring import json_ready, label_metrics, mean_metrics
from tests.inference.conftest import TinyRun


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def _strict_json(path: Path) -> dict[str, Any]:
    """summary.json, refusing the non-standard NaN / Infinity that json.dumps writes by default."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{path} holds {name}: not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def _png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8)).save(path)


def _lips(shape: tuple[int, int] = (20, 30)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[3:8, 4:20] = 1
    mask[10:15, 6:22] = 2
    return mask


# ------------------------------------------------------------------------------------ end to end


def test_ref_pred_on_predicts_output_gives_the_dice_of_evaluate_model(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 48), 5, 2, seed=3)
    assert _run(capsys, "evaluate", str(tiny_run.folder), "--set", f"data.root={root}", "--out", str(tmp_path / "by_model"))[0] == 0
    assert _run(capsys, "predict", str(tiny_run.folder), str(root), "--out", str(tmp_path / "masks"))[0] == 0
    code, printed, _ = _run(capsys, "evaluate", str(root), str(tmp_path / "masks"), "--out", str(tmp_path / "by_folders"))
    assert code == 0, printed
    by_model, by_folders = _strict_json(tmp_path / "by_model" / "summary.json"), _strict_json(tmp_path / "by_folders" / "summary.json")
    assert by_folders["n_cases"] == by_model["n_cases"] == 5  # the 2 unlabelled predictions have no reference: not cases
    assert by_folders["foreground_mean"]["Dice"] == by_model["foreground_mean"]["Dice"]
    for ours, theirs in zip(by_folders["metric_per_case"], by_model["metric_per_case"], strict=True):
        assert ours["reference_file"] == theirs["reference_file"] and ours["metrics"] == theirs["metrics"]
        assert ours["prediction_file"] == str(tmp_path / "masks" / "train" / "labeled_data" / "labels" / Path(ours["reference_file"]).name)
    assert by_folders["challenge"]["fugc_dice"] == by_model["challenge"]["fugc_dice"]
    assert by_folders["challenge"]["fugc_hd"] == by_model["challenge"]["fugc_hd"]
    assert by_folders["task"] == "cervix" and by_folders["layouts"] == {"reference": "fugc", "prediction": "fugc"}
    assert "fugc_dice" in printed and "foreground" in printed


# ---------------------------------------------------------------------------------- layouts and units


def test_psfh_layouts_score_in_mm_and_the_challenge_in_pixels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_psfh_layout(tmp_path / "psfh", SyntheticSpec("psfh", "easy", 40), 2, seed=0, spacing=(0.25, 0.25))
    pred = tmp_path / "pred"
    pred.mkdir()
    for path in sorted((root / "label_mha").glob("*.mha")):
        mask, spacing = read_mha(path)
        write_mha(pred / path.name, np.roll(mask, 2, axis=1), spacing)  # a plain folder: every structure 2 px to the right
    code, printed, _ = _run(capsys, "evaluate", str(root), str(pred), "--out", str(tmp_path / "e"))
    assert code == 0, printed
    s = _strict_json(tmp_path / "e" / "summary.json")
    assert s["distance_unit"] == "mm" and s["task"] == "psfh" and s["labels"] == {"1": "pubic_symphysis", "2": "fetal_head"}
    case = s["metric_per_case"][0]
    assert case["spacing"] == [0.25, 0.25]
    assert case["metrics"]["2"]["HD"] == pytest.approx(0.25 * case["challenge"]["psfh_hd_fh"])  # mm = 0.25 x the organisers' px
    assert {"psfh_score", "psfh_delta_aop", "psfh_asd"} <= set(s["challenge"]) and "psfh_score" in printed


def test_plain_folders_need_a_task_for_the_challenge_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for side in ("ref", "pred"):
        _png(tmp_path / side / "a.png", _lips())
    code, printed, _ = _run(capsys, "evaluate", str(tmp_path / "ref"), str(tmp_path / "pred"), "--out", str(tmp_path / "e"))
    assert code == 0 and "pass --task cervix or --task psfh" in printed
    s = _strict_json(tmp_path / "e" / "summary.json")
    assert s["challenge"] is None and s["foreground_mean"]["Dice"] == 1.0 and s["distance_unit"] == "px"
    code, printed, _ = _run(capsys, "evaluate", str(tmp_path / "ref"), str(tmp_path / "pred"), "--task", "cervix", "--out", str(tmp_path / "e"), "--overwrite")
    assert code == 0 and _strict_json(tmp_path / "e" / "summary.json")["challenge"]["fugc_dice"] == 1.0


def test_empty_labels_follow_nnunet_and_infinite_distances_are_valid_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    both_lips, lip1_only = _lips(), np.where(_lips() == 2, 0, _lips())
    _png(tmp_path / "ref" / "a.png", both_lips)
    _png(tmp_path / "pred" / "a.png", lip1_only)  # lip 2 missed: Dice 0, distances infinite
    _png(tmp_path / "ref" / "b.png", lip1_only)
    _png(tmp_path / "pred" / "b.png", lip1_only)  # lip 2 in neither: NaN, skipped from the means
    code, _, _ = _run(capsys, "evaluate", str(tmp_path / "ref"), str(tmp_path / "pred"), "--task", "cervix", "--out", str(tmp_path / "e"))
    assert code == 0
    s = _strict_json(tmp_path / "e" / "summary.json")
    a, b = (c["metrics"]["2"] for c in s["metric_per_case"])
    assert a["Dice"] == 0.0 and a["HD"] is None and a["HD_infinite"] is True and a["n_pred"] == 0
    assert b["Dice"] is None and "Dice_infinite" not in b and b["HD"] is None and "HD_infinite" not in b  # null alone: NaN
    assert s["mean"]["2"]["Dice"] == 0.0  # b skipped, not counted as 1.0
    assert s["mean"]["2"]["HD"] is None and s["mean"]["2"]["HD_infinite"] is True
    assert s["challenge"]["fugc_hd"] is None and s["challenge"]["fugc_hd_infinite"] is True
    assert s["challenge"]["fugc_hd_penalised"] > 0 and s["challenge"]["fugc_images_with_infinite_hd"] == 1


def test_label_metrics_by_hand() -> None:
    ref, pred = np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.uint8)
    ref[0, 0:3] = 1  # 3 pixels
    pred[0, 1:4] = 1  # 3 pixels, 2 shared
    m = label_metrics(pred, ref, 1)
    assert (m["TP"], m["FP"], m["FN"], m["TN"], m["n_pred"], m["n_ref"]) == (2, 1, 1, 16, 3, 3)
    assert m["Dice"] == pytest.approx(4 / 6) and m["IoU"] == pytest.approx(2 / 4)
    # Directed boundary distances [0, 0, 1] each way: HD 1, HD95 = numpy's 95th percentile of [0, 0, 1] = 0.9.
    assert m["HD"] == 1.0 and m["HD95"] == pytest.approx(0.9) and m["ASD"] == pytest.approx(2 / 6)
    empty = label_metrics(pred, ref, 2)
    assert all(math.isnan(empty[k]) for k in ("Dice", "IoU", "HD", "HD95", "ASD")) and empty["TN"] == 20
    mean, foreground = mean_metrics([{"1": m, "2": empty}, {"1": m, "2": label_metrics(ref, ref, 1)}])
    assert mean["2"]["Dice"] == 1.0 and foreground["Dice"] == pytest.approx((4 / 6 + 1.0) / 2)


def test_json_ready_writes_null_for_nan_and_flags_infinity() -> None:
    assert json_ready({"a": math.inf, "b": math.nan, "c": np.float32(0.5), "d": [np.int64(3), (1.0, 2.0)]}) == {
        "a": None, "a_infinite": True, "b": None, "c": 0.5, "d": [3, [1.0, 2.0]]}  # fmt: skip


# ------------------------------------------------------------------------------------------ refusals


def _folders(tmp_path: Path, ref: dict[str, np.ndarray], pred: dict[str, np.ndarray]) -> tuple[str, str]:
    for side, masks in (("ref", ref), ("pred", pred)):
        (tmp_path / side).mkdir()
        for name, mask in masks.items():
            if name.endswith(".mha"):
                write_mha(tmp_path / side / name, mask, (0.5, 0.5))
            else:
                _png(tmp_path / side / name, mask)
    return str(tmp_path / "ref"), str(tmp_path / "pred")


REFUSALS = {
    "missing prediction": ({"a.png": _lips(), "b.png": _lips(), "c.png": _lips()}, {"a.png": _lips()},
                           "no prediction for 2 of 3 reference case(s): b.png, c.png"),
    "prediction without reference": ({"a.png": _lips()}, {"a.png": _lips(), "zz.png": _lips()}, "1 prediction(s) with no reference"),
    "label values": ({"a.png": _lips()}, {"a.png": _lips() * 100}, "pred/a.png: unknown label values [100, 200]"),
    "reference label values": ({"a.png": _lips() + 1}, {"a.png": _lips()}, "ref/a.png: unknown label values [3]"),
    "shape": ({"a.png": _lips()}, {"a.png": _lips((21, 30))}, "pred/a.png: prediction is 21x30 but its reference"),
    "two masks for one case": ({"a.png": _lips()}, {"a.png": _lips(), "a.mha": _lips()}, "shares its case name 'a'"),
}  # fmt: skip


@pytest.mark.parametrize("name", REFUSALS)
def test_mismatched_folders_are_refused_in_one_line_naming_the_files(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref_masks, pred_masks, expected = REFUSALS[name]
    ref, pred = _folders(tmp_path, ref_masks, pred_masks)
    code, _, err = _run(capsys, "evaluate", ref, pred, "--out", str(tmp_path / "e"))
    assert code == 2 and expected in err and err.count("\n") == 1, err
    assert not (tmp_path / "e").exists()


def test_options_of_the_model_mode_and_conflicting_tasks_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, pred = _folders(tmp_path, {"a.png": _lips()}, {"a.png": _lips()})
    code, _, err = _run(capsys, "evaluate", ref, pred, "--split", "test", "--tta")
    assert code == 2 and "--split, --tta: for evaluate MODEL" in err
    fugc = write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 32), 1, 0, seed=0)
    code, _, err = _run(capsys, "evaluate", str(fugc), str(fugc), "--task", "psfh")
    assert code == 2 and "name different tasks: cervix, psfh" in err
    shutil.rmtree(tmp_path / "pred")
    (tmp_path / "pred").mkdir()
    code, _, err = _run(capsys, "evaluate", ref, str(tmp_path / "pred"))
    assert code == 2 and "no mask files" in err


def test_a_run_given_as_ref_is_told_apart(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _png(tmp_path / "scans" / "a.png", _lips())
    code, _, err = _run(capsys, "evaluate", str(tiny_run.folder), str(tmp_path / "scans"))
    assert code == 2 and "looks like a trained run: evaluate MODEL takes it alone" in err
