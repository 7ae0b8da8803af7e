"""The challenges' own scoring, per image and over a set (pure numpy; ``hdc_ray.metrics`` does the geometry).

FUGC 2025 (cervix): Dice per lip, averaged over the two lips; Hausdorff distance as SimpleITK's
``HausdorffDistanceImageFilter`` measures it (the maximum over all pixels of each region, not boundaries:
``metrics.region_hausdorff``) in pixels at native resolution, for lip 1, lip 2 and their union, averaged.
A lip present in the reference and missed by the prediction (or predicted where the reference has none)
makes that HD infinite, so the image's HD and the set's mean HD are infinite: FUGC's rule, kept as is
(``fugc_hd``). Beside it, ``fugc_hd_penalised`` counts each infinite distance as the image diagonal (the
largest distance the image allows), so two models that both miss a lip can still be told apart. A lip
absent from both masks has no Dice or HD (NaN) and is left out of that image's means. FUGC ranks teams on
0.4 DSC + 0.4 HD + 0.2 runtime by rank across teams, so a single model gets the three inputs, not a score.

FH-PS-AOP / PSFHS (psfh), as the organisers' evaluation script scores it: for PS, FH and their union, Dice
with +1 smoothing ``(2 sum(pg) + 1) / (sum(p) + sum(g) + 1)``, HD by SimpleITK's filter and their own
contour ASD (``metrics.contour_asd``), in pixels; an empty prediction scores Dice 0, HD 100 and ASD 100.
(Their script crashes on an empty reference under a non-empty prediction; here that scores HD 100 and ASD
100 too.) The AoP of prediction and reference (``inference.aop``) gives ΔAoP in degrees, and the score is
``S = 0.25 mDSC + 0.25 [0.5 (1 - mHD/100) + 0.5 (1 - mASD/100)] + 0.5 mean(1 - ΔAoP/180)``, each m a mean
over images and the three regions; like the script, mDSC, mHD/100 and mASD/100 are rounded to 8 places.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hdc_ray.inference.aop import angle_of_progression
from hdc_ray.inference.scoring import mean_defined
from hdc_ray.metrics import contour_asd, region_hausdorff

PSFH_EMPTY_DISTANCE = 100.0  # the organisers' distance for an empty prediction, px
FUGC_WEIGHTS = {"dsc": 0.4, "hd": 0.4, "runtime": 0.2}  # rank weights, across teams
_FUGC_PARTS = ("lip1", "lip2", "union")
_PSFH_PARTS = ("ps", "fh", "union")


def _parts(pred: np.ndarray, gt: np.ndarray, names: Sequence[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, pred mask, gt mask) for class 1, class 2 and their union."""
    return [(names[0], pred == 1, gt == 1), (names[1], pred == 2, gt == 2), (names[2], pred > 0, gt > 0)]


# ---------------------------------------------------------------------------------------------- FUGC


def fugc_case(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """One image by FUGC's rules: ``fugc_dice_lip1/2``, ``fugc_dice``, ``fugc_hd_lip1/2/union``, ``fugc_hd``
    (inf if any part is), ``fugc_hd_penalised`` (inf -> the image diagonal) and ``fugc_missed`` (lips in the
    reference that the prediction lacks)."""
    out: dict[str, float] = {}
    diagonal = math.hypot(*pred.shape)
    missed = 0
    for name, p, g in _parts(pred, gt, _FUGC_PARTS):
        if name != "union":
            total = int(p.sum()) + int(g.sum())
            out[f"fugc_dice_{name}"] = 2.0 * int(np.logical_and(p, g).sum()) / total if total else math.nan
            missed += int(g.any() and not p.any())
        out[f"fugc_hd_{name}"] = region_hausdorff(p, g)
    distances = [out[f"fugc_hd_{n}"] for n in _FUGC_PARTS]
    out["fugc_dice"] = mean_defined([out["fugc_dice_lip1"], out["fugc_dice_lip2"]])
    out["fugc_hd"] = mean_defined(distances)
    out["fugc_hd_penalised"] = mean_defined([diagonal if math.isinf(d) else d for d in distances])
    out["fugc_missed"] = float(missed)
    return out


def fugc_summary(cases: Sequence[Mapping[str, float]], runtime_ms: float | None = None) -> dict[str, Any]:
    """FUGC's means over images: any infinite HD makes ``fugc_hd`` infinite; ``fugc_hd_penalised`` beside it."""
    keys = ["fugc_dice", "fugc_dice_lip1", "fugc_dice_lip2", "fugc_hd", *(f"fugc_hd_{n}" for n in _FUGC_PARTS), "fugc_hd_penalised"]
    out: dict[str, Any] = {k: mean_defined([c[k] for c in cases]) for k in keys}
    out["fugc_images_with_infinite_hd"] = int(sum(math.isinf(c["fugc_hd"]) for c in cases))
    out["fugc_missed_lips"] = int(sum(c["fugc_missed"] for c in cases))
    out["ranking_inputs"] = {"dsc": out["fugc_dice"], "hd": out["fugc_hd"], "runtime_ms_per_image": runtime_ms,
                             "weights": FUGC_WEIGHTS, "note": "FUGC ranks teams on these with weights 0.4 / 0.4 / 0.2"}  # fmt: skip
    out["units"] = "HD in pixels at native resolution; runtime in ms per single-image call"
    return out


# ---------------------------------------------------------------------------------------------- PSFH


def _psfh_part(p: np.ndarray, g: np.ndarray) -> tuple[float, float, float]:
    """(Dice, HD, ASD) of one region by the organisers' rules."""
    if not p.any():
        return 0.0, PSFH_EMPTY_DISTANCE, PSFH_EMPTY_DISTANCE
    d = (2.0 * float(np.logical_and(p, g).sum()) + 1.0) / (float(p.sum()) + float(g.sum()) + 1.0)
    if not g.any():
        return d, PSFH_EMPTY_DISTANCE, PSFH_EMPTY_DISTANCE
    return d, region_hausdorff(p, g), contour_asd(p, g)


def psfh_case(pred: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
    """One image by the FH-PS-AOP organisers' rules: Dice / HD / ASD per region and their means, the AoP of
    both masks and ``psfh_delta_aop`` (degrees); ``psfh_aop_status_*`` say whether each AoP was defined."""
    out: dict[str, Any] = {}
    for name, p, g in _parts(pred, gt, _PSFH_PARTS):
        out[f"psfh_dice_{name}"], out[f"psfh_hd_{name}"], out[f"psfh_asd_{name}"] = _psfh_part(p, g)
    for metric in ("dice", "hd", "asd"):
        out[f"psfh_{metric}"] = float(np.mean([out[f"psfh_{metric}_{n}"] for n in _PSFH_PARTS]))
    aop_pred, aop_ref = angle_of_progression(pred), angle_of_progression(gt)
    out |= {"psfh_aop_pred": aop_pred.degrees, "psfh_aop_ref": aop_ref.degrees, "psfh_delta_aop": abs(aop_pred.degrees - aop_ref.degrees),
            "psfh_aop_status_pred": aop_pred.status, "psfh_aop_status_ref": aop_ref.status}  # fmt: skip
    return out


def psfh_score(m_dice: float, m_hd: float, m_asd: float, m_delta_aop: float) -> float:
    """The FH-PS-AOP challenge score S from its four means (rounded to 8 places where the script rounds)."""
    surface = 0.5 * (1.0 - round(m_hd / 100.0, 8)) + 0.5 * (1.0 - round(m_asd / 100.0, 8))
    return 0.25 * round(m_dice, 8) + 0.25 * surface + 0.5 * (1.0 - m_delta_aop / 180.0)


def psfh_summary(cases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Means over images (each region, and the three together) of Dice, HD, ASD, ΔAoP; the score S."""
    keys = [f"psfh_{m}{s}" for m in ("dice", "hd", "asd") for s in ("", *(f"_{n}" for n in _PSFH_PARTS))] + ["psfh_delta_aop"]
    out: dict[str, Any] = {k: float(np.mean([c[k] for c in cases])) for k in keys}
    out["psfh_score"] = psfh_score(out["psfh_dice"], out["psfh_hd"], out["psfh_asd"], out["psfh_delta_aop"])
    out["psfh_aop_undefined"] = int(sum(c[f"psfh_aop_status_{w}"] != "ok" for c in cases for w in ("pred", "ref")))
    out["units"] = "HD and ASD in pixels (the organisers ignore spacing); AoP in degrees"
    return out


def challenge_case(task: str, pred: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
    """The challenge metrics of the task's dataset: FUGC for the cervix task, FH-PS-AOP for the psfh task."""
    return fugc_case(pred, gt) if task == "cervix" else psfh_case(pred, gt)


def challenge_summary(task: str, cases: Sequence[Mapping[str, Any]], runtime_ms: float | None = None) -> dict[str, Any]:
    return fugc_summary(cases, runtime_ms) if task == "cervix" else psfh_summary(cases)
