"""The challenges' own scoring conventions, per image (pure numpy; ``hdc_ray.metrics`` does the geometry).

FUGC 2025 (cervix): Dice per lip, averaged over the two lips; Hausdorff distance (the maximum, not the 95th
percentile) in pixels at native resolution for lip 1, lip 2 and their union, averaged; exactly one of the
two masks empty gives an infinite distance (counted, left out of means by ``metrics.aggregate``).

PSFH / FH-PS-AOP (pubic symphysis, fetal head): for PS, FH and their union, Dice with +1 smoothing
``(2 sum(pg) + 1) / (sum(p) + sum(g) + 1)``, Hausdorff (max) and the symmetric average surface distance in
pixels; an empty prediction scores Dice 0, HD 100 and ASD 100 (and so does a prediction where the ground
truth is empty, for the distances).
"""

from __future__ import annotations

import math

import numpy as np

from hdc_ray.metrics import average_surface_distance, dice, hausdorff

PSFH_EMPTY_DISTANCE = 100.0


def fugc_case(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, p, g in _parts(pred, gt, ("lip1", "lip2")):
        if name != "union":
            out[f"fugc_dice_{name}"] = dice(p, g)
        out[f"fugc_hd_{name}"] = hausdorff(p, g, None, percentile=100.0, convention="max_directed", empty_penalty="inf")
    out["fugc_dice"] = (out["fugc_dice_lip1"] + out["fugc_dice_lip2"]) / 2.0
    distances = [out[f"fugc_hd_{n}"] for n in ("lip1", "lip2", "union")]
    out["fugc_hd"] = math.inf if any(math.isinf(d) for d in distances) else float(np.mean(distances))
    return out


def psfh_case(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, p, g in _parts(pred, gt, ("ps", "fh")):
        if not p.any():
            d, hd, asd = 0.0, PSFH_EMPTY_DISTANCE, PSFH_EMPTY_DISTANCE
        else:
            d = (2.0 * float(np.logical_and(p, g).sum()) + 1.0) / (float(p.sum()) + float(g.sum()) + 1.0)
            hd = hausdorff(p, g, None, percentile=100.0, convention="max_directed", empty_penalty=PSFH_EMPTY_DISTANCE)
            asd = average_surface_distance(p, g, None, empty_penalty=PSFH_EMPTY_DISTANCE)
        out |= {f"psfh_dice_{name}": d, f"psfh_hd_{name}": hd, f"psfh_asd_{name}": asd}
    for metric in ("dice", "hd", "asd"):
        out[f"psfh_{metric}"] = float(np.mean([out[f"psfh_{metric}_{n}"] for n in ("ps", "fh", "union")]))
    return out


def challenge_case(task: str, pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """The challenge metrics of the task's dataset: FUGC for the cervix task, PSFH for the psfh task."""
    return fugc_case(pred, gt) if task == "cervix" else psfh_case(pred, gt)


def _parts(pred: np.ndarray, gt: np.ndarray, names: tuple[str, str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, pred mask, gt mask) for class 1, class 2 and their union."""
    return [(names[0], pred == 1, gt == 1), (names[1], pred == 2, gt == 2), ("union", pred > 0, gt > 0)]
