"""Per-case metrics and ``summary.json`` in the shape of nnU-Net's ``nnUNetv2_evaluate_folder``.

``metric_per_case`` (per case: ``reference_file``, ``prediction_file``, ``metrics`` per label), ``mean`` per
label and ``foreground_mean`` (the mean of the labels' means), as nnU-Net writes them, with the distances
added per label (``DEFINITIONS`` says what each is). nnU-Net's empty rule: a label absent from both
reference and prediction has no Dice, IoU or distance (NaN) and is skipped from the means; a label in
exactly one of them has Dice 0 and infinite distances, which make the mean infinite.

JSON has no Infinity or NaN, so ``json_ready`` writes a non-finite number as ``null``; an infinite one also
gets ``"<key>_infinite": true`` beside it, so ``null`` alone means NaN (not defined: both masks empty).
Distances are in mm when every case's spacing is known (``.mha``), else in pixels (``distance_unit``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hdc_ray.errors import UserError
from hdc_ray.metrics import average_surface_distance, hausdorff, region_hausdorff
from hdc_ray.outputs import OutputError, check_writable, staged_folder

Spacing = tuple[float, float] | None
LabelMetrics = dict[str, float]

METRICS = ("Dice", "IoU", "FP", "TP", "FN", "TN", "n_pred", "n_ref", "HD", "HD95", "ASD")
DEFINITIONS = {
    "Dice": "2 TP / (2 TP + FP + FN) per image and label; NaN (null) when the label is in neither mask (nnU-Net)",
    "IoU": "TP / (TP + FP + FN); NaN when the label is in neither mask",
    "TP, FP, FN, TN, n_pred, n_ref": "pixel counts (n_pred = TP + FP, n_ref = TP + FN)",
    "HD": "Hausdorff distance over all pixels of the label, as SimpleITK's HausdorffDistanceImageFilter (what FUGC and FH-PS-AOP score)",
    "HD95": "boundary Hausdorff distance, 95th percentile, the larger of the two directions (MONAI; what training selects on)",
    "ASD": "symmetric average boundary distance, pooled over both directions (as training reports it)",
    "empty masks": "a label in exactly one mask: Dice 0, distances infinite (null with <key>_infinite: true); in neither: NaN, skipped",
    "mean": "per label, the mean over cases of the defined values; foreground_mean: the mean of the labels' means",
}


class EvaluateError(UserError, ValueError):
    """What was asked cannot be scored (folders that do not match, a checkpoint of another task, ...);
    the message names the files."""


def mean_defined(values: Sequence[float]) -> float:
    """Mean of the non-NaN values (an inf among them makes it inf); NaN when none is defined."""
    kept = [float(v) for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def label_metrics(pred: np.ndarray, ref: np.ndarray, label: int, spacing: Spacing = None) -> LabelMetrics:
    """nnU-Net's counts, Dice and IoU for one label of two (H, W) label maps, and the three distances."""
    p, r = pred == label, ref == label
    tp, fp, fn = int((p & r).sum()), int((p & ~r).sum()), int((~p & r).sum())
    tn = int(p.size) - tp - fp - fn
    both_empty = tp + fp + fn == 0
    out: LabelMetrics = {
        "Dice": math.nan if both_empty else 2.0 * tp / (2 * tp + fp + fn),
        "IoU": math.nan if both_empty else tp / (tp + fp + fn),
        "FP": fp, "TP": tp, "FN": fn, "TN": tn, "n_pred": tp + fp, "n_ref": tp + fn,
    }  # fmt: skip
    if both_empty:
        return out | {"HD": math.nan, "HD95": math.nan, "ASD": math.nan}
    return out | {
        "HD": region_hausdorff(p, r, spacing),
        "HD95": hausdorff(p, r, spacing, 95.0, "max_directed", empty_penalty="inf"),
        "ASD": average_surface_distance(p, r, spacing, empty_penalty="inf"),
    }


def case_metrics(pred: np.ndarray, ref: np.ndarray, labels: Sequence[int], spacing: Spacing = None) -> dict[str, LabelMetrics]:
    """``{"1": {...}, "2": {...}}``: every label's metrics, keyed by the label value as a string (nnU-Net)."""
    return {str(label): label_metrics(pred, ref, label, spacing) for label in labels}


@dataclass(frozen=True)
class CaseScore:
    """One scored case: the files, the spacing its distances used, nnU-Net's metrics, the challenge's."""

    case: str
    reference_file: str
    prediction_file: str | None  # None when the prediction was never written (``evaluate MODEL``)
    spacing: Spacing
    metrics: dict[str, LabelMetrics]
    challenge: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)  # e.g. the as-training metrics of ``evaluate MODEL``

    def to_json(self) -> dict[str, Any]:
        return {"reference_file": self.reference_file, "prediction_file": self.prediction_file, "case": self.case,
                "spacing": self.spacing, "metrics": self.metrics, "challenge": self.challenge}  # fmt: skip

    def row(self) -> dict[str, Any]:
        """A flat ``cases.csv`` row: ``Dice_1``, ``HD_2``, ..., the challenge's and the extra metrics."""
        flat = {f"{m}_{label}": v for label, values in self.metrics.items() for m, v in values.items()}
        return {"case": self.case, "reference_file": self.reference_file, "prediction_file": self.prediction_file or "",
                **flat, **self.challenge, **self.extra}  # fmt: skip


def mean_metrics(per_case: Sequence[Mapping[str, LabelMetrics]]) -> tuple[dict[str, LabelMetrics], LabelMetrics]:
    """(``mean`` per label, ``foreground_mean``) as nnU-Net computes them; NaN cases skipped."""
    labels = list(per_case[0]) if per_case else []
    mean = {label: {m: mean_defined([case[label][m] for case in per_case]) for m in METRICS} for label in labels}
    foreground = {m: float(np.mean([mean[label][m] for label in labels])) if labels else math.nan for m in METRICS}
    return mean, foreground


def distance_spacing(spacings: Sequence[Spacing]) -> tuple[list[Spacing], str]:
    """The spacing each case's distances use and their unit: mm only if every case has a spacing, so one
    summary never mixes units."""
    if spacings and all(s is not None for s in spacings):
        return list(spacings), "mm"
    return [None] * len(spacings), "px"


def summary(scores: Sequence[CaseScore], label_names: Mapping[int, str], unit: str) -> dict[str, Any]:
    """nnU-Net's ``summary.json`` keys, plus label names, the distance unit and what each metric is."""
    mean, foreground = mean_metrics([s.metrics for s in scores])
    return {
        "metric_per_case": [s.to_json() for s in scores],
        "mean": mean,
        "foreground_mean": foreground,
        "labels": {str(k): v for k, v in label_names.items()},
        "distance_unit": unit,
        "n_cases": len(scores),
        "definitions": DEFINITIONS,
    }


def json_ready(value: Any) -> Any:
    """``value`` with plain JSON types only: non-finite floats -> None (infinite: plus a ``<key>_infinite`` flag)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, (float, np.floating)) and math.isinf(item):
                out[str(key)], out[f"{key}_infinite"] = None, True
            else:
                out[str(key)] = json_ready(item)
        return out
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


# ----------------------------------------------------------------------------------------------- files


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an existing non-empty OUT without ``--overwrite``, or an unwritable one, before any work."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise OutputError(f"--out {out}: already exists and is not empty; pass --overwrite to replace it, or choose another folder")
    check_writable(out, "--out")


def write_report(out: Path, scores: Sequence[CaseScore], summary_json: Mapping[str, Any]) -> None:
    """``cases.csv`` (one row per case) and ``summary.json`` (``json_ready``), staged then renamed into ``out``."""
    rows = [s.row() for s in scores]
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with staged_folder(out) as stage:
        with (stage / "cases.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        (stage / "summary.json").write_text(json.dumps(json_ready(summary_json), indent=2, allow_nan=False))
