"""The angle of progression: masks of known ellipses against the AoP computed by hand from the true ellipses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hdc_ray.inference.aop import angle_of_progression, fit_ellipse
from hdc_ray.inference.challenge import psfh_case

SHAPE = (256, 256)
HEAD = ((160.0, 150.0), 70.0, 50.0)  # centre (x, y), semi-axes along x and y: a level head, right of and below the symphysis


def _ellipse(centre: tuple[float, float], a: float, b: float, degrees: float) -> np.ndarray:
    """Pixels inside the ellipse with semi-axis ``a`` at ``degrees`` (x right, y down) and ``b`` across it."""
    rows, cols = np.mgrid[: SHAPE[0], : SHAPE[1]]
    x, y = cols - centre[0], rows - centre[1]
    t = math.radians(degrees)
    u, v = x * math.cos(t) + y * math.sin(t), -x * math.sin(t) + y * math.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _label(ps_degrees: float, ps: tuple[float, float] = (50.0, 70.0)) -> np.ndarray:
    label = np.zeros(SHAPE, np.uint8)
    label[_ellipse(HEAD[0], HEAD[1], HEAD[2], 0.0)] = 2
    label[_ellipse(ps, 22.0, 7.0, ps_degrees)] = 1
    return label


def _by_hand(ps_degrees: float, ps: tuple[float, float] = (50.0, 70.0)) -> tuple[float, np.ndarray, np.ndarray]:
    """(AoP, distal end, tangent point) from the true ellipses, by another route than the module's algebra.

    The symphysis' long axis ends at centre -+ 22 (cos t, sin t); the distal end is the right-hand one. Scaling
    x by 1/a and y by 1/b maps the head to the unit circle, where the tangent points from a point at distance
    r and angle base are at base -+ acos(1 / r). Of the two tangents the organisers take the one of smaller
    slope (y down): for this pose, the line passing above the head.
    """
    t = math.radians(ps_degrees)
    axis = 22.0 * np.array([math.cos(t), math.sin(t)])
    proximal, distal = np.asarray(ps) - axis, np.asarray(ps) + axis
    (cx, cy), a, b = HEAD
    q = (distal - (cx, cy)) / (a, b)
    base, off = math.atan2(q[1], q[0]), math.acos(1.0 / math.hypot(*q))
    touches = [np.array([cx + a * math.cos(p), cy + b * math.sin(p)]) for p in (base - off, base + off)]
    touch = min(touches, key=lambda p: (p[1] - distal[1]) / (p[0] - distal[0]))
    u, w = proximal - distal, touch - distal
    return math.degrees(math.acos(u @ w / (np.linalg.norm(u) * np.linalg.norm(w)))), distal, touch


@pytest.mark.parametrize("ps_degrees", [0.0, 30.0, 45.0])
def test_the_aop_of_known_ellipses_is_the_hand_computed_angle(ps_degrees: float) -> None:
    expected, distal, touch = _by_hand(ps_degrees)
    aop = angle_of_progression(_label(ps_degrees))
    assert aop.status == "ok"
    assert aop.degrees == pytest.approx(expected, abs=0.5)  # the fit sees pixels, not the true ellipse
    assert aop.distal == pytest.approx(tuple(distal), abs=0.5) and aop.tangent == pytest.approx(tuple(touch), abs=1.0)


def test_the_hand_case_at_30_degrees_in_numbers() -> None:
    # Distal end (50 + 22 cos 30, 70 + 22 sin 30) = (69.05, 81). The tangent above the head touches it at
    # (177.98, 101.68): atan(20.68 / 108.93) = 10.75 degrees below the rightward horizontal. The axis back to the
    # proximal end points 30 degrees above the leftward one. AoP = 180 - 30 + 10.75 = 160.75 degrees.
    expected, distal, touch = _by_hand(30.0)
    assert expected == pytest.approx(160.75, abs=0.01) and distal == pytest.approx((69.05, 81.0), abs=0.01)
    assert touch == pytest.approx((177.98, 101.68), abs=0.01)
    assert angle_of_progression(_label(30.0)).degrees == pytest.approx(160.52, abs=0.05)  # what the organisers' fit gives


def test_opencv_returns_the_ellipse_convention_the_organisers_geometry_assumes() -> None:
    """width <= height and 0 <= angle < 180, the long axis at angle - 90: else the 'long axis' would be the short one."""
    for degrees in (0.0, 30.0, 89.0, 120.0, 175.0):
        e = fit_ellipse(_ellipse((128.0, 128.0), 60.0, 25.0, degrees))
        assert e is not None and e.size[0] <= e.size[1] and 0.0 <= e.angle < 180.0
        assert e.size[1] == pytest.approx(120.0, abs=1.5) and e.size[0] == pytest.approx(50.0, abs=1.5)
        assert abs(math.sin(math.radians(e.angle - 90.0 - degrees))) < 0.02  # the long axis' direction


def test_a_missing_structure_scores_an_aop_of_zero_as_the_organisers_do() -> None:
    label = _label(30.0)
    no_ps = np.where(label == 1, 0, label)
    assert angle_of_progression(no_ps).degrees == 0.0 and angle_of_progression(no_ps).status == "no symphysis ellipse"
    tiny_head = np.zeros(SHAPE, np.uint8)
    tiny_head[100:102, 100:102] = 2  # 4 pixels: too few vertices to fit
    tiny_head[_ellipse((50.0, 70.0), 22.0, 7.0, 30.0)] = 1
    assert angle_of_progression(tiny_head).status == "no head ellipse"
    case = psfh_case(no_ps, label)  # prediction lost the symphysis: ΔAoP is the reference's whole AoP
    assert case["psfh_delta_aop"] == pytest.approx(case["psfh_aop_ref"]) and case["psfh_aop_status_pred"] == "no symphysis ellipse"
    assert (case["psfh_dice_ps"], case["psfh_hd_ps"], case["psfh_asd_ps"]) == (0.0, 100.0, 100.0)


def test_delta_aop_is_the_difference_of_the_two_angles() -> None:
    ref, pred = _label(30.0), _label(45.0)
    case = psfh_case(pred, ref)
    assert case["psfh_delta_aop"] == pytest.approx(abs(_by_hand(45.0)[0] - _by_hand(30.0)[0]), abs=0.6)
    assert case["psfh_delta_aop"] == pytest.approx(abs(case["psfh_aop_pred"] - case["psfh_aop_ref"]))
