"""Networks: feature names and shapes, the EMA teacher, pickling (Ray pickles everything)."""

from __future__ import annotations

import pickle

import pytest
import torch

from hdc_ray.config import ModelConfig, NoiseConfig
from hdc_ray.model import build_dual, build_segnet, count_parameters, ema_update, make_teacher
from hdc_ray.noise import FeaturePerturbation


@pytest.mark.parametrize("backbone", ["unet", "resunet"])
def test_segnet_shapes_and_feature_names(backbone: str) -> None:
    net = build_segnet(ModelConfig(backbone=backbone, base_width=4, depth=3), num_classes=3)  # type: ignore[arg-type]
    out = net(torch.zeros(2, 1, 32, 32))
    assert out.logits.shape == (2, 3, 32, 32)
    assert out.feats["enc1"].shape == (2, 4, 32, 32)
    assert out.feats["bottleneck"].shape == (2, 16, 8, 8) and out.feats["bottleneck"] is out.feats["enc3"]
    assert out.feats["dec_last"].shape == (2, 4, 32, 32) and out.feats["dec_last"] is out.feats["dec2"]


def test_dual_decoder_shares_the_encoder_and_perturbs_only_the_noisy_branch() -> None:
    torch.manual_seed(0)
    dual = build_dual(ModelConfig(base_width=4, depth=3), 3, FeaturePerturbation(NoiseConfig(feature_noise=0.5)))
    x, seeds = torch.rand(2, 1, 32, 32), torch.tensor([1, 2])
    out = dual(x, seeds)
    assert out.main.feats["enc1"] is out.noisy.feats["enc1"]  # encoder features are shared
    plain = dual.main_branch()(x)
    torch.testing.assert_close(plain.logits, out.main.logits)
    again = dual(x, seeds)
    torch.testing.assert_close(again.noisy.logits, out.noisy.logits)  # same seeds, same noise
    other = dual(x, torch.tensor([3, 4]))
    assert not torch.allclose(other.noisy.logits, out.noisy.logits)


def test_ema_teacher_follows_the_student_and_has_no_gradients() -> None:
    student = build_segnet(ModelConfig(base_width=4, depth=2), 2)
    teacher = make_teacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    before = [p.clone() for p in teacher.parameters()]
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    ema_update(teacher, student, decay=0.75)
    for t, b, s in zip(teacher.parameters(), before, student.parameters(), strict=True):
        torch.testing.assert_close(t, 0.75 * b + 0.25 * s)


def test_models_pickle() -> None:
    dual = build_dual(ModelConfig(base_width=4, depth=2), 3, FeaturePerturbation(NoiseConfig()))
    clone = pickle.loads(pickle.dumps(dual))
    x, seeds = torch.rand(1, 1, 16, 16), torch.tensor([5])
    torch.testing.assert_close(clone(x, seeds).noisy.logits, dual(x, seeds).noisy.logits)


def test_parameter_count_of_dual_student_is_encoder_plus_two_decoders() -> None:
    cfg = ModelConfig(base_width=8, depth=3)
    single = count_parameters(build_segnet(cfg, 3))
    dual = build_dual(cfg, 3, FeaturePerturbation(NoiseConfig()))
    decoder = count_parameters(dual.main)
    assert count_parameters(dual) == single + decoder
