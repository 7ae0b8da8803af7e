"""sigmoid_rampup and weighted_total."""

from __future__ import annotations

import math

import pytest
import torch

from hdc_ray.losses import sigmoid_rampup, weighted_total


@pytest.mark.parametrize(
    ("step", "length", "expected"),
    [
        (0, 10, math.exp(-5)),
        (5, 10, math.exp(-5 * 0.25)),
        (7.5, 10, math.exp(-5 * 0.0625)),
        (10, 10, 1.0),
        (25, 10, 1.0),  # clipped at T
        (-3, 10, math.exp(-5)),  # clipped at 0
        (3, 0, 1.0),  # no ramp
        (0, -1, 1.0),
    ],
)
def test_sigmoid_rampup(step: float, length: float, expected: float) -> None:
    assert sigmoid_rampup(step, length) == pytest.approx(expected, rel=1e-12)


def _scalars(**values: float) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, requires_grad=True) for k, v in values.items()}


WEIGHTS = {"sup": 1.0, "pc": 1.0, "cg": 0.1, "mi": 0.5}
TOTAL_CASES = [
    # (components, weights, ramp, unramped, expected)
    ({"sup": 2.0, "pc": 3.0, "cg": -26.0, "mi": 0.5}, WEIGHTS, 0.5, ("sup",), 2 + 0.5 * 0.65),
    ({"sup": 2.0, "pc": 3.0}, WEIGHTS, 1.0, ("sup",), 5.0),
    ({"sup": 2.0, "pc": 3.0}, {"sup": 0.5, "pc": 2.0}, 0.25, ("sup",), 1.0 + 1.5),
    ({"sup": 2.0, "pc": 3.0}, WEIGHTS, 0.5, ("sup", "pc"), 5.0),  # nothing ramped
    ({"sup": 2.0, "pc": 3.0}, WEIGHTS, 0.5, (), 2.5),  # everything ramped
    ({"sup": 2.0, "pc": math.nan}, {"sup": 1.0, "pc": 0.0}, 1.0, ("sup",), 2.0),  # ablated NaN
    ({"sup": 2.0, "pc": math.inf}, WEIGHTS, 0.0, ("sup",), 2.0),  # ramp 0 skips ramped terms
    ({"pc": 3.0}, {"pc": 0.0}, 1.0, ("sup",), 0.0),  # all skipped: exact zero
]


@pytest.mark.parametrize(("values", "weights", "ramp", "unramped", "expected"), TOTAL_CASES)
def test_weighted_total_values(values, weights, ramp, unramped, expected) -> None:
    total = weighted_total(_scalars(**values), weights, ramp, unramped)
    assert total.ndim == 0
    assert total.item() == pytest.approx(expected, abs=1e-6)


def test_weighted_total_gradients_are_weights() -> None:
    comps = _scalars(sup=1.0, pc=1.0, cg=1.0, mi=float("nan"))
    weighted_total(comps, {**WEIGHTS, "mi": 0.0}, ramp=0.5).backward()
    assert comps["sup"].grad.item() == pytest.approx(1.0)
    assert comps["pc"].grad.item() == pytest.approx(0.5)
    assert comps["cg"].grad.item() == pytest.approx(0.05)
    assert comps["mi"].grad is None  # ablated: not in the graph at all


@pytest.mark.parametrize(
    ("components", "weights", "ramp"),
    [
        ({"sup": torch.tensor(1.0), "mi": torch.tensor(1.0)}, {"sup": 1.0}, 1.0),  # missing weight
        ({}, {"sup": 1.0}, 1.0),
        ({"sup": torch.ones(2)}, {"sup": 1.0}, 1.0),  # not a scalar
        ({"sup": torch.tensor(1.0)}, {"sup": 1.0}, -0.1),
        ({"sup": torch.tensor(1.0)}, {"sup": 1.0}, math.nan),
    ],
)
def test_weighted_total_bad_inputs_raise(components, weights, ramp) -> None:
    with pytest.raises(ValueError):
        weighted_total(components, weights, ramp)
