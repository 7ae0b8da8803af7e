"""metrics: hand-computed overlaps and distances; brute-force O(n^2) surface distances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from hdc_ray.metrics import (
    aggregate,
    average_hausdorff,
    average_surface_distance,
    contour_asd,
    dice,
    evaluate_case,
    hausdorff,
    jaccard,
    region_hausdorff,
)


def _mask(shape: tuple[int, int], *pixels: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    for r, c in pixels:
        m[r, c] = True
    return m


# ---------------------------------------------------------------- Dice / Jaccard by hand
P = np.array([[1, 1, 0], [0, 1, 0]], dtype=bool)  # 3 pixels
G = np.array([[1, 0, 0], [0, 1, 1]], dtype=bool)  # 3 pixels, 2 shared
EMPTY = np.zeros((2, 3), dtype=bool)
OVERLAP_CASES = [
    # (pred, gt, dice, jaccard)
    (P, G, 2 * 2 / 6, 2 / 4),
    (P, P, 1.0, 1.0),
    (P, ~P, 0.0, 0.0),
    (EMPTY, EMPTY, 1.0, 1.0),
    (P, EMPTY, 0.0, 0.0),
    (EMPTY, G, 0.0, 0.0),
    (P.astype(np.uint8), G.astype(np.int64), 2 / 3, 0.5),  # 0/1 integer masks
]


@pytest.mark.parametrize(("pred", "gt", "d", "j"), OVERLAP_CASES)
def test_dice_jaccard(pred, gt, d, j) -> None:
    assert dice(pred, gt) == pytest.approx(d)
    assert jaccard(pred, gt) == pytest.approx(j)


# ------------------------------------------------------------ distances by hand
ONE = _mask((3, 5), (0, 0))
TWO = _mask((3, 5), (0, 0), (0, 4))  # directed ONE->TWO: [0]; TWO->ONE: [0, 4]
DIST_CASES = [
    # (pred, gt, spacing, percentile, convention, expected)
    (_mask((5, 5), (0, 0)), _mask((5, 5), (0, 3)), None, 95, "max_directed", 3.0),
    (_mask((5, 5), (0, 0)), _mask((5, 5), (3, 4)), None, 100, "pooled", 5.0),
    (ONE, TWO, None, 100, "max_directed", 4.0),
    (ONE, TWO, None, 100, "pooled", 4.0),
    (ONE, TWO, None, 50, "max_directed", 2.0),  # max(median [0], median [0, 4])
    (ONE, TWO, None, 50, "pooled", 0.0),  # median [0, 0, 4]
    (ONE, TWO, None, 75, "pooled", 2.0),  # linear interpolation in [0, 0, 4]
    (_mask((3, 3), (0, 0)), _mask((3, 3), (2, 0)), (0.5, 1.0), 95, "max_directed", 1.0),
    (_mask((3, 3), (0, 0)), _mask((3, 3), (0, 2)), (0.5, 1.0), 95, "max_directed", 2.0),
    (_mask((3, 3), (0, 0)), _mask((3, 3), (2, 2)), (0.5, 1.5), 100, "pooled", math.hypot(1, 3)),
]


@pytest.mark.parametrize(("pred", "gt", "spacing", "q", "conv", "expected"), DIST_CASES)
def test_hausdorff_by_hand(pred, gt, spacing, q, conv, expected) -> None:
    assert hausdorff(pred, gt, spacing, q, conv) == pytest.approx(expected)
    assert hausdorff(gt, pred, spacing, q, conv) == pytest.approx(expected)  # symmetric


def test_asd_by_hand() -> None:
    assert average_surface_distance(ONE, TWO) == pytest.approx(4 / 3)  # mean of [0, 0, 4]
    # 3x3 square (columns 0-2) vs the same square shifted to columns 1-3, in a 3x5 image. Each
    # surface is the square minus its centre (8 pixels). From sq: column 0 (3 pixels) is 1 away,
    # and sq's middle-right (1, 2) is the shifted square's centre, so also 1 away; the other 4
    # pixels lie on the shifted surface. Mirror image the other way: 8 ones in 16 distances.
    sq = np.zeros((3, 5), dtype=bool)
    sq[:, 0:3] = True
    shifted = np.roll(sq, 1, axis=1)
    assert average_surface_distance(sq, shifted) == pytest.approx(8 / 16)
    assert hausdorff(sq, shifted, percentile=100) == pytest.approx(1.0)


def test_interior_is_not_surface() -> None:
    # A 5x5 block against its own centre pixel: the block's surface is its 16-pixel ring, whose
    # nearest point to the centre is 2 away (0 if the interior counted) and farthest a corner at
    # sqrt(8).
    block = np.zeros((7, 7), dtype=bool)
    block[1:6, 1:6] = True
    centre = _mask((7, 7), (3, 3))
    assert hausdorff(block, centre, percentile=100) == pytest.approx(math.sqrt(8))
    assert hausdorff(block, centre, percentile=0, convention="pooled") == pytest.approx(2.0)


# ------------------------------------------------------------------ empty masks
@pytest.mark.parametrize(
    ("penalty", "spacing", "expected"),
    [
        ("diagonal", None, 5.0),  # 3 x 4 image
        ("diagonal", (2.0, 0.75), math.sqrt(36 + 9)),
        ("inf", None, math.inf),
        (100.0, None, 100.0),
        (0, (2.0, 2.0), 0.0),
    ],
)
def test_one_empty_gives_penalty(penalty, spacing, expected) -> None:
    full, empty = _mask((3, 4), (1, 1)), np.zeros((3, 4), dtype=bool)
    for pred, gt in ((full, empty), (empty, full)):
        assert hausdorff(pred, gt, spacing, empty_penalty=penalty) == expected
        assert average_surface_distance(pred, gt, spacing, empty_penalty=penalty) == expected


def test_both_empty_is_zero() -> None:
    empty = np.zeros((3, 4), dtype=bool)
    assert hausdorff(empty, empty, empty_penalty="inf") == 0.0
    assert average_surface_distance(empty, empty, empty_penalty="inf") == 0.0


# ------------------------------------------------ brute force on random masks
def _surface_points(mask: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Pixels of the mask with a 4-neighbour (or the image edge) outside it, scaled to units."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]  # all four neighbours inside
    return np.argwhere(mask & ~inner) * np.asarray(spacing)


def _brute_force(pred, gt, spacing, q):
    d = cdist(_surface_points(pred, spacing), _surface_points(gt, spacing))
    d_pg, d_gp = d.min(axis=1), d.min(axis=0)
    max_directed = max(np.percentile(d_pg, q), np.percentile(d_gp, q))
    pooled = np.concatenate([d_pg, d_gp])
    return max_directed, np.percentile(pooled, q), pooled.mean()


def _random_mask(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    if kind == "noise":
        return rng.random(shape) < 0.3
    rr, cc = np.mgrid[: shape[0], : shape[1]]  # a random ellipse, possibly cut by the border
    r0, c0 = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
    a, b = rng.uniform(3, shape[0] / 2), rng.uniform(3, shape[1] / 2)
    return ((rr - r0) / a) ** 2 + ((cc - c0) / b) ** 2 <= 1


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spacing", [None, (0.7, 1.9)])
@pytest.mark.parametrize("kind", ["noise", "ellipse"])
def test_matches_brute_force(seed: int, spacing, kind: str) -> None:
    rng = np.random.default_rng(seed)
    shape = (24, 31)
    pred, gt = _random_mask(rng, shape, kind), _random_mask(rng, shape, kind)
    if not (pred.any() and gt.any()):
        pytest.skip("empty random mask")
    sp = (1.0, 1.0) if spacing is None else spacing
    for q in (95.0, 100.0, 50.0):
        max_directed, pooled, mean = _brute_force(pred, gt, sp, q)
        assert hausdorff(pred, gt, spacing, q, "max_directed") == pytest.approx(max_directed)
        assert hausdorff(pred, gt, spacing, q, "pooled") == pytest.approx(pooled)
    assert average_surface_distance(pred, gt, spacing) == pytest.approx(mean)
    assert hausdorff(pred, gt, spacing, 95.0, "pooled") <= hausdorff(pred, gt, spacing, 95.0)


# ------------------------------------------------------------------ evaluate_case
NAMES = ["background", "anterior_lip", "posterior_lip"]


def test_evaluate_case_by_hand() -> None:
    gt = np.zeros((4, 6), dtype=np.int64)
    gt[0, 0:2] = 1  # class 1: two pixels
    gt[3, 0] = 2  # class 2: one pixel
    pred = np.zeros_like(gt)
    pred[0, 0] = 1  # class 1: one of the two -> Dice 2/3, Jaccard 1/2, distances: [0] and [0, 1]
    out = evaluate_case(pred, gt, NAMES, hd_percentile=100, empty_penalty=100.0)
    expected = {
        "dice_anterior_lip": 2 / 3,
        "jaccard_anterior_lip": 0.5,
        "hd95_anterior_lip": 1.0,
        "asd_anterior_lip": 1 / 3,
        "dice_posterior_lip": 0.0,  # missing in pred
        "jaccard_posterior_lip": 0.0,
        "hd95_posterior_lip": 100.0,
        "asd_posterior_lip": 100.0,
        "dice_fg": 1 / 3,
        "jaccard_fg": 0.25,
        "hd95_fg": 50.5,
        "asd_fg": (1 / 3 + 100) / 2,
        "empty_pred": 1.0,
    }
    assert out.keys() == expected.keys()
    for key, value in expected.items():
        assert out[key] == pytest.approx(value), key


def test_evaluate_case_absent_class_and_spacing() -> None:
    gt = np.zeros((4, 4), dtype=np.uint8)
    gt[0, 0] = 1
    pred = gt.copy()
    pred[0, 3] = 2  # class 2 predicted but absent from gt: not counted as empty_pred
    out = evaluate_case(pred, gt, NAMES, spacing=(1.0, 0.5), empty_penalty="diagonal")
    assert out["dice_anterior_lip"] == 1.0 and out["hd95_anterior_lip"] == 0.0
    assert out["dice_posterior_lip"] == 0.0
    assert out["hd95_posterior_lip"] == pytest.approx(math.hypot(4 * 1.0, 4 * 0.5))
    assert out["empty_pred"] == 0.0


def test_evaluate_case_both_empty_class() -> None:
    gt = np.zeros((3, 3), dtype=np.int64)
    gt[1, 1] = 1
    out = evaluate_case(gt, gt, NAMES, empty_penalty="inf")
    assert out["dice_posterior_lip"] == 1.0 and out["hd95_posterior_lip"] == 0.0
    assert out["dice_fg"] == 1.0 and out["hd95_fg"] == 0.0 and out["empty_pred"] == 0.0


def test_evaluate_case_matches_binary_functions() -> None:
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 3, (20, 20))
    pred = rng.integers(0, 3, (20, 20))
    out = evaluate_case(pred, gt, NAMES, (0.5, 2.0), hd_convention="pooled")
    for c, name in enumerate(NAMES[1:], start=1):
        p, g = pred == c, gt == c
        assert out[f"hd95_{name}"] == hausdorff(p, g, (0.5, 2.0), convention="pooled")
        assert out[f"asd_{name}"] == average_surface_distance(p, g, (0.5, 2.0))
        assert out[f"dice_{name}"] == dice(p, g)


@pytest.mark.parametrize(
    ("pred", "gt", "kwargs"),
    [
        (np.zeros((3, 3), int), np.zeros((3, 4), int), {}),
        (np.zeros((3, 3, 1), int), np.zeros((3, 3, 1), int), {}),
        (np.full((3, 3), 3), np.zeros((3, 3), int), {}),  # label 3 with 3 classes
        (np.zeros((3, 3)), np.zeros((3, 3)), {}),  # float label maps
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"hd_convention": "medpy"}),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"hd_percentile": 101}),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"empty_penalty": "max"}),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"spacing": (1.0, 0.0)}),
        (np.zeros((3, 3), int), np.zeros((3, 3), int), {"spacing": (1.0,)}),
    ],
)
def test_evaluate_case_bad_inputs_raise(pred, gt, kwargs) -> None:
    with pytest.raises(ValueError):
        evaluate_case(pred, gt, NAMES, **kwargs)


def test_binary_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        dice(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        hausdorff(np.zeros((2, 2)), np.zeros((2, 3)))


# ---------------------------------------------------------------------- aggregate
def test_aggregate() -> None:
    cases = [
        {"dice_fg": 0.5, "hd95_fg": 2.0, "asd_fg": math.inf},
        {"dice_fg": 1.0, "hd95_fg": math.inf, "asd_fg": math.inf},
        {"dice_fg": 0.0, "hd95_fg": 4.0, "asd_fg": math.inf},
    ]
    out = aggregate(cases)
    assert out == {
        "dice_fg": pytest.approx(0.5),
        "hd95_fg": pytest.approx(3.0),  # mean of the finite values
        "hd95_fg_n_inf": 1.0,
        "asd_fg": math.inf,  # infinite in every case
        "asd_fg_n_inf": 3.0,
        "n_cases": 3.0,
    }
    assert "dice_fg_n_inf" not in out


def test_aggregate_empty() -> None:
    assert aggregate([]) == {"n_cases": 0.0}


# ------------------------------------------------- the challenges' distances against SimpleITK itself
sitk = pytest.importorskip("SimpleITK")  # the dev extra; the functions under test need only scipy


def _itk_image(mask: np.ndarray, spacing: tuple[float, float] | None) -> object:
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    if spacing is not None:
        image.SetSpacing((spacing[1], spacing[0]))  # ITK orders (x, y) = (col, row)
    return image


def _itk_hausdorff(pred: np.ndarray, gt: np.ndarray, spacing=None) -> tuple[float, float]:
    f = sitk.HausdorffDistanceImageFilter()
    f.Execute(_itk_image(pred, spacing), _itk_image(gt, spacing))
    return f.GetHausdorffDistance(), f.GetAverageHausdorffDistance()


def _maurer(mask: np.ndarray, spacing) -> np.ndarray:
    f = sitk.SignedMaurerDistanceMapImageFilter()
    f.SetUseImageSpacing(True)
    f.SetSquaredDistance(False)
    return np.abs(sitk.GetArrayFromImage(f.Execute(_itk_image(mask, spacing))))


def _itk_contour_asd(pred: np.ndarray, gt: np.ndarray, spacing=None) -> float:
    """The FH-PS-AOP organisers' ASD, written from their description: |signed Maurer map| of each mask, its zero
    set is that mask's contour; the other mask's map summed over this contour, both ways, over all contour pixels."""
    maps, contours = [], []
    for mask in (pred, gt):
        maps.append(_maurer(mask, spacing))
        # The zero set at unit spacing, as the organisers ran it: with other spacings ITK leaves float noise
        # (~1e-8) on some contour pixels, and their `== 0` would drop them.
        contours.append(_maurer(mask, None) == 0)
    total = maps[0][contours[1]].sum() + maps[1][contours[0]].sum()
    return float(total / (contours[0].sum() + contours[1].sum()))


def _square_with_hole(shape: tuple[int, int] = (48, 48)) -> tuple[np.ndarray, np.ndarray]:
    full = np.zeros(shape, bool)
    full[4:44, 4:44] = True
    holed = full.copy()
    holed[22:25, 22:25] = False  # a 3x3 hole the other mask fills
    return full, holed


def _itk_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    full, holed = _square_with_hole()
    lip = np.zeros((40, 60), bool)
    lip[10:20, 5:50] = True
    lip_holed = lip.copy()
    lip_holed[14:16, 20:22] = False
    two = np.zeros((40, 60), bool)
    two[5:12, 5:15] = True
    two[25:35, 40:55] = True  # two components far apart
    one = np.zeros((40, 60), bool)
    one[6:12, 6:16] = True
    edge = np.zeros((30, 30), bool)
    edge[0:12, 0:30] = True  # touches three image edges: ITK's contour ignores them
    edge_pred = np.zeros((30, 30), bool)
    edge_pred[0:9, 3:30] = True
    return [("hole", holed, full), ("hole, other way", full, holed), ("lip with a hole", lip_holed, lip),
            ("two components vs one", one, two), ("image edge", edge_pred, edge)]  # fmt: skip


@pytest.mark.parametrize(("name", "pred", "gt"), _itk_cases(), ids=[c[0] for c in _itk_cases()])
@pytest.mark.parametrize("spacing", [None, (0.5, 1.3)])
def test_challenge_distances_equal_simpleitk(name: str, pred: np.ndarray, gt: np.ndarray, spacing) -> None:
    hd, avg = _itk_hausdorff(pred, gt, spacing)
    assert region_hausdorff(pred, gt, spacing) == pytest.approx(hd, abs=1e-6)
    assert average_hausdorff(pred, gt, spacing) == pytest.approx(avg, abs=1e-6)
    assert contour_asd(pred, gt, spacing) == pytest.approx(_itk_contour_asd(pred, gt, spacing), abs=1e-5)


def test_a_filled_hole_costs_its_radius_not_the_distance_across_the_mask() -> None:
    full, holed = _square_with_hole()
    # Region HD: the hole's centre (23, 23) is 2 px from the holed mask (its rim at row 21); SimpleITK agrees.
    assert _itk_hausdorff(holed, full)[0] == pytest.approx(2.0)
    assert region_hausdorff(holed, full) == pytest.approx(2.0)
    # Boundary HD: the hole's rim is surface, and its pixel (25, 23) is 18 px from the full square's outer
    # ring (row 43); the outer rings coincide. So training's boundary metric reports 18 for a 3x3 hole.
    assert hausdorff(holed, full, percentile=100) == pytest.approx(18.0)


@pytest.mark.parametrize("seed", range(8))
def test_challenge_distances_equal_simpleitk_on_random_masks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (40, 52)
    kind = "noise" if seed % 2 else "ellipse"
    pred, gt = _random_mask(rng, shape, kind), _random_mask(rng, shape, kind)
    if not (pred.any() and gt.any()):
        pytest.skip("empty random mask")
    spacing = (0.8, 1.7) if seed % 3 else None
    hd, avg = _itk_hausdorff(pred, gt, spacing)
    assert region_hausdorff(pred, gt, spacing) == pytest.approx(hd, abs=1e-5)
    assert average_hausdorff(pred, gt, spacing) == pytest.approx(avg, abs=1e-5)
    assert contour_asd(pred, gt, spacing) == pytest.approx(_itk_contour_asd(pred, gt, spacing), abs=1e-5)


def test_empty_masks_have_no_simpleitk_value_and_get_nan_or_inf() -> None:
    empty, some = np.zeros((8, 8), bool), _mask((8, 8), (2, 3))
    for pred, gt in ((empty, some), (some, empty), (empty, empty)):
        with pytest.raises(RuntimeError):
            _itk_hausdorff(pred, gt)
    for f in (region_hausdorff, average_hausdorff, contour_asd):
        assert math.isinf(f(empty, some)) and math.isinf(f(some, empty)) and math.isnan(f(empty, empty))
