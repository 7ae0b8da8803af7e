"""``hdc-ray evaluate REF PRED``: score two folders of masks matched by case name, as nnU-Net's
``nnUNetv2_evaluate_folder`` does, plus the challenge's own metrics.

Either folder may be a FUGC root (its ``train/labeled_data/labels/*.png``: the download's references, and
what ``predict`` writes for a FUGC input; ``unlabeled_data`` has no references and is ignored), a PSFH root
(``label_mha/*.mha``) or a plain folder of mask files (8-bit index PNG/BMP/TIFF or ``.mha``; other files
and sub-folders, such as predict's ``predictions.json`` and ``overlays/``, are ignored). A case is a file
stem, so the two sides may use different layouts. Every reference needs a prediction and every prediction
a reference; masks must agree in shape and hold only 0 (background), 1 and 2; each refusal is one line
naming the files. No torch is needed.

The task (which challenge's metrics to add) comes from a dataset layout on either side (FUGC: cervix, PSFH:
psfh) or from ``task``; two plain folders without it get nnU-Net's metrics only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hdc_ray.data.mha import read_mha
from hdc_ray.data.readers import IMAGE_SUFFIXES, read_label_mask, row_col_spacing
from hdc_ray.data.tasks import CLASS_NAMES
from hdc_ray.inference.challenge import challenge_case, challenge_summary
from hdc_ray.inference.scoring import CaseScore, EvaluateError, case_metrics, check_out, distance_spacing, summary, write_report

MASK_SUFFIXES = (*IMAGE_SUFFIXES, ".mha", ".mhd")
LAYOUT_TASK = {"fugc": "cervix", "psfh": "psfh", "folder": None}
LABELS = (1, 2)  # both tasks: background 0 and two structures
_SHOWN = 4  # names listed in an error before "and N more"


@dataclass(frozen=True)
class MaskFolder:
    root: Path  # what the user named
    layout: str  # "fugc", "psfh" or "folder"
    folder: Path  # where the masks are
    masks: dict[str, Path]  # case (file stem) -> file

    @property
    def task(self) -> str | None:
        return LAYOUT_TASK[self.layout]


@dataclass(frozen=True)
class FolderReport:
    out: Path
    reference: MaskFolder
    prediction: MaskFolder
    task: str | None
    scores: list[CaseScore]
    summary: dict[str, Any]


def mask_folder(path: str | Path, what: str) -> MaskFolder:
    """The masks of REF or PRED (``what``), by layout; refuses a missing folder, an empty one, shared stems."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise EvaluateError(f"{what} {path}: no such folder")
    for train in (root / "train", root):
        if (train / "labeled_data" / "labels").is_dir():
            return MaskFolder(root, "fugc", train / "labeled_data" / "labels", _masks(train / "labeled_data" / "labels", what))
    if (root / "label_mha").is_dir():
        return MaskFolder(root, "psfh", root / "label_mha", _masks(root / "label_mha", what))
    return MaskFolder(root, "folder", root, _masks(root, what))


def _masks(folder: Path, what: str) -> dict[str, Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in MASK_SUFFIXES)
    if not files:
        looks_like_a_run = any(folder.glob("*.pt")) or (folder / "trials.parquet").exists() or (folder / "metrics.json").exists()
        hint = ("; it looks like a trained run: evaluate MODEL takes it alone (evaluate MODEL --set data.root=DIR for other "
                "images), REF PRED are two folders of masks") if looks_like_a_run else ""  # fmt: skip
        raise EvaluateError(f"{what} {folder}: no mask files (looked for {'/'.join(MASK_SUFFIXES)}; a FUGC root needs "
                            f"train/labeled_data/labels/, a PSFH root label_mha/){hint}")  # fmt: skip
    masks: dict[str, Path] = {}
    for p in files:
        if p.stem in masks:
            raise EvaluateError(f"{what} {p}: shares its case name {p.stem!r} with {masks[p.stem].name}; keep one mask per case")
        masks[p.stem] = p
    return masks


def match(ref: MaskFolder, pred: MaskFolder) -> list[str]:
    """The cases of both, in name order; refuses references without a prediction and predictions without a reference."""
    missing = sorted(set(ref.masks) - set(pred.masks))
    if missing:
        raise EvaluateError(f"PRED {pred.folder}: no prediction for {len(missing)} of {len(ref.masks)} reference case(s): "
                            f"{_names(missing, ref)} (cases are matched by file stem)")  # fmt: skip
    extra = sorted(set(pred.masks) - set(ref.masks))
    if extra:
        raise EvaluateError(f"PRED {pred.folder}: {len(extra)} prediction(s) with no reference in {ref.folder}: {_names(extra, pred)} "
                            "(cases are matched by file stem)")  # fmt: skip
    return sorted(ref.masks)


def _names(cases: Sequence[str], side: MaskFolder) -> str:
    shown = ", ".join(side.masks[c].name for c in cases[:_SHOWN])
    return shown + (f" and {len(cases) - _SHOWN} more" if len(cases) > _SHOWN else "")


def read_mask(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    """uint8 (H, W) class indices (0, 1, 2 only) and the (row, col) spacing of a ``.mha`` (None for images)."""
    if path.suffix.lower() in (".mha", ".mhd"):
        return read_label_mask(path, "psfh"), row_col_spacing(read_mha(path)[1])
    return read_label_mask(path, "fugc"), None


def _task(ref: MaskFolder, pred: MaskFolder, task: str | None) -> str | None:
    implied = {t for t in (ref.task, pred.task) if t is not None}
    if task is not None and task not in CLASS_NAMES:
        raise EvaluateError(f"--task {task!r}: choose one of {', '.join(CLASS_NAMES)}")
    if len(implied | ({task} if task else set())) > 1:
        raise EvaluateError(f"REF {ref.root} ({ref.layout}) and PRED {pred.root} ({pred.layout})"
                            f"{f' and --task {task}' if task else ''} name different tasks: {', '.join(sorted(implied | {task or ''} - {''}))}")  # fmt: skip
    return task or next(iter(implied), None)


def _pair_of(case: str, ref: MaskFolder, pred: MaskFolder) -> tuple[np.ndarray, np.ndarray, tuple[float, float] | None]:
    """(reference, prediction, spacing) of one case, checked for shape and spacing agreement."""
    ref_mask, ref_spacing = read_mask(ref.masks[case])
    pred_mask, pred_spacing = read_mask(pred.masks[case])
    if ref_mask.shape != pred_mask.shape:
        raise EvaluateError(f"{pred.masks[case]}: prediction is {pred_mask.shape[0]}x{pred_mask.shape[1]} but its reference "
                            f"{ref.masks[case]} is {ref_mask.shape[0]}x{ref_mask.shape[1]}")  # fmt: skip
    if ref_spacing is not None and pred_spacing is not None and not np.allclose(ref_spacing, pred_spacing, rtol=1e-4):
        raise EvaluateError(f"{pred.masks[case]}: spacing {pred_spacing} differs from its reference {ref.masks[case]} ({ref_spacing})")
    return ref_mask, pred_mask, ref_spacing


def evaluate_folders(
    reference: str | Path, prediction: str | Path, out: Path | None = None, *, task: str | None = None, overwrite: bool = False,
    progress: bool = True,
) -> FolderReport:  # fmt: skip
    """Score every case of PRED against REF; write ``cases.csv`` and ``summary.json`` into ``out``."""
    from tqdm.auto import tqdm

    ref, pred = mask_folder(reference, "REF"), mask_folder(prediction, "PRED")
    cases = match(ref, pred)
    task = _task(ref, pred, task)
    out = out or pred.root.parent / f"{pred.root.name}-evaluate"
    check_out(out, overwrite)
    pairs = [_pair_of(case, ref, pred) for case in tqdm(cases, desc="read", unit="case", disable=not progress, leave=False)]
    spacings, unit = distance_spacing([s for _, _, s in pairs])
    scores = []
    for case, (ref_mask, pred_mask, _), spacing in zip(cases, pairs, spacings, strict=True):
        challenge = challenge_case(task, pred_mask, ref_mask) if task else {}
        scores.append(CaseScore(case, str(ref.masks[case]), str(pred.masks[case]), spacing, case_metrics(pred_mask, ref_mask, LABELS, spacing), challenge))
    names = dict(enumerate(CLASS_NAMES[task])) if task else {label: str(label) for label in LABELS}
    result = summary(scores, {k: v for k, v in names.items() if k in LABELS}, unit) | {
        "reference": str(ref.root), "prediction": str(pred.root), "layouts": {"reference": ref.layout, "prediction": pred.layout}, "task": task,
        "challenge": challenge_summary(task, [s.challenge for s in scores]) if task else None,
    }  # fmt: skip
    write_report(out, scores, result)
    return FolderReport(out, ref, pred, task, scores, result)

