"""Issue 32's switches: the class gate, class-balanced CE, the light and absent noisy decoders, class diagnostics."""

from __future__ import annotations

import pytest
import torch

from hdc_ray.config import load_config
from hdc_ray.data import build_data
from hdc_ray.losses.supervised import _balanced_weights, supervised_loss
from hdc_ray.model.nets import count_parameters
from hdc_ray.train.loop import fit
from hdc_ray.train.methods import build_models
from hdc_ray.train.schedules import gate_start, ramp_at

CLASSES = ("background", "a", "b")


def test_the_gate_opens_after_the_first_epoch_that_found_every_class() -> None:
    cfg = load_config("tiny", ["loss.class_gate=true", "train.epochs=6"])
    history = [{"epoch": 1.0, "val_dice_a": 0.6, "val_dice_b": 0.1}, {"epoch": 2.0, "val_dice_a": 0.6, "val_dice_b": 0.3},
               {"epoch": 3.0, "val_dice_a": 0.1, "val_dice_b": 0.3}]  # fmt: skip
    assert gate_start(cfg, history[:1], CLASSES) is None
    assert gate_start(cfg, history, CLASSES) == 2 * cfg.train.iters_per_epoch  # stays open once opened (a warm-up)
    assert gate_start(load_config("tiny"), [], CLASSES) == 0  # no gate: from step 0
    assert ramp_at(cfg, 10, None) == 0.0
    assert ramp_at(cfg, 8 + 3, 8) == pytest.approx(ramp_at(cfg, 3, 0))  # the ramp-up starts when the gate opens


def test_a_closed_gate_trains_hdc_on_its_supervised_term_alone() -> None:
    cfg = load_config("tiny", ["loss.class_gate=true", "loss.class_gate_dice=0.99", "train.epochs=2"])
    result = fit(cfg, build_data(cfg.data, progress=False), progress=False, log=lambda _: None)
    assert all(h["ramp"] == 0.0 for h in result.history)
    assert all(h["train_loss"] == pytest.approx(h["train_loss_sup"], rel=1e-6) for h in result.history)  # L = L_sup


def test_balanced_weights_keep_the_pixel_count_and_lift_the_small_class() -> None:
    target = torch.tensor([[[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 0, 2], [0, 0, 0, 0]]])
    weights = _balanced_weights(target, 3, 255)
    assert weights[target].sum() == pytest.approx(target.numel())
    assert weights[2] == pytest.approx(2 * weights[1]) and weights[1] > weights[0]
    assert _balanced_weights(torch.zeros(1, 2, 2, dtype=torch.long), 3, 255).tolist() == pytest.approx([1.0, 1.0, 1.0])  # absent: 1
    logits = torch.zeros(1, 3, 4, 4)
    logits[:, 0] = 5.0  # predicts background everywhere: the balanced loss punishes the missed small classes harder
    assert supervised_loss(logits, None, target, balanced=True) > supervised_loss(logits, None, target)


@pytest.mark.parametrize(("kind", "has_mi"), [("full", True), ("light", True), ("none", False)])
def test_noisy_decoder_kinds(kind: str, has_mi: bool) -> None:
    cfg = load_config("tiny", [f"model.noisy_decoder={kind}", "train.epochs=1"])
    result = fit(cfg, build_data(cfg.data, progress=False), progress=False, log=lambda _: None)
    assert ("train_loss_mi" in result.history[-1]) == has_mi and "train_loss_cg" in result.history[-1]
    sizes = {k: count_parameters(build_models(load_config("tiny", [f"model.noisy_decoder={k}"]), 3).trainable) for k in ("full", "light", "none")}
    assert sizes["none"] < sizes["light"] < sizes["full"]


def test_class_diagnostics_log_the_other_network_and_pseudo_label_shares() -> None:
    cfg = load_config("tiny", ["train.log_classes=true", "train.epochs=1"])
    record = fit(cfg, build_data(cfg.data, progress=False), progress=False, log=lambda _: None).history[-1]
    assert {"val_other_dice_fg", "train_pseudo_c0", "train_confident_c2"} <= set(record)
    shares = sum(record[f"train_pseudo_c{k}"] for k in range(3))
    assert shares == pytest.approx(1.0, abs=1e-6)  # every valid pixel is pseudo-labelled one class
    assert all(record[f"train_confident_c{k}"] <= record[f"train_pseudo_c{k}"] + 1e-9 for k in range(3))
    plain = fit(load_config("tiny", ["train.epochs=1"]), build_data(cfg.data, progress=False), progress=False, log=lambda _: None).history[-1]
    assert "val_other_dice_fg" not in plain and "train_pseudo_c0" not in plain
