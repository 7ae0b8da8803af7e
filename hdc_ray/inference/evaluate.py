"""``hdc-ray evaluate``: score a checkpoint on labelled images, as training scored it and as the challenges do.

The images are the run's own split (``--split test|val``, drawn from the config stored with the weights, so
``test`` is the test set the run reported) or every labelled image (``all``), of the run's data or of
another folder (``--set data.root=...``; its layout, FUGC or PSFH, is detected). Each image is predicted at
the working resolution and resized back to its native size (``Predictor``), then scored twice:

- as training does (``metrics.evaluate_case`` with the run's ``eval.*`` settings; means by
  ``metrics.aggregate``): on the run's test split this reproduces the ``test_dice_fg`` it recorded;
- with the challenge's conventions (``inference.challenge``: FUGC for the cervix task, PSFH for psfh).

Writes ``cases.csv`` (one row per image) and ``summary.json`` into a staged folder, like ``predict``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hdc_ray.config import Config, ConfigError, apply_overrides, config_from_dict, to_dict
from hdc_ray.data.tasks import CLASS_NAMES, task_of
from hdc_ray.errors import UserError
from hdc_ray.inference.challenge import challenge_case
from hdc_ray.inference.predictor import Predictor
from hdc_ray.inference.sources import LoadedModel
from hdc_ray.metrics import aggregate, evaluate_case
from hdc_ray.outputs import OutputError, check_writable, staged_folder

SPLITS = ("test", "val", "all")
# Differences below this are noise of float summation order between batchings, not a different model.
REPRODUCE_TOLERANCE = 0.005


class EvaluateError(UserError, ValueError):
    """The checkpoint cannot be scored as asked (no stored config, another task than the data's)."""


@dataclass(frozen=True)
class Case:
    key: str
    image: np.ndarray  # float32 (H, W) in [0, 1], native size
    mask: np.ndarray  # uint8 (H, W) class indices, native size
    spacing: tuple[float, float] | None


@dataclass(frozen=True)
class Report:
    out: Path
    split: str
    data: str  # which data was scored, in words
    task: str
    cases: list[dict[str, Any]]
    training: dict[str, float]  # aggregated as training does, keys prefixed with the split (test_dice_fg ...)
    challenge: dict[str, float]
    ms_per_image: float
    recorded: dict[str, float]  # what the run recorded for the same split, when comparable

    def summary(self) -> dict[str, Any]:
        return {
            "split": self.split, "data": self.data, "task": self.task, "n_images": len(self.cases),
            "as_training": self.training, "challenge": self.challenge, "ms_per_image": self.ms_per_image,
            "recorded": self.recorded, "difference": self.differences(),
        }  # fmt: skip

    def differences(self) -> dict[str, float]:
        return {k: self.training[k] - v for k, v in self.recorded.items() if k in self.training}


def run_config(model: LoadedModel, overrides: Sequence[str]) -> Config:
    """The run's config with ``--set`` overrides; ``data.root`` alone also sets ``data.source`` from the layout."""
    if model.config is None:
        raise EvaluateError(f"{model.path}: carries no run config (and no config.yaml beside it), so its split is unknown; "
                            "evaluate needs the config the run was trained with")  # fmt: skip
    overrides = list(overrides)
    keys = {o.partition("=")[0].strip() for o in overrides}
    if "data.root" in keys and "data.source" not in keys:
        root = next(o.partition("=")[2].strip() for o in overrides if o.partition("=")[0].strip() == "data.root")
        overrides.append(f"data.source={_layout_of(Path(root).expanduser())}")
    try:
        return config_from_dict(apply_overrides(to_dict(model.config), overrides), source="--set")
    except ConfigError as exc:
        raise EvaluateError(str(exc)) from None


def _layout_of(root: Path) -> str:
    if not root.is_dir():
        raise EvaluateError(f"data.root {root}: no such folder")
    if (root / "image_mha").is_dir():
        return "psfh"
    if (root / "train" / "labeled_data").is_dir() or (root / "labeled_data").is_dir():
        return "fugc"
    raise EvaluateError(f"data.root {root}: neither a FUGC layout (train/labeled_data/images, .../labels) nor a PSFH one (image_mha/, label_mha/)")


def labelled_cases(cfg: Config, split: str, progress: bool = False) -> list[Case]:
    """The labelled images of ``split`` at native size, in the run's split order."""
    from hdc_ray.data import build_data
    from hdc_ray.data.dataset import real_split
    from hdc_ray.data.readers import load_sample

    if cfg.data.source == "synthetic":
        data = build_data(cfg.data, progress=progress)
        sets = {"test": [data.test], "val": [data.val], "all": [data.labeled, data.val, data.test]}[split]
        return [Case(d.keys[i], d.images[i], d.native_masks[i], d.spacing[i]) for d in sets if d.native_masks is not None for i in range(len(d))]
    if split == "all":  # every labelled image: no split to draw (a small folder may not fit the run's val + test sizes)
        chosen = [f for f in _real_files(cfg) if f.mask_path is not None]
    else:
        files, drawn = real_split(cfg.data)
        chosen = [files[int(i)] for i in (drawn.test if split == "test" else drawn.val)]
    cases = []
    for entry in chosen:
        sample = load_sample(entry)
        assert sample.mask is not None  # the split puts only labelled images in these sets
        cases.append(Case(sample.key, sample.image, sample.mask, sample.spacing))
    return cases


def _real_files(cfg: Config) -> list[Any]:
    from hdc_ray.data.readers import fugc_files, psfh_files

    assert cfg.data.root is not None  # DataConfig guarantees it for real sources
    if cfg.data.source == "fugc":
        labeled, unlabeled = fugc_files(cfg.data.root)
        return labeled + unlabeled
    return psfh_files(cfg.data.root)


def evaluate_models(
    models: Sequence[LoadedModel], overrides: Sequence[str] = (), *, split: str = "test", out: Path | None = None, overwrite: bool = False,
    device: str = "cpu", tta: bool = False, progress: bool = True, batch_size: int | None = None,
) -> Report:  # fmt: skip
    """Score ``models`` (one, or an ensemble) on ``split`` of the first model's run data (after ``overrides``)."""
    if split not in SPLITS:
        raise EvaluateError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    cfg = run_config(models[0], overrides)
    task = task_of(cfg.data.source, cfg.data.task)
    card = models[0].card
    if (card.task, card.class_names) != (task, CLASS_NAMES[task]):
        raise EvaluateError(f"{models[0].path} segments {card.task} ({', '.join(card.class_names[1:])}) but the data "
                            f"({cfg.data.source}{' at ' + cfg.data.root if cfg.data.root else ''}) is {task} ({', '.join(CLASS_NAMES[task][1:])})")  # fmt: skip
    out = out or default_out(models[0].path, split)
    _check_out(out, overwrite)
    cases = labelled_cases(cfg, split, progress)
    if not cases:
        raise EvaluateError(f"--split {split}: no labelled images to score")
    predictor = Predictor(models, device, tta)
    rows, seconds = _score(predictor, cases, cfg, task, batch_size or cfg.eval.batch_size, progress)
    training = {f"{split}_{k}": v for k, v in aggregate([{k: r[k] for k in r if not k.startswith(("key", "fugc_", "psfh_"))} for r in rows]).items()}
    challenge = {k: v for k, v in aggregate([{k: r[k] for k in r if k.startswith(("fugc_", "psfh_"))} for r in rows]).items() if k != "n_cases"}
    report = Report(out, split, _describe(cfg), task, rows, training, challenge, 1000.0 * seconds / len(cases), _comparable(models, cfg, overrides, split, tta))
    with staged_folder(out) as stage:
        _write_csv(stage / "cases.csv", rows)
        (stage / "summary.json").write_text(json.dumps(report.summary() | {"checkpoints": [str(m.path) for m in models]}, indent=2, default=_json_number))
    return dataclasses.replace(report, out=out)


def _score(predictor: Predictor, cases: list[Case], cfg: Config, task: str, batch_size: int, progress: bool) -> tuple[list[dict[str, Any]], float]:
    from tqdm.auto import tqdm

    penalty: str | float = cfg.eval.empty_penalty if cfg.eval.empty_penalty in ("diagonal", "inf") else float(cfg.eval.empty_penalty)
    class_names = CLASS_NAMES[task]
    predictor.warm_up(min(batch_size, len(cases)))
    rows: list[dict[str, Any]] = []
    seconds = 0.0
    bar = tqdm(total=len(cases), desc="evaluate", unit="img", disable=not progress, leave=False, dynamic_ncols=True)
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        tick = time.perf_counter()
        preds = predictor.predict([c.image for c in chunk])
        seconds += time.perf_counter() - tick  # the challenge's runtime: resize + network + resize back
        for case, pred in zip(chunk, preds, strict=True):
            ours = evaluate_case(pred, case.mask, class_names, case.spacing, hd_percentile=cfg.eval.hd_percentile,
                                 hd_convention=cfg.eval.hd_convention, empty_penalty=penalty)  # fmt: skip
            rows.append({"key": case.key, **ours, **challenge_case(task, pred, case.mask)})
        bar.update(len(chunk))
    bar.close()
    return rows, seconds


def _comparable(models: Sequence[LoadedModel], cfg: Config, overrides: Sequence[str], split: str, tta: bool) -> dict[str, float]:
    """The recorded metrics this evaluation should reproduce: same split of the same data, one model, no TTA."""
    if split == "all" or len(models) > 1 or tta or any(o.strip().startswith("data.") for o in overrides):
        return {}
    return {k: v for k, v in models[0].recorded.items() if k.startswith(f"{split}_") and k.split("_")[1] in ("dice", "hd95", "asd", "jaccard")}


def default_out(path: Path, split: str) -> Path:
    """Next to the run: ``RUN/evaluate-SPLIT``; for a sweep trial ``SWEEP/evaluate/TRIAL-SPLIT`` (not inside Tune's folders)."""
    if path.parent.name.startswith("checkpoint_") and path.parent.parent.parent.name in ("tune", "train"):
        return path.parent.parent.parent.parent / "evaluate" / f"{path.parent.parent.name}-{split}"
    if path.parent.name in ("checkpoints",) or path.parent.name.startswith("checkpoint_"):
        return path.parent.parent / f"evaluate-{split}"
    return path.parent / f"evaluate-{split}"


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise OutputError(f"--out {out}: already exists and is not empty; pass --overwrite to replace it, or choose another folder")
    check_writable(out, "--out")


def _describe(cfg: Config) -> str:
    d = cfg.data
    if d.source == "synthetic":
        return f"synthetic {d.task}/{d.difficulty} at {d.image_size} px (data_seed {d.data_seed}, split seed {d.effective_split_seed})"
    return f"{d.source} at {d.root} (split seed {d.effective_split_seed})"


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _json_number(value: Any) -> Any:
    return str(value)


def summary_table(report: Report) -> str:
    """The printed summary: as training scores it (with the recorded value beside it), the challenge metrics, runtime."""
    lines = [f"evaluate: {len(report.cases)} image(s), split {report.split} of {report.data}", f"{'metric':<28} {'value':>10} {'recorded':>10} {'diff':>9}"]
    diffs = report.differences()
    for key in (f"{report.split}_{m}_fg" for m in ("dice", "jaccard", "hd95", "asd")):
        if key in report.training:
            rec = report.recorded.get(key)
            extra = f" {rec:>10.4f} {diffs[key]:>+9.4f}" if rec is not None else ""
            lines.append(f"{key:<28} {report.training[key]:>10.4f}{extra}")
    prefix = "fugc_" if report.task == "cervix" else "psfh_"
    for key, value in report.challenge.items():
        if key.startswith(prefix) and not key.endswith("_n_inf"):
            infinite = report.challenge.get(f"{key}_n_inf")
            shown = f"{value:>10.4f}" if math.isfinite(value) else f"{'inf':>10}"
            lines.append(f"{key:<28} {shown}" + (f"   ({int(infinite)} image(s) with one mask empty: inf, not in the mean)" if infinite else ""))
    lines.append(f"{'runtime_ms_per_image':<28} {report.ms_per_image:>10.2f}")
    if report.recorded and f"{report.split}_dice_fg" in diffs:
        d = abs(diffs[f"{report.split}_dice_fg"])
        verdict = "reproduced" if d <= REPRODUCE_TOLERANCE else "NOT reproduced"
        lines.append(f"{report.split}_dice_fg {verdict}: |difference| {d:.4f} (tolerance {REPRODUCE_TOLERANCE})")
    return "\n".join(lines)
