"""Segmentation metrics as pure numpy/scipy functions of 2-D masks (no torch).

Conventions (each recorded in config and result columns, see docs/results-schema.md):

- Dice and Jaccard are computed per image and per FOREGROUND class (labels 1..C-1); the ``_fg``
  value is the unweighted mean over foreground classes. Background is excluded because including
  it inflates scores. Both masks empty -> 1.0; exactly one empty -> 0.0.
- Surface of a binary mask = mask XOR binary_erosion(mask) with the 4-connected cross structuring
  element and background outside the image: a pixel is on the surface when one of its 4
  neighbours (or the image edge) is background, so the surface itself is an 8-connected curve.
  This is MONAI's ``get_mask_edges`` and medpy's (connectivity=1) surface.
- Surface distances: Euclidean, in the units of ``spacing`` = (row, col) pixel size (mm) when
  given, else pixels; computed with scipy's exact distance transform on the bounding box of
  pred | gt (exact, because every surface pixel lies inside that box).
- Hausdorff (``eval.hd_percentile``, ``eval.hd_convention``): "max_directed" = max of the two
  directed percentile distances (MONAI); "pooled" = percentile of the distances of both
  directions pooled together (medpy's hd95; smaller or equal). Percentile 100 is the classic HD.
  Percentiles use numpy's default linear interpolation.
- ASD is symmetric: the mean of the pooled distances of both directions (MONAI symmetric=True;
  medpy's ``assd`` instead averages the two directed means).
- Empty masks (``eval.empty_penalty``): both empty -> distance 0.0; exactly one empty -> the
  penalty: a float (e.g. 100 for PSFH parity), "inf" (FUGC parity) or "diagonal" (the image
  diagonal in the same units). ``evaluate_case`` counts foreground classes present in gt and
  missing in pred as ``empty_pred``.

The challenges' distances (FUGC 2025, FH-PS-AOP / PSFHS score with SimpleITK) are not boundary distances:

- ``region_hausdorff`` is SimpleITK's ``HausdorffDistanceImageFilter.GetHausdorffDistance``: the maximum
  over EVERY non-zero pixel of either mask of its distance to the nearest non-zero pixel of the other
  (ITK's directed filter reads the other mask's signed Maurer distance map, clamped at 0 inside). A hole
  in one mask that the other fills costs only the hole's radius, not the distance across it.
- ``average_hausdorff`` is that filter's ``GetAverageHausdorffDistance``: the MEAN of the two directed
  means over all pixels (not the pooled mean).
- ``contour_asd`` is the FH-PS-AOP organisers' ASD (their ``cal_asd``, built on SimpleITK's
  ``SignedMaurerDistanceMapImageFilter``): the zero set of the map is the contour, foreground pixels with
  a background 8-neighbour, the image edge not counting as background; ASD is the pooled mean of the
  distances from each contour pixel to the other mask's contour.

All three take ``spacing`` like ``hausdorff`` (ITK: ``SetUseImageSpacing(True)``); an empty mask has no
value in SimpleITK (it raises), so here both empty -> NaN and exactly one empty -> inf, and callers apply
their challenge's rule. ``tests/test_metrics.py`` proves them equal to SimpleITK on holes, several
components and spacing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "aggregate", "average_hausdorff", "average_surface_distance", "contour_asd", "dice", "evaluate_case", "hausdorff", "jaccard",
    "region_hausdorff",
]  # fmt: skip

Spacing = tuple[float, float] | Sequence[float] | None
Penalty = float | str

CONVENTIONS = ("max_directed", "pooled")
_CROSS = ndimage.generate_binary_structure(2, 1)
_SQUARE = ndimage.generate_binary_structure(2, 2)  # 8-neighbourhood: ITK's contour of the Maurer distance map


def _binary_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"pred and gt must be 2-D masks of one shape, got {pred.shape}, {gt.shape}")
    return pred.astype(bool, copy=False), gt.astype(bool, copy=False)


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice 2|P & G| / (|P| + |G|) of two (H, W) binary masks; both empty -> 1.0, one -> 0.0."""
    p, g = _binary_pair(pred, gt)
    total = int(p.sum()) + int(g.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(p, g).sum()) / total


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Jaccard |P & G| / |P | G| of two (H, W) binary masks; both empty -> 1.0, one -> 0.0."""
    p, g = _binary_pair(pred, gt)
    union = int(np.logical_or(p, g).sum())
    return 1.0 if union == 0 else int(np.logical_and(p, g).sum()) / union


def _spacing(spacing: Spacing) -> tuple[float, float]:
    if spacing is None:
        return (1.0, 1.0)
    sp = tuple(float(s) for s in spacing)
    if len(sp) != 2 or not all(math.isfinite(s) and s > 0 for s in sp):
        raise ValueError(f"spacing must be two positive (row, col) sizes, got {spacing}")
    return (sp[0], sp[1])


def _penalty(empty_penalty: Penalty, shape: tuple[int, ...], sp: tuple[float, float]) -> float:
    """Distance reported when exactly one of the two masks is empty."""
    if isinstance(empty_penalty, str):
        if empty_penalty == "inf":
            return math.inf
        if empty_penalty == "diagonal":
            return math.hypot(shape[0] * sp[0], shape[1] * sp[1])
        raise ValueError(f"empty_penalty must be a number, 'inf' or 'diagonal', got {empty_penalty!r}")
    value = float(empty_penalty)
    if not value >= 0:
        raise ValueError(f"empty_penalty must be >= 0, got {empty_penalty}")
    return value


def _surface(mask: np.ndarray) -> np.ndarray:
    # border_value=0: outside the (cropped) image counts as background, so cropping is exact.
    eroded: np.ndarray = ndimage.binary_erosion(mask, structure=_CROSS, border_value=0)
    surface: np.ndarray = mask ^ eroded
    return surface


def _surface_distances(p: np.ndarray, g: np.ndarray, sp: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Directed distances (pred -> gt surface, gt -> pred surface) of two non-empty masks."""
    rows, cols = np.nonzero(p | g)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    sp_surf, sg_surf = _surface(p[box]), _surface(g[box])
    # EDT of ~surface = distance of every pixel to the nearest surface pixel of the other mask.
    to_g = ndimage.distance_transform_edt(~sg_surf, sampling=sp)
    to_p = ndimage.distance_transform_edt(~sp_surf, sampling=sp)
    return to_g[sp_surf], to_p[sg_surf]


def _check_distance_args(percentile: float, convention: str) -> None:
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown Hausdorff convention {convention!r}; expected one of {CONVENTIONS}")


def _hd(d_pg: np.ndarray, d_gp: np.ndarray, percentile: float, convention: str) -> float:
    if convention == "pooled":
        return float(np.percentile(np.concatenate([d_pg, d_gp]), percentile))
    return float(max(np.percentile(d_pg, percentile), np.percentile(d_gp, percentile)))


def _asd(d_pg: np.ndarray, d_gp: np.ndarray) -> float:
    return float(np.concatenate([d_pg, d_gp]).mean())


def _empty_distance(p: np.ndarray, g: np.ndarray, penalty: float) -> float | None:
    """0 if both masks are empty, the penalty if one is, None if neither is."""
    p_any, g_any = bool(p.any()), bool(g.any())
    if p_any and g_any:
        return None
    return 0.0 if p_any == g_any else penalty


def hausdorff(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Spacing = None,
    percentile: float = 95.0,
    convention: str = "max_directed",
    empty_penalty: Penalty = "diagonal",
) -> float:
    """Percentile Hausdorff distance between the surfaces of two (H, W) binary masks.

    ``spacing`` (row, col) in mm, None = pixels. ``convention`` "max_directed" (MONAI) or "pooled"
    (medpy); ``percentile=100`` is the maximum (classic HD). Both empty -> 0.0; one empty ->
    ``empty_penalty`` (float, "inf" or "diagonal").
    """
    _check_distance_args(percentile, convention)
    p, g = _binary_pair(pred, gt)
    sp = _spacing(spacing)
    empty = _empty_distance(p, g, _penalty(empty_penalty, p.shape, sp))
    if empty is not None:
        return empty
    return _hd(*_surface_distances(p, g, sp), percentile, convention)


def average_surface_distance(pred: np.ndarray, gt: np.ndarray, spacing: Spacing = None, empty_penalty: Penalty = "diagonal") -> float:
    """Symmetric average surface distance of two (H, W) binary masks: mean of the pooled
    distances of both directions. Units, spacing and empty handling as in ``hausdorff``."""
    p, g = _binary_pair(pred, gt)
    sp = _spacing(spacing)
    empty = _empty_distance(p, g, _penalty(empty_penalty, p.shape, sp))
    if empty is not None:
        return empty
    return _asd(*_surface_distances(p, g, sp))


def _undefined(p: np.ndarray, g: np.ndarray) -> float | None:
    """NaN if both masks are empty, inf if one is, None if neither is (SimpleITK raises on any empty mask)."""
    p_any, g_any = bool(p.any()), bool(g.any())
    if p_any and g_any:
        return None
    return math.nan if p_any == g_any else math.inf


def _region_distances(p: np.ndarray, g: np.ndarray, sp: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Directed distances of every pixel of ``p`` to the nearest pixel of ``g``, and of ``g`` to ``p``."""
    rows, cols = np.nonzero(p | g)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))  # exact: both masks lie inside it
    p, g = p[box], g[box]
    return ndimage.distance_transform_edt(~g, sampling=sp)[p], ndimage.distance_transform_edt(~p, sampling=sp)[g]


def region_hausdorff(pred: np.ndarray, gt: np.ndarray, spacing: Spacing = None) -> float:
    """SimpleITK's Hausdorff distance of two (H, W) binary masks: over all their pixels, not their boundaries.

    ``spacing`` (row, col) in mm, None = pixels. Both empty -> NaN, one empty -> inf.
    """
    p, g = _binary_pair(pred, gt)
    undefined = _undefined(p, g)
    if undefined is not None:
        return undefined
    d_pg, d_gp = _region_distances(p, g, _spacing(spacing))
    return float(max(d_pg.max(), d_gp.max()))


def average_hausdorff(pred: np.ndarray, gt: np.ndarray, spacing: Spacing = None) -> float:
    """SimpleITK's average Hausdorff distance: the mean of the two directed means over all pixels.
    Units and empty masks as in ``region_hausdorff``."""
    p, g = _binary_pair(pred, gt)
    undefined = _undefined(p, g)
    if undefined is not None:
        return undefined
    d_pg, d_gp = _region_distances(p, g, _spacing(spacing))
    return float((d_pg.mean() + d_gp.mean()) / 2.0)


def _itk_contour(mask: np.ndarray) -> np.ndarray:
    # border_value=1: ITK's contour does not treat the outside of the image as background.
    eroded: np.ndarray = ndimage.binary_erosion(mask, structure=_SQUARE, border_value=1)
    return mask & ~eroded


def contour_asd(pred: np.ndarray, gt: np.ndarray, spacing: Spacing = None) -> float:
    """The FH-PS-AOP organisers' ASD: pooled mean distance between the two masks' ITK contours.
    Units and empty masks as in ``region_hausdorff``; a mask filling the whole image has no contour -> inf."""
    p, g = _binary_pair(pred, gt)
    undefined = _undefined(p, g)
    if undefined is not None:
        return undefined
    cp, cg = _itk_contour(p), _itk_contour(g)  # on the whole image: a crop would make its edge look like foreground
    if not (cp.any() and cg.any()):
        return math.inf  # their script divides ITK's 1.8e19 "no contour" distances: no usable value
    d_pg, d_gp = _region_distances(cp, cg, _spacing(spacing))
    return float(np.concatenate([d_pg, d_gp]).mean())


def _check_labels(name: str, labels: np.ndarray, n_classes: int) -> None:
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
        raise ValueError(f"{name} must be an integer label map, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{name} labels must lie in [0, {n_classes}), got [{labels.min()}, {labels.max()}]")


def _class_metrics(
    p: np.ndarray, g: np.ndarray, sp: tuple[float, float], penalty: float, q: float, conv: str
) -> tuple[float, float, float, float]:
    """(dice, jaccard, hd, asd) for one class, surface distances computed once."""
    empty = _empty_distance(p, g, penalty)
    if empty is not None:
        hd = asd = empty
    else:
        d_pg, d_gp = _surface_distances(p, g, sp)
        hd, asd = _hd(d_pg, d_gp, q, conv), _asd(d_pg, d_gp)
    return dice(p, g), jaccard(p, g), hd, asd


def evaluate_case(
    pred: np.ndarray,
    gt: np.ndarray,
    class_names: Sequence[str],
    spacing: Spacing = None,
    *,
    hd_percentile: float = 95.0,
    hd_convention: str = "max_directed",
    empty_penalty: Penalty = "diagonal",
) -> dict[str, float]:
    """All metrics of one image. ``pred``, ``gt``: (H, W) integer label maps; ``class_names[0]``
    is the background (e.g. ["background", "anterior_lip", "posterior_lip"]).

    Returns ``dice_<name>``, ``jaccard_<name>``, ``hd95_<name>``, ``asd_<name>`` per foreground
    class, the same with ``_fg`` (unweighted mean over foreground classes; inf if any class is
    inf), and ``empty_pred`` (number of foreground classes present in gt but absent from pred).
    The ``hd95`` prefix stays whatever ``hd_percentile`` is (``eval.hd_percentile`` records it).
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"pred and gt must be 2-D label maps of one shape, got {pred.shape}, {gt.shape}")
    if len(class_names) < 2:
        raise ValueError(f"class_names must hold background and >= 1 foreground class: {class_names}")
    _check_distance_args(hd_percentile, hd_convention)
    _check_labels("pred", pred, len(class_names))
    _check_labels("gt", gt, len(class_names))
    sp = _spacing(spacing)
    penalty = _penalty(empty_penalty, pred.shape, sp)

    out: dict[str, float] = {}
    per_metric: dict[str, list[float]] = {"dice": [], "jaccard": [], "hd95": [], "asd": []}
    empty_pred = 0
    for c, name in enumerate(class_names[1:], start=1):
        p, g = pred == c, gt == c
        empty_pred += int(g.any() and not p.any())
        class_values = _class_metrics(p, g, sp, penalty, hd_percentile, hd_convention)
        for metric, value in zip(per_metric, class_values, strict=True):
            out[f"{metric}_{name}"] = value
            per_metric[metric].append(value)
    for metric, values in per_metric.items():
        out[f"{metric}_fg"] = float(np.mean(values))
    out["empty_pred"] = float(empty_pred)
    return out


def aggregate(cases: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean over cases of every key (keys in first-seen order; a key missing from a case is
    averaged over the cases that have it), plus ``n_cases``.

    Infinite values (one-empty cases under ``empty_penalty="inf"``) are left out of the mean and
    counted in an extra ``<key>_n_inf`` key, present only when some occurred; a key that is
    infinite in every case stays inf. NaN propagates (it signals a bug, not an empty mask).
    """
    values: dict[str, list[float]] = {}
    for case in cases:
        for key, value in case.items():
            values.setdefault(key, []).append(float(value))
    out: dict[str, float] = {}
    for key, vals in values.items():
        arr = np.asarray(vals, dtype=np.float64)
        is_inf = np.isinf(arr)
        if not is_inf.any():
            out[key] = float(arr.mean())
            continue
        finite = arr[~is_inf]
        out[key] = float(finite.mean()) if finite.size else math.inf
        out[f"{key}_n_inf"] = float(is_inf.sum())
    out["n_cases"] = float(len(cases))
    return out
