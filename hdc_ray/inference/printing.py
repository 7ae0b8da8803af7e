"""What ``hdc-ray evaluate`` prints: words and columns only, every number comes computed from the summary."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # evaluate imports torch; REF PRED's printing must not
    from hdc_ray.inference.evaluate import Report
    from hdc_ray.inference.folders import FolderReport

_COLUMNS = ("Dice", "IoU", "HD", "HD95", "ASD")


def _num(value: Any, width: int = 9, places: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'-':>{width}}"
    if isinstance(value, float) and math.isinf(value):
        return f"{'inf':>{width}}"
    return f"{value:>{width}.{places}f}"


def metric_lines(summary: Mapping[str, Any]) -> list[str]:
    """nnU-Net's means per label and over the foreground labels."""
    unit = summary["distance_unit"]
    lines = [f"{'per label (mean over cases)':<30}" + "".join(f"{c:>9}" for c in _COLUMNS) + f"   (distances in {unit})"]
    for label, values in summary["mean"].items():
        name = f"{label} {summary['labels'].get(label, '')}"
        lines.append(f"  {name:<28}" + "".join(_num(values[c]) for c in _COLUMNS))
    lines.append(f"  {'foreground':<28}" + "".join(_num(summary["foreground_mean"][c]) for c in _COLUMNS))
    return lines


def challenge_lines(task: str, challenge: Mapping[str, Any]) -> list[str]:
    return _fugc_lines(challenge) if task == "cervix" else _psfh_lines(challenge)


def _fugc_lines(c: Mapping[str, Any]) -> list[str]:
    lines = ["FUGC 2025 (HD in px, over all pixels as SimpleITK measures it)",
             f"  {'fugc_dice':<26}{_num(c['fugc_dice'])}   (lip 1 {_num(c['fugc_dice_lip1'], 0)}, lip 2 {_num(c['fugc_dice_lip2'], 0)})"]  # fmt: skip
    infinite = c["fugc_images_with_infinite_hd"]
    why = f"   ({infinite} image(s) with a lip in one mask only: FUGC's rule makes the mean infinite)" if infinite else ""
    lines.append(f"  {'fugc_hd':<26}{_num(c['fugc_hd'])}{why}")
    lines.append(f"  {'fugc_hd_penalised':<26}{_num(c['fugc_hd_penalised'])}   (an infinite distance counted as the image diagonal)")
    ranking = c["ranking_inputs"]
    runtime = ranking["runtime_ms_per_image"]
    lines.append(f"  ranking inputs (0.4 DSC + 0.4 HD + 0.2 runtime, ranked across teams): DSC {_num(ranking['dsc'], 0)}, "
                 f"HD {_num(ranking['hd'], 0)}" + (f", runtime {runtime:.2f} ms per image" if runtime is not None else ""))  # fmt: skip
    return lines


def _psfh_lines(c: Mapping[str, Any]) -> list[str]:
    lines = ["FH-PS-AOP / PSFHS (HD and ASD in px as the organisers score them; AoP in degrees)"]
    for metric in ("dice", "hd", "asd"):
        parts = ", ".join(f"{n} {_num(c[f'psfh_{metric}_{n}'], 0)}" for n in ("ps", "fh", "union"))
        lines.append(f"  {'psfh_' + metric:<26}{_num(c[f'psfh_{metric}'])}   ({parts})")
    undefined = c["psfh_aop_undefined"]
    lines.append(f"  {'psfh_delta_aop':<26}{_num(c['psfh_delta_aop'])}" + (f"   ({undefined} AoP(s) without both ellipses: 0 degrees, as scored)" if undefined else ""))
    lines.append(f"  {'psfh_score':<26}{_num(c['psfh_score'])}   (0.25 mDSC + 0.25 [0.5 (1 - mHD/100) + 0.5 (1 - mASD/100)] + 0.5 (1 - mΔAoP/180))")
    return lines


def model_table(report: Report) -> str:
    """``evaluate MODEL``: the data, nnU-Net's means, training's metrics beside the recorded ones, the challenge."""
    s = report.summary
    lines = [f"evaluate: {len(report.scores)} image(s), split {report.split} of {s['data']}", *report.notes, *metric_lines(s)]
    lines.append(f"{'as training scores it':<30}{'value':>9}{'recorded':>10}{'diff':>9}")
    diffs = report.differences()
    for key in (f"{report.split}_{m}_fg" for m in ("dice", "jaccard", "hd95", "asd")):
        if key in report.training:
            rec = report.recorded.get(key)
            extra = f"{rec:>10.4f}{diffs[key]:>+9.4f}" if rec is not None else ""
            lines.append(f"  {key:<28}{_num(report.training[key])}{extra}")
    lines += challenge_lines(report.task, s["challenge"])
    runtime = s["runtime"]
    lines.append(f"runtime: {runtime['ms_per_image_mean']:.2f} ms per image (median {runtime['ms_per_image_median']:.2f}; {runtime['measured']}, on {runtime['device']})")
    reproduction = report.reproduction()
    if reproduction is not None:
        difference, within, tolerance = reproduction
        lines.append(f"{report.split}_dice_fg {'reproduced' if within else 'NOT reproduced'}: |difference| {difference:.4f} (tolerance {tolerance})")
    return "\n".join(lines)


def folder_table(report: FolderReport) -> str:
    """``evaluate REF PRED``: nnU-Net's means, then the challenge's (when a layout or --task names the task)."""
    lines = [f"evaluate: {len(report.scores)} case(s), {report.prediction.folder} against {report.reference.folder}", *metric_lines(report.summary)]
    if report.task:
        lines += challenge_lines(report.task, report.summary["challenge"])
    else:
        lines.append("(no challenge metrics: neither folder is a FUGC or PSFH layout; pass --task cervix or --task psfh)")
    return "\n".join(lines)
