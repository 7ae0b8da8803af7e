"""supervised_loss: hand-computed cross-entropies on tiny logits."""

from __future__ import annotations

import math

import pytest
import torch

from hdc_ray.losses import supervised_loss

LOG2 = math.log(2.0)


def _logits(pixels: list[list[float]]) -> torch.Tensor:
    """One image, one row of pixels: [[l0, l1], ...] -> (1, 2, 1, W)."""
    return torch.tensor(pixels, dtype=torch.float32).T.reshape(1, 2, 1, len(pixels))


# pixel [0, 0] -> CE log 2 for either class; pixel [log 3, 0] has p = (3/4, 1/4), so CE = log 4
# for class 1 and log(4/3) for class 0.
CASES = [
    # (main pixels, noisy pixels or None, target row, expected)
    ([[0, 0], [math.log(3), 0]], None, [0, 1], (LOG2 + 2 * LOG2) / 2),
    ([[0, 0], [math.log(3), 0]], None, [1, 0], (LOG2 + math.log(4 / 3)) / 2),
    ([[0, 0], [math.log(3), 0]], [[0, 0], [0, 0]], [0, 1], (1.5 * LOG2 + LOG2) / 2),
    ([[0, 0], [math.log(3), 0]], None, [0, 255], LOG2),  # ignored pixel leaves the mean
    ([[0, 0], [math.log(3), 0]], [[0, 0], [0, 0]], [255, 255], 0.0),  # all ignored: 0, not NaN
]


@pytest.mark.parametrize(("main", "noisy", "target", "expected"), CASES)
def test_values(main, noisy, target, expected) -> None:
    t = torch.tensor([[target]])  # (1, 1, W)
    n = None if noisy is None else _logits(noisy)
    loss = supervised_loss(_logits(main), n, t)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_mean_over_images() -> None:
    # Two 1x1 images with CE log 2 and log 4: mean 1.5 log 2.
    logits = torch.tensor([[0.0, 0.0], [math.log(3), 0.0]]).reshape(2, 2, 1, 1)
    target = torch.tensor([0, 1]).reshape(2, 1, 1)
    assert supervised_loss(logits, None, target).item() == pytest.approx(1.5 * LOG2, abs=1e-6)


@pytest.mark.parametrize("fill", [None, 0.0, 7.0])
def test_finite_gradient_identical_decoders(fill: float | None) -> None:
    base = torch.randn(2, 3, 4, 5) if fill is None else torch.full((2, 3, 4, 5), fill)
    main = base.clone().requires_grad_()
    noisy = base.clone().requires_grad_()
    target = torch.randint(0, 3, (2, 4, 5))
    target[0, 0, 0] = 255
    loss = supervised_loss(main, noisy, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(main.grad).all() and torch.isfinite(noisy.grad).all()
    assert main.grad.abs().sum() > 0 and noisy.grad.abs().sum() > 0


def test_all_ignored_gradient_is_finite() -> None:
    main = torch.randn(1, 2, 2, 2, requires_grad=True)
    supervised_loss(main, None, torch.full((1, 2, 2), 255)).backward()
    assert torch.isfinite(main.grad).all()


@pytest.mark.parametrize(
    ("main_shape", "noisy_shape", "target_shape", "target_dtype"),
    [
        ((1, 2, 3, 3), None, (1, 3, 4), torch.int64),  # target spatial size
        ((1, 2, 3, 3), None, (2, 3, 3), torch.int64),  # target batch
        ((2, 3, 3), None, (2, 3, 3), torch.int64),  # logits not 4-D
        ((1, 2, 3, 3), (1, 3, 3, 3), (1, 3, 3), torch.int64),  # noisy classes
        ((1, 2, 3, 3), None, (1, 3, 3), torch.float32),  # float target
    ],
)
def test_bad_shapes_raise(main_shape, noisy_shape, target_shape, target_dtype) -> None:
    noisy = None if noisy_shape is None else torch.zeros(noisy_shape)
    with pytest.raises(ValueError):
        supervised_loss(torch.zeros(main_shape), noisy, torch.zeros(target_shape, dtype=target_dtype))


def test_soft_dice_by_hand() -> None:
    from hdc_ray.losses.supervised import soft_dice_loss

    # pixels [0, 0] -> p1 = 1/2; [log 3, 0] -> p1 = 1/4. Target [1, 0]: intersection 1/2,
    # sum p1 = 3/4, sum g = 1 -> dice = (2 * 1/2 + 1) / (3/4 + 1 + 1) = 2 / 2.75.
    logits, target = _logits([[0, 0], [math.log(3), 0]]), torch.tensor([[[1, 0]]])
    assert soft_dice_loss(logits, target).item() == pytest.approx(1 - 2 / 2.75, abs=1e-6)
    # the ignored pixel drops out of both sums: dice = (1 + 1) / (1/2 + 1 + 1)
    assert soft_dice_loss(logits, torch.tensor([[[1, 255]]])).item() == pytest.approx(1 - 2 / 2.5, abs=1e-6)


def test_dice_term_is_added_per_decoder_and_reaches_its_minimum_on_a_perfect_prediction() -> None:
    from hdc_ray.losses.supervised import soft_dice_loss

    target = torch.tensor([[[0, 1, 1, 0]]])
    confident = 20.0 * torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float()  # (1, 2, 1, 4)
    assert soft_dice_loss(confident, target).item() == pytest.approx(0.0, abs=1e-6)
    logits = torch.randn(1, 2, 1, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    plain = supervised_loss(logits, None, target)
    with_dice = supervised_loss(logits, None, target, dice_weight=0.5)
    assert with_dice.item() == pytest.approx(plain.item() + 0.5 * soft_dice_loss(logits, target).item(), abs=1e-6)
    with_dice.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
