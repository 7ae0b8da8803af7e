"""The three noise levels: geometry applied alike to images, masks and teacher outputs; determinism."""

from __future__ import annotations

import math

import pytest
import torch

from hdc_ray.config import NoiseConfig
from hdc_ray.noise import (
    channel_dropout,
    feature_dropout,
    feature_noise,
    generators,
    image_seeds,
    random_affine,
    strong_view,
    warp,
    warp_mask,
    weak_view,
)
from hdc_ray.noise.seeds import derive_seed


def _square_mask() -> torch.Tensor:
    mask = torch.zeros(1, 32, 32, dtype=torch.long)
    mask[0, 8:20, 10:24] = 2
    return mask


def test_identity_affine_is_identity() -> None:
    gens = generators(torch.tensor([0]))
    theta = random_affine(gens, rotate_deg=0.0, scale=0.0, flip_p=0.0)
    x = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(warp(x, theta), x, atol=1e-5, rtol=0)


def test_flip_matrix_flips() -> None:
    theta = random_affine(generators(torch.tensor([0])), rotate_deg=0.0, scale=0.0, flip_p=1.0)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    torch.testing.assert_close(warp(x, theta), x.flip(-1))


def test_weak_view_moves_image_and_mask_together() -> None:
    mask = _square_mask()
    image = (mask[:, None] > 0).float()  # the image IS the mask: both must stay aligned
    cfg = NoiseConfig(weak_rotate_deg=30.0, weak_scale=0.2, weak_flip_p=0.5)
    img_w, mask_w = weak_view(image, mask, generators(torch.tensor([7])), cfg)
    assert mask_w is not None
    agreement = ((img_w[:, 0] > 0.5) == (mask_w > 0)).float().mean()
    assert agreement > 0.97
    assert set(mask_w.unique().tolist()) <= {0, 2}


def test_strong_view_warp_maps_teacher_outputs_onto_the_student_frame() -> None:
    mask = _square_mask()
    image = (mask[:, None] > 0).float()
    cfg = NoiseConfig(strong_geometric=True, strong_rotate_deg=25.0, strong_scale=0.2, strong_brightness=0, strong_contrast=0,
                      strong_gamma=0, strong_blur_p=0, strong_noise_std=0, strong_speckle_std=0, strong_cutout_p=0)
    img_s, theta, valid = strong_view(image, generators(torch.tensor([3])), cfg)
    assert theta is not None
    pseudo = warp_mask(mask, theta)  # what the pipeline does to the teacher's weak-view prediction
    assert ((img_s[:, 0] > 0.5) == (pseudo > 0)).float().mean() > 0.97
    assert valid.dtype == torch.bool and 0.5 < valid.float().mean() <= 1.0


def test_photometric_strong_view_stays_in_range_and_keeps_outside_black() -> None:
    image = torch.rand(2, 1, 32, 32)
    image[:, :, :, :4] = 0.0  # outside the ultrasound sector
    img_s, theta, valid = strong_view(image, generators(torch.tensor([1, 2])), NoiseConfig(strong_geometric=False))
    assert theta is None and bool(valid.all())
    assert img_s.min() >= 0 and img_s.max() <= 1
    assert float(img_s[:, :, :, :4].abs().max()) == 0.0
    assert not torch.allclose(img_s, image)


def test_views_are_deterministic_per_seed() -> None:
    image = torch.rand(2, 1, 32, 32)
    a = strong_view(image, generators(torch.tensor([1, 2])), NoiseConfig())[0]
    b = strong_view(image, generators(torch.tensor([1, 2])), NoiseConfig())[0]
    c = strong_view(image, generators(torch.tensor([1, 3])), NoiseConfig())[0]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[0], c[0])  # image 0 has the same seed: same view, whatever its neighbour
    assert not torch.allclose(a[1], c[1])


def test_seeds_depend_on_every_part() -> None:
    seeds = {derive_seed(0, e, i, p) for e in range(3) for i in range(3) for p in range(3)}
    assert len(seeds) == 27 and all(0 <= s < 2**63 for s in seeds)
    assert image_seeds((0, 1, 2), range(4), 1).tolist() == image_seeds((0, 1, 2), [0, 1, 2, 3], 1).tolist()


def test_feature_noise_is_multiplicative_and_bounded() -> None:
    x = torch.full((4, 8, 8), 2.0)
    y = feature_noise(x, 0.3, torch.Generator().manual_seed(0))
    assert y.min() >= 2.0 * 0.7 - 1e-6 and y.max() <= 2.0 * 1.3 + 1e-6 and not torch.allclose(x, y)
    zero = torch.zeros(4, 8, 8)
    assert float(feature_noise(zero, 0.3, torch.Generator()).abs().max()) == 0.0


def test_feature_dropout_drops_the_most_attended_share() -> None:
    x = torch.arange(16.0).view(1, 4, 4).repeat(3, 1, 1)  # attention = value, distinct
    y = feature_dropout(x, 0.25)
    dropped = (y[0] == 0) & (x[0] != 0)
    assert int(dropped.sum()) == 4 and bool((x[0][dropped] >= 12).all())


def test_channel_dropout_zeroes_whole_channels_and_rescales() -> None:
    x = torch.ones(64, 4, 4)
    y = channel_dropout(x, 0.5, torch.Generator().manual_seed(1))
    per_channel = y.flatten(1)
    assert bool(((per_channel == 0).all(1) | (per_channel == 2.0).all(1)).all())
    assert 10 < int((per_channel == 0).all(1).sum()) < 54
    assert math.isclose(float(channel_dropout(x, 0.0, torch.Generator()).mean()), 1.0)


@pytest.mark.parametrize("mode", ["random", "all"])
def test_batched_feature_perturbation_is_the_per_image_definition(mode: str) -> None:
    """FeaturePerturbation folds the kinds into one multiplier per level; image by image with the definitions
    (feature_noise, feature_dropout, channel_dropout) and the same generators it gives the same maps."""
    import dataclasses

    from hdc_ray.noise import FeaturePerturbation

    cfg = dataclasses.replace(NoiseConfig(), feature_perturbation=mode)
    feats = [torch.randn(6, c, s, s, generator=torch.Generator().manual_seed(c)) for c, s in ((8, 16), (16, 8))]
    seeds = torch.arange(6) * 101 + 7
    got = FeaturePerturbation(cfg)(feats, seeds)
    gens = generators(seeds)
    kinds = ["noise", "drop", "channel"]
    chosen = [kinds if mode == "all" else [kinds[int(torch.randint(3, (), generator=g))]] for g in gens]
    for level, f in enumerate(feats):
        for i in range(6):
            x = f[i]
            for kind in chosen[i]:
                if kind == "noise":
                    x = feature_noise(x, cfg.feature_noise, gens[i])
                elif kind == "drop":
                    x = feature_dropout(x, cfg.feature_dropout)
                else:
                    x = channel_dropout(x, cfg.channel_dropout, gens[i])
            torch.testing.assert_close(got[level][i], x, rtol=1e-6, atol=1e-6)
