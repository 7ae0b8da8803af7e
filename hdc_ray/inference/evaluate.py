"""``hdc-ray evaluate MODEL``: score a checkpoint on labelled images, as training scored it and as the challenges do.

The images are the run's own split (``--split test|val``, drawn from the config stored with the weights, so
``test`` is the test set the run reported) or every labelled image (``all``), of the run's data or of
another folder (``--set data.root=...``; its layout, FUGC or PSFH, is detected). Without ``--split``, the
run's own data means its test split and another folder means all of it (a folder that is not the training
data has no split of this run to reproduce). Each image is predicted by its own call (the runtime FUGC
ranks on: resize, network, resize back, per image) and resized back to its native size, then scored:

- nnU-Net's metrics per label and the distances (``inference.scoring``: the ``summary.json`` shape that
  ``evaluate REF PRED`` writes too, so the two agree on ``predict``'s output);
- as training does (``metrics.evaluate_case`` with the run's ``eval.*`` settings; means by
  ``metrics.aggregate``): on the run's test split this reproduces the ``test_dice_fg`` it recorded;
- with the challenge's rules (``inference.challenge``: FUGC for the cervix task, FH-PS-AOP for psfh).

Writes ``cases.csv`` (one row per image) and ``summary.json`` into a staged folder, like ``predict``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hdc_ray.config import Config, ConfigError, apply_overrides, config_from_dict, to_dict
from hdc_ray.data.errors import DataError
from hdc_ray.data.tasks import CLASS_NAMES, task_of
from hdc_ray.inference.challenge import challenge_case, challenge_summary
from hdc_ray.inference.predictor import Predictor
from hdc_ray.inference.scoring import CaseScore, EvaluateError, case_metrics, check_out, distance_spacing, summary, write_report
from hdc_ray.inference.sources import LoadedModel
from hdc_ray.metrics import aggregate, evaluate_case

__all__ = ["SPLITS", "EvaluateError", "Report", "default_out", "evaluate_models", "labelled_cases", "run_config"]

SPLITS = ("test", "val", "all")
LABELS = (1, 2)
# Differences below this are noise of float summation order between batchings, not a different model.
REPRODUCE_TOLERANCE = 0.005


@dataclass(frozen=True)
class Case:
    key: str
    image: np.ndarray  # float32 (H, W) in [0, 1], native size
    mask: np.ndarray  # uint8 (H, W) class indices, native size
    spacing: tuple[float, float] | None
    reference: str  # the mask's file, or the synthetic key


@dataclass(frozen=True)
class Report:
    out: Path
    split: str
    task: str
    scores: list[CaseScore]
    training: dict[str, float]  # aggregated as training does, keys prefixed with the split (test_dice_fg ...)
    summary: dict[str, Any]  # what summary.json holds (before JSON's null conversion)
    recorded: dict[str, float]  # what the run recorded for the same split, when comparable
    notes: tuple[str, ...] = ()

    def differences(self) -> dict[str, float]:
        return {k: self.training[k] - v for k, v in self.recorded.items() if k in self.training}

    def reproduction(self) -> tuple[float, bool, float] | None:
        """(|difference| of the split's dice_fg from the record, whether within tolerance, the tolerance); None if not comparable."""
        key = f"{self.split}_dice_fg"
        if key not in self.differences():
            return None
        difference = abs(self.differences()[key])
        return difference, difference <= REPRODUCE_TOLERANCE, REPRODUCE_TOLERANCE


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


def is_training_data(run: Config, cfg: Config) -> bool:
    """Whether ``cfg`` reads the data the run was trained on (same source and folder): only then has it a split."""
    if run.data.source != cfg.data.source:
        return False
    if cfg.data.source == "synthetic":
        return True
    return Path(run.data.root or "").expanduser().resolve() == Path(cfg.data.root or "").expanduser().resolve()


def choose_split(run: Config, cfg: Config, split: str | None) -> tuple[str, tuple[str, ...]]:
    """``split`` as asked; unasked: the run's test split on its own data, every labelled image of other data."""
    if split is not None:
        if split not in SPLITS:
            raise EvaluateError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
        return split, ()
    if is_training_data(run, cfg):
        return "test", ()
    return "all", (f"note: {cfg.data.root} is not the data the run was trained on, so every labelled image is scored "
                   "(--split all); --split test|val draws the run's split from it instead",)  # fmt: skip


def labelled_cases(cfg: Config, split: str, progress: bool = False) -> list[Case]:
    """The labelled images of ``split`` at native size, in the run's split order."""
    from hdc_ray.data import build_data
    from hdc_ray.data.dataset import real_split
    from hdc_ray.data.readers import load_sample

    if cfg.data.source == "synthetic":
        data = build_data(cfg.data, progress=progress)
        sets = {"test": [data.test], "val": [data.val], "all": [data.labeled, data.val, data.test]}[split]
        return [Case(d.keys[i], d.images[i], d.native_masks[i], d.spacing[i], d.keys[i]) for d in sets if d.native_masks is not None for i in range(len(d))]
    if split == "all":  # every labelled image: no split to draw (a small folder may not fit the run's val + test sizes)
        chosen = [f for f in _real_files(cfg) if f.mask_path is not None]
    else:
        try:
            files, drawn = real_split(cfg.data)
        except DataError as exc:
            raise EvaluateError(f"--split {split} of {cfg.data.root}: {exc}; pass --split all to score every labelled image") from None
        chosen = [files[int(i)] for i in (drawn.test if split == "test" else drawn.val)]
    cases = []
    for entry in chosen:
        sample = load_sample(entry)
        assert sample.mask is not None  # the split puts only labelled images in these sets
        cases.append(Case(sample.key, sample.image, sample.mask, sample.spacing, str(entry.mask_path)))
    return cases


def _real_files(cfg: Config) -> list[Any]:
    from hdc_ray.data.readers import fugc_files, psfh_files

    assert cfg.data.root is not None  # DataConfig guarantees it for real sources
    if cfg.data.source == "fugc":
        labeled, unlabeled = fugc_files(cfg.data.root)
        return labeled + unlabeled
    return psfh_files(cfg.data.root)


def evaluate_models(
    models: Sequence[LoadedModel], overrides: Sequence[str] = (), *, split: str | None = None, out: Path | None = None,
    overwrite: bool = False, device: str = "cpu", tta: bool = False, progress: bool = True,
) -> Report:  # fmt: skip
    """Score ``models`` (one, or an ensemble) on ``split`` of the first model's run data (after ``overrides``)."""
    cfg = run_config(models[0], overrides)
    assert models[0].config is not None  # run_config refused a model without one
    split, notes = choose_split(models[0].config, cfg, split)
    task = task_of(cfg.data.source, cfg.data.task)
    card = models[0].card
    if (card.task, card.class_names) != (task, CLASS_NAMES[task]):
        raise EvaluateError(f"{models[0].path} segments {card.task} ({', '.join(card.class_names[1:])}) but the data "
                            f"({cfg.data.source}{' at ' + cfg.data.root if cfg.data.root else ''}) is {task} ({', '.join(CLASS_NAMES[task][1:])})")  # fmt: skip
    out = out or default_out(models[0].path, split)
    check_out(out, overwrite)
    cases = labelled_cases(cfg, split, progress)
    if not cases:
        raise EvaluateError(f"--split {split}: no labelled images to score")
    predictions, runtime_ms = predict_each(Predictor(models, device, tta), cases, progress)
    spacings, unit = distance_spacing([c.spacing for c in cases])
    scores = [_score(case, pred, spacing, cfg, task) for case, pred, spacing in zip(cases, predictions, spacings, strict=True)]
    report = Report(out, split, task, scores, {f"{split}_{k}": v for k, v in aggregate([s.extra for s in scores]).items()}, {},
                    _comparable(models, overrides, split, tta), notes)  # fmt: skip
    report = dataclasses.replace(report, summary=_summary_json(report, unit, cfg, _runtime(runtime_ms, device), models))
    write_report(out, scores, report.summary)
    return report


def _runtime(ms: Sequence[float], device: str) -> dict[str, Any]:
    return {"ms_per_image_mean": float(np.mean(ms)), "ms_per_image_median": float(np.median(ms)), "device": device,
            "measured": "one predict call per image: resize, network, resize back to native size; warm-up excluded"}  # fmt: skip


def _summary_json(report: Report, unit: str, cfg: Config, runtime: dict[str, Any], models: Sequence[LoadedModel]) -> dict[str, Any]:
    """nnU-Net's summary (``scoring.summary``) with the run's own: split, data, as-training metrics beside the record,
    runtime, the challenge's means (their runtime input included)."""
    names = {label: CLASS_NAMES[report.task][label] for label in LABELS}
    return summary(report.scores, names, unit) | {
        "split": report.split, "data": _describe(cfg), "task": report.task, "as_training": report.training, "recorded": report.recorded,
        "difference": report.differences(), "runtime": runtime,
        "challenge": challenge_summary(report.task, [s.challenge for s in report.scores], runtime["ms_per_image_mean"]),
        "checkpoints": [str(m.path) for m in models],
    }  # fmt: skip


def predict_each(predictor: Predictor, cases: Sequence[Case], progress: bool) -> tuple[list[np.ndarray], list[float]]:
    """One mask per case, each from its own ``predict`` call, and each call's milliseconds (warm-up excluded)."""
    from tqdm.auto import tqdm

    predictor.warm_up(1)
    masks, ms = [], []
    for case in tqdm(cases, desc="evaluate", unit="img", disable=not progress, leave=False, dynamic_ncols=True):
        tick = time.perf_counter()
        masks.append(predictor.predict([case.image])[0])  # returns numpy: the device has finished
        ms.append(1000.0 * (time.perf_counter() - tick))
    return masks, ms


def _score(case: Case, pred: np.ndarray, spacing: tuple[float, float] | None, cfg: Config, task: str) -> CaseScore:
    """nnU-Net's metrics (at ``spacing``: one unit for the whole summary), the challenge's, and training's own
    (``extra``; at the case's spacing, as training recorded them)."""
    penalty: str | float = cfg.eval.empty_penalty if cfg.eval.empty_penalty in ("diagonal", "inf") else float(cfg.eval.empty_penalty)
    training = evaluate_case(pred, case.mask, CLASS_NAMES[task], case.spacing, hd_percentile=cfg.eval.hd_percentile,
                             hd_convention=cfg.eval.hd_convention, empty_penalty=penalty)  # fmt: skip
    nnunet = case_metrics(pred, case.mask, LABELS, spacing)
    return CaseScore(case.key, case.reference, None, spacing, nnunet, challenge_case(task, pred, case.mask), training)


def _comparable(models: Sequence[LoadedModel], overrides: Sequence[str], split: str, tta: bool) -> dict[str, float]:
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


def _describe(cfg: Config) -> str:
    d = cfg.data
    if d.source == "synthetic":
        return f"synthetic {d.task}/{d.difficulty} at {d.image_size} px (data_seed {d.data_seed}, split seed {d.effective_split_seed})"
    return f"{d.source} at {d.root} (split seed {d.effective_split_seed})"

