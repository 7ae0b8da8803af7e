"""From a sweep to masks (issue 23): the shared smoke sweep's best trial predicts and reproduces its recorded test Dice."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from hdc_ray.cli import main
from hdc_ray.data import SyntheticSpec, write_fugc_layout


@pytest.mark.ray
@pytest.mark.slow
def test_the_best_trial_predicts_and_reproduces_its_recorded_test_dice(smoke_sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    trials = pd.read_parquet(smoke_sweep.folder / "trials.parquet")
    done = trials[trials["status"] == "completed"]
    best = done.loc[done["val_dice_fg"].idxmax()]
    checkpoint = Path(best["checkpoint_path"])  # in-trial runs keep their own files (issue 34), not Tune checkpoints
    assert checkpoint.is_file() and checkpoint.parent == smoke_sweep.folder / "train" / best["trial_id"] / "checkpoints"
    state = torch.load(checkpoint, weights_only=True)
    assert state["card"]["task"] == "cervix" and state["card"]["input_size"] == 32  # the checkpoint carries the card
    out = tmp_path / "eval"
    assert main(["evaluate", str(smoke_sweep.folder), "--best", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert f"trial {best['trial_id']}" in capsys.readouterr().out
    assert abs(summary["as_training"]["test_dice_fg"] - best["test_dice_fg"]) <= 0.005
    root = write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 48), 2, 1, seed=0)
    assert main(["predict", str(smoke_sweep.folder), "--best", str(root), "--out", str(tmp_path / "masks"), "--no-progress"]) == 0
    for image in root.glob("train/*/images/*.png"):
        mask = tmp_path / "masks" / image.relative_to(root).parent.parent / "labels" / image.name
        assert Image.open(mask).size == Image.open(image).size == (48, 48)
