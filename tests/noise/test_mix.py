"""FixMatch / UniMatch strong views: the CutMix box, mixing images and pseudo-labels alike, colour jitter."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from hdc_ray.config import NoiseConfig
from hdc_ray.noise import cutmix, cutmix_box, jitter_view


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_cutmix_takes_the_partner_inside_the_box_for_images_labels_and_logits() -> None:
    box = torch.zeros(1, 3, 4, dtype=torch.bool)
    box[0, 1:3, 1:3] = True  # a 2 x 2 box
    x = torch.zeros(1, 1, 3, 4)
    partner = torch.ones(1, 1, 3, 4)
    expected = torch.tensor([[[[0.0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0]]]])
    torch.testing.assert_close(cutmix(x, partner, box), expected)
    labels, labels_mix = torch.zeros(1, 3, 4, dtype=torch.long), torch.full((1, 3, 4), 2)
    assert cutmix(labels, labels_mix, box).tolist() == [[[0, 0, 0, 0], [0, 2, 2, 0], [0, 2, 2, 0]]]
    # Mixing logits mixes the pseudo-labels and their confidences: argmax / max are per pixel.
    logits = torch.tensor([3.0, 0.0, 0.0])[None, :, None, None].expand(1, 3, 3, 4)  # class 0, confident
    logits_mix = torch.tensor([0.0, 0.0, 1.0])[None, :, None, None].expand(1, 3, 3, 4)  # class 2, less so
    mixed = cutmix(logits, logits_mix, box).softmax(dim=1)
    assert mixed.argmax(dim=1).tolist() == [[[0, 0, 0, 0], [0, 2, 2, 0], [0, 2, 2, 0]]]
    conf = mixed.amax(dim=1)
    assert float(conf[0, 0, 0]) == pytest.approx(torch.tensor([3.0, 0, 0]).softmax(0).max().item())
    assert float(conf[0, 1, 1]) == pytest.approx(torch.tensor([0.0, 0, 1]).softmax(0).max().item())


def test_cutmix_refuses_a_box_of_another_shape() -> None:
    with pytest.raises(ValueError, match="box must be"):
        cutmix(torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4), torch.zeros(2, 4, 5, dtype=torch.bool))


def test_cutmix_box_is_one_rectangle_of_the_drawn_area_and_reproducible() -> None:
    cfg = dataclasses.replace(NoiseConfig(), cutmix_p=1.0)
    for seed in range(40):
        box = cutmix_box(_gen(seed), 32, 48, cfg)
        rows, cols = box.any(dim=1).nonzero()[:, 0], box.any(dim=0).nonzero()[:, 0]
        if len(rows) == 0:  # int() rounding can give a side of 0 for the smallest areas
            continue
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert int(box.sum()) == h * w  # filled rectangle
        # w = int(sqrt(a / r)), h = int(sqrt(a r)): h * w <= a, and the floor loses less than one row + one column
        area = h * w / (32 * 48)
        assert area <= cfg.cutmix_max_area + 1e-9
        assert (h + 1) * (w + 1) / (32 * 48) >= cfg.cutmix_min_area
        assert cfg.cutmix_ratio - 0.2 <= h / max(w, 1) <= 1 / cfg.cutmix_ratio + 1.5
        assert torch.equal(box, cutmix_box(_gen(seed), 32, 48, cfg))


def test_cutmix_box_probability() -> None:
    never, always = dataclasses.replace(NoiseConfig(), cutmix_p=0.0), dataclasses.replace(NoiseConfig(), cutmix_p=1.0)
    assert not any(cutmix_box(_gen(s), 16, 16, never).any() for s in range(20))
    assert sum(bool(cutmix_box(_gen(s), 16, 16, always).any()) for s in range(20)) >= 18
    half = sum(bool(cutmix_box(_gen(s), 16, 16, NoiseConfig()).any()) for s in range(200))
    assert 70 <= half <= 130  # p = 0.5


def test_jitter_view_stays_in_range_is_reproducible_and_changes_the_image() -> None:
    x = torch.rand(6, 1, 16, 16, generator=_gen(0))
    a = jitter_view(x, [_gen(s) for s in range(6)])
    b = jitter_view(x, [_gen(s) for s in range(6)])
    assert a.shape == x.shape and torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert sum(not torch.allclose(a[i], x[i]) for i in range(6)) >= 3
