"""Typed, frozen configuration: loaded once from YAML, validated at the boundary, flattened for Parquet.

A config is a tree of frozen dataclasses. YAML is read with ``yaml.safe_load``; every key must name a
field (unknown keys get a "did you mean" hint); every value is checked against the field's type, and
numbers written the YAML-1.1 way (``1e-4`` is a *string* to PyYAML) are parsed as the field asks.
Overrides use dotted keys (``train.epochs=3``) and go through the same checks, so there is one source of
truth for every value.

Configs shipped with the package (``hdc_ray/configs/*.yaml``) are addressable by name: ``tiny``,
``synthetic``, ``fugc``, ``psfh``.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hdc_ray.errors import UserError

CONFIG_DIR = Path(__file__).parent / "configs"

# "supervised_ema": supervised training on labelled images only, always scored with an EMA teacher of its
# weights, so a benchmark can tell the EMA gain of mean teacher / HDC from their SSL gain. "fixmatch" and
# "unimatch": the single-network weak-to-strong peers (UniMatch, Yang et al. CVPR 2023, and its FixMatch).
Method = Literal["supervised", "supervised_ema", "mean_teacher", "hdc", "cps", "fixmatch", "unimatch"]


class ConfigError(UserError, ValueError):
    """A config file, override or value is wrong; the message says where and how to fix it."""


@dataclass(frozen=True)
class DataConfig:
    # "synthetic" needs no files; "fugc"/"psfh" read a user's folder in the public download layout.
    source: Literal["synthetic", "fugc", "psfh"] = "synthetic"
    root: str | None = None  # dataset folder for real sources
    task: Literal["cervix", "psfh"] = "cervix"  # synthetic anatomy (FUGC-like or PSFH-like)
    # Synthetic preset (hdc_ray/data/synthetic.py PRESETS): "easy" / "medium" / "hard" are generator v2, whose
    # labels can be read at 64 px ("medium" is the benchmark); "v1_*" are the first generator's presets
    # (thin lips, a faint canal: class boundary barely visible), kept to stress methods.
    difficulty: Literal["easy", "medium", "hard", "v1_easy", "v1_medium", "v1_hard"] = "medium"
    image_size: int = 128  # training resolution (square); metrics are computed at native size
    n_train: int = 400  # synthetic training pool (labelled + unlabelled)
    n_val: int = 40  # model selection only
    n_test: int = 80  # reported numbers only; never seen during selection
    label_ratio: float = 0.1  # fraction of the training pool that keeps its labels, in (0, 1]
    label_count: int | None = None  # labelled images; overrides label_ratio when set (benchmarks: 4, 8, 16)
    # Which images are labelled / val / test; recorded as split_hash. None: follow train.seed, so seeds are
    # different splits (the variance that dominates at a few labels); an int pins the split across seeds.
    split_seed: int | None = None
    data_seed: int = 0  # synthetic generator seed
    cache_dir: str | None = None  # where generated synthetic arrays are cached (None: ~/.cache/hdc-ray)

    def __post_init__(self) -> None:
        _check(0.0 < self.label_ratio <= 1.0, "data.label_ratio", f"must be in (0, 1], got {self.label_ratio}")
        _check(self.label_count is None or self.label_count >= 1, "data.label_count", "must be >= 1")
        _check(self.image_size >= 16 and self.image_size % 16 == 0, "data.image_size", "must be a multiple of 16, >= 16")
        _check(self.n_train >= 2 and self.n_val >= 1 and self.n_test >= 1, "data.n_train", "pools must be non-empty")
        _check(self.source == "synthetic" or self.root is not None, "data.root", f"source {self.source!r} needs data.root")
        _check(self.split_seed is None or self.split_seed >= 0, "data.split_seed", "must be >= 0 or null (follow train.seed)")
        if self.source == "synthetic":
            pool = self.n_train
            _check(self.label_count is None or self.label_count <= pool, "data.label_count",
                   f"{self.label_count} labelled images asked for, but the training pool has only data.n_train={pool}")  # fmt: skip
            _check(self.label_count is not None or self.label_ratio * pool >= 0.5, "data.label_ratio",
                   f"{self.label_ratio} of data.n_train={pool} rounds to 0 labelled images; raise it or set data.label_count")  # fmt: skip

    @property
    def effective_split_seed(self) -> int:
        """The seed that draws the split: ``split_seed`` if pinned, else the run's ``train.seed`` (bound by
        ``Config``; a DataConfig built on its own follows train.seed's default, 0)."""
        return self.split_seed if self.split_seed is not None else int(getattr(self, "_run_seed", 0))


@dataclass(frozen=True)
class ModelConfig:
    # "unet": plain double-conv U-Net for CPU and tests; "resunet": residual blocks, a wider/deeper option
    # for paper-scale GPU runs (no pretrained weights: nothing is downloaded).
    backbone: Literal["unet", "resunet"] = "unet"
    base_width: int = 16  # channels of the first stage; doubled per stage
    depth: int = 4  # encoder stages (down-samplings = depth - 1)
    norm: Literal["group", "batch"] = "group"  # group norm keeps 1-vs-N-worker DDP results equal
    dropout: float = 0.0  # dropout before each decoder's classifier
    # HDC's noisy decoder (the paper's is a second full decoder): "full"; "light" = a decoder of half the width fed
    # 1x1-projected (perturbed) encoder features, ~1/4 of a decoder's FLOPs (a cheaper step); "none" =
    # no noisy decoder, the ablation "dual decoder replaced by a single decoder" (L_MI and the feature noise then
    # have nothing to act on and are skipped).
    noisy_decoder: Literal["full", "light", "none"] = "full"

    def __post_init__(self) -> None:
        _check(self.base_width >= 4, "model.base_width", "must be >= 4")
        _check(2 <= self.depth <= 6, "model.depth", "must be in [2, 6]")
        _check(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")


@dataclass(frozen=True)
class NoiseConfig:
    """The three noise levels of HDC: weak (teacher input), strong (student input), feature (noisy decoder)."""

    # Level 1, weak views: flips and small affine moves.
    weak_flip_p: float = 0.5
    weak_rotate_deg: float = 10.0
    weak_scale: float = 0.1  # scale drawn from [1 - s, 1 + s]
    # Level 2, strong views: photometric changes on top of the weak geometry, plus an optional extra affine
    # warp that is applied to the teacher's pseudo-labels as well (noise.strong_geometric).
    strong_brightness: float = 0.4
    strong_contrast: float = 0.4
    strong_gamma: float = 0.4
    strong_blur_p: float = 0.5
    strong_noise_std: float = 0.05  # additive Gaussian noise (image range [0, 1])
    strong_speckle_std: float = 0.1  # multiplicative noise: ultrasound-like
    strong_cutout_p: float = 0.5
    strong_cutout_frac: float = 0.25  # side of the cut-out square, as a fraction of the image side
    strong_geometric: bool = True
    strong_rotate_deg: float = 15.0
    strong_scale: float = 0.15
    # Level 3, structured feature perturbations on every encoder feature entering the noisy decoder.
    feature_noise: float = 0.3  # CCT uniform noise x + x*u, u ~ U(-r, r); 0 disables
    feature_dropout: float = 0.3  # share of the most-attended locations dropped (CCT); 0 disables
    channel_dropout: float = 0.2  # Dropout2d rate; 0 disables
    feature_perturbation: Literal["random", "all"] = "random"  # one per image at random (UniMatch-like) or all stacked
    # FixMatch / UniMatch (train.method fixmatch, unimatch). Their strong views are UniMatch's medical ones, not
    # the strong_* fields above: colour jitter (p 0.8; on a grey image ColorJitter(0.5, 0.5, 0.5, 0.25) is
    # brightness and contrast factors in [0.5, 1.5], saturation and hue do nothing), Gaussian blur (p 0.5, sigma
    # in [0.1, 2]), then CutMix with a second unlabelled batch: a box of area share U(cutmix_min_area,
    # cutmix_max_area) and aspect ratio in [cutmix_ratio, 1 / cutmix_ratio], with probability cutmix_p.
    cutmix_p: float = 0.5
    cutmix_min_area: float = 0.02
    cutmix_max_area: float = 0.4
    cutmix_ratio: float = 0.3
    # UniMatch's feature-perturbed stream: Dropout2d at this rate on every encoder feature of the weak view,
    # decoded by the same decoder (UniMatch: nn.Dropout2d(0.5) on all five encoder levels).
    fp_dropout: float = 0.5

    def __post_init__(self) -> None:
        for name in ("weak_flip_p", "strong_blur_p", "strong_cutout_p", "feature_dropout", "channel_dropout"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"noise.{name}", f"must be in [0, 1], got {value}")
        for name in ("weak_scale", "strong_scale", "strong_brightness", "strong_contrast", "strong_gamma"):
            value = getattr(self, name)
            _check(0.0 <= value < 1.0, f"noise.{name}", f"must be in [0, 1), got {value}")
        _check(self.feature_noise >= 0.0, "noise.feature_noise", "must be >= 0")
        for name in ("cutmix_p", "cutmix_min_area", "cutmix_max_area"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"noise.{name}", f"must be in [0, 1], got {value}")
        _check(self.cutmix_min_area <= self.cutmix_max_area, "noise.cutmix_min_area", "must be <= noise.cutmix_max_area")
        _check(0.0 < self.cutmix_ratio <= 1.0, "noise.cutmix_ratio", f"must be in (0, 1], got {self.cutmix_ratio}")
        _check(0.0 <= self.fp_dropout < 1.0, "noise.fp_dropout", f"must be in [0, 1), got {self.fp_dropout}")


@dataclass(frozen=True)
class LossConfig:
    w_sup: float = 1.0
    # The paper's supervised loss is pixel CE (0.0 here). A soft Dice term (e.g. 1.0) stops CE from collapsing
    # small structures to background at low label budgets (the synthetic config sets it).
    sup_dice: float = 0.0
    # "class": the supervised CE weighs each class inversely to its pixel share in the labelled batch, so a small class
    # (the pubic symphysis) pulls as hard as the background (a class-collapse guard); "none": plain CE.
    sup_balance: Literal["none", "class"] = "none"
    w_pc: float = 1.0  # pixel consistency (teacher pseudo-labels -> student strong view)
    # Correlation Guidance (teacher vs student main branch, at loss.cg_levels). Keep it small: its log form's
    # gradient grows as the student nears its EMA teacher, and large weights merged a lip on untuned splits
    # (docs/benchmarks.md, "At 320 steps, the demo's compute").
    w_cg: float = 0.1
    w_mi: float = 0.1  # Mutual Information (student main vs noisy branch)
    w_cps: float = 1.0  # cross pseudo supervision (method "cps" only)
    # FixMatch / UniMatch: weight of the unlabelled loss. Their total is (L_x + L_u) / 2: 1:1 (the /2 only scales
    # the lr). UniMatch splits L_u between its feature-perturbed stream (w_u * fp_share) and the two strong views
    # (the rest, equally): its code's 0.5 / 0.25 / 0.25.
    w_u: float = 1.0
    fp_share: float = 0.5
    # Pseudo-labels of FixMatch / UniMatch: the network's own weak-view prediction, kept where its confidence is
    # >= fixmatch_threshold (0.95 in every UniMatch config; HDC's teacher uses confidence_threshold).
    fixmatch_threshold: float = 0.95
    # Their unlabelled loss: "dice" = UniMatch's medical code (Dice over every class, background included,
    # on the confident pixels only); "ce" = the paper and its natural-image code (CE on confident pixels,
    # summed, over all pixels).
    fixmatch_loss: Literal["dice", "ce"] = "dice"
    # FixMatch / UniMatch have no ramp-up (the threshold holds back early pseudo-labels): false gives their
    # unlabelled terms weight w_u from step 0; true ramps them like the other methods (loss.ramp_fraction).
    fixmatch_ramp: bool = False
    # The pixel-consistency mask: a fixed, high threshold. A mask that opens wide early (the "adaptive" threshold,
    # or soft targets) lets a teacher that does not predict a small class yet teach it away; 0.8 gained nothing
    # over 0.9 (docs/benchmarks.md, "At 320 steps, the demo's compute"). The loop warns when the confident share
    # is still under 5% well after the ramp-up.
    confidence_threshold: float = 0.9
    # The v2 abstract's "adaptive consistency learning" has no published equation: "fixed" masks at
    # confidence_threshold; "adaptive" = FreeMatch's self-adaptive threshold (losses/consistency.py).
    threshold_kind: Literal["fixed", "adaptive"] = "fixed"
    threshold_momentum: float = 0.99  # EMA decay of the adaptive threshold's statistics (FreeMatch: 0.999 over ~10^6 steps)
    # FreeMatch's per-class MaxNorm scaling. Off by default: the background dominates the mean class
    # probabilities in segmentation, so the small classes' thresholds would drop towards 0.
    threshold_per_class: bool = False
    # The paper's L_CG formula is unavailable: "itrd" = ITRD correlation loss (default), "gram" = affinity MSE.
    cg_kind: Literal["itrd", "gram"] = "itrd"
    cg_alpha: float = 1.5  # ITRD exponent: |1 - c_d|^(2 * alpha)
    # How "itrd" turns S = sum_d |1 - c_d|^(2 alpha) into a loss: "log" = ITRD's log2(S), whose gradient
    # 1 / (S ln 2) grows as the student reaches its EMA teacher; "log1p" = log2(1 + S) and "linear" = S / D
    # stay bounded. log measured better on the synthetic benchmark; the bounded forms are for long schedules
    # where S does reach ~0.
    cg_form: Literal["log", "log1p", "linear"] = "log"
    # Which features "hierarchical" means: encoder stages ("enc1".."encD", "bottleneck" = deepest) and decoder
    # stages ("dec1".. shallow-to-deep order reversed: "dec_last" = the decoder's last hidden map).
    # Both levels by default: each alone lost a late-learned class on some split of the old cosine schedule, and
    # both were safe once the lr stopped cutting those classes off (docs/benchmarks.md, "At 320 steps").
    cg_levels: tuple[str, ...] = ("bottleneck", "dec_last")
    cg_max_samples: int = 4096  # pixel rows sub-sampled per level for the correlation
    # The paper's L_MI formula is unavailable: "renyi" = ITRD Renyi-2 surrogate on features (default),
    # "iic" = IIC mutual information between the two decoders' softmax maps.
    mi_kind: Literal["renyi", "iic"] = "renyi"
    mi_detach: Literal["none", "main", "noisy"] = "main"  # stabilise the noisy branch, not drag the main one
    mi_level: str = "dec_last"  # feature level for "renyi"
    mi_max_samples: int = 1024
    # How the teacher's weak view supervises the student's strong view ("pixel-level consistency"; the paper's
    # form is unpublished): "hard" = confidence-masked argmax pseudo-labels with CE (FixMatch/UniMatch, the
    # threshold fields above); "soft" = squared error between the two softmax maps on every valid pixel
    # (Mean Teacher's dense form; the threshold fields are then unused and the confident fraction is 1).
    pc_kind: Literal["hard", "soft"] = "hard"
    pc_on_noisy: bool = True  # the noisy decoder also learns from pseudo-labels (UniMatch's perturbed stream)
    ramp_fraction: float = 0.4  # sigmoid ramp-up length as a fraction of all training iterations
    # Class gate: the unsupervised terms stay off until the scored network's validation Dice of EVERY class reaches
    # class_gate_dice, and their ramp-up starts then. Why: a small class that supervision learns late is taught away
    # by a teacher that has never predicted it: its pseudo-labels and features say "background" there once the ramp
    # is up (bench/class_collapse.py, docs/benchmarks.md "The class collapse"). A class never found on validation
    # keeps the method supervised.
    class_gate: bool = False
    class_gate_dice: float = 0.25  # the Answer's "lost class" line (analysis.tables.LOST_DICE)

    def __post_init__(self) -> None:
        for name in ("w_sup", "sup_dice", "w_pc", "w_cg", "w_mi", "w_cps", "w_u"):
            _check(getattr(self, name) >= 0.0, f"loss.{name}", "must be >= 0")
        _check(0.0 <= self.fp_share <= 1.0, "loss.fp_share", f"must be in [0, 1], got {self.fp_share}")
        _check(0.0 <= self.fixmatch_threshold < 1.0, "loss.fixmatch_threshold", "must be in [0, 1)")
        _check(0.0 <= self.confidence_threshold < 1.0, "loss.confidence_threshold", "must be in [0, 1)")
        _check(0.0 <= self.threshold_momentum < 1.0, "loss.threshold_momentum", f"must be in [0, 1), got {self.threshold_momentum}")
        _check(len(self.cg_levels) >= 1, "loss.cg_levels", "needs at least one level")
        _check(0.0 <= self.ramp_fraction <= 1.0, "loss.ramp_fraction", "must be in [0, 1]")
        _check(0.0 <= self.class_gate_dice < 1.0, "loss.class_gate_dice", "must be in [0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    method: Method = "hdc"
    epochs: int = 20
    iters_per_epoch: int = 50  # an "epoch" is a fixed number of iterations: labelled sets are tiny
    batch_labeled: int = 8  # GLOBAL batch: split across DDP ranks, so results do not depend on N
    batch_unlabeled: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: Literal["adamw", "sgd"] = "adamw"
    schedule: Literal["cosine", "constant"] = "cosine"
    # Length of the cosine, in steps: it decays over max(this, the run's steps). None: the run's own steps (a
    # plain cosine to 0). The real-data configs set their authors' full run (10,000), so that a shorter run, a
    # user's first try or a sweep trial cut short, follows the start of the authors' schedule instead of a
    # compressed cosine that reaches 0 before late-learned small classes are learned (docs/method.md,
    # "Short runs of the real-data configs").
    cosine_steps: int | None = None
    warmup_iters: int = 0
    ema_decay: float = 0.99
    seed: int = 0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast on GPU; CPU supports fp32/bf16
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_every: int = 1  # epochs between validations
    checkpoint_every: int = 1  # epochs between checkpoints
    keep_checkpoints: int = 2  # most recent checkpoints kept (the best one is kept as well)
    select_metric: str = "val_dice_fg"  # model selection on validation, never on test
    # Mean teacher and HDC: which network is validated and tested (supervised_ema always scores its EMA). The
    # authors score the EMA teacher; on short constant-lr runs it lags a student that is still improving, so the
    # synthetic config scores the student (docs/benchmarks.md, "At 320 steps").
    eval_model: Literal["teacher", "student"] = "teacher"
    grad_clip: float = 0.0  # 0 disables
    # Diagnostics of class collapse, off by default: every epoch also validates the network that is not
    # scored (``val_other_*``: the teacher when the student is scored, and back), and HDC logs per class the share of
    # unlabelled pixels its teacher pseudo-labels (``train_pseudo_cK``) and how much of that passes the threshold
    # (``train_confident_cK``), K the class index.
    log_classes: bool = False

    def __post_init__(self) -> None:
        _check(self.epochs >= 1 and self.iters_per_epoch >= 1, "train.epochs", "epochs and iters_per_epoch >= 1")
        _check(self.batch_labeled >= 1 and self.batch_unlabeled >= 1, "train.batch_labeled", "batches must be >= 1")
        _check(self.lr > 0.0, "train.lr", "must be > 0")
        _check(self.cosine_steps is None or self.cosine_steps >= 1, "train.cosine_steps", "must be >= 1 or null (the run's own steps)")
        _check(0.0 <= self.ema_decay < 1.0, "train.ema_decay", "must be in [0, 1)")
        _check(self.checkpoint_every >= 1 and self.keep_checkpoints >= 1, "train.checkpoint_every", "must be >= 1")
        _check(self.select_metric.startswith("val_"), "train.select_metric", "must be a validation metric (val_...)")


@dataclass(frozen=True)
class EvalConfig:
    hd_percentile: float = 95.0  # 100 gives the Hausdorff distance (challenge parity)
    # "max_directed": max of the two directed percentiles (MONAI); "pooled": percentile of pooled distances (medpy).
    hd_convention: Literal["max_directed", "pooled"] = "max_directed"
    # Distance when exactly one of prediction / ground truth is empty: "diagonal" of the image, "inf"
    # (FUGC parity) or a number (100 for PSFH parity).
    empty_penalty: str = "diagonal"
    batch_size: int = 16

    def __post_init__(self) -> None:
        _check(0.0 < self.hd_percentile <= 100.0, "eval.hd_percentile", "must be in (0, 100]")
        ok = self.empty_penalty in ("diagonal", "inf") or _is_number(self.empty_penalty)
        _check(ok, "eval.empty_penalty", "must be 'diagonal', 'inf' or a number")


@dataclass(frozen=True)
class DistConfig:
    """Ray Train settings; ignored by in-process training."""

    workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    max_failures: int = 0  # ray.train.FailureConfig(max_failures=...); -1 retries forever
    storage_path: str | None = None  # local folder or any pyarrow URI (s3://, gs://); None: ~/hdc-ray-results
    pin_memory: bool = True  # only used with GPUs

    def __post_init__(self) -> None:
        _check(self.workers >= 1, "dist.workers", "must be >= 1")
        _check(self.cpus_per_worker > 0.0, "dist.cpus_per_worker", "must be > 0")
        _check(self.max_failures >= -1, "dist.max_failures", "must be >= -1")


@dataclass(frozen=True)
class Config:
    name: str = "hdc"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    dist: DistConfig = field(default_factory=DistConfig)

    def __post_init__(self) -> None:
        _bind_run_seed(self)
        levels = _valid_levels(self.model.depth)
        for level in (*self.loss.cg_levels, self.loss.mi_level):
            _check(level in levels, "loss.cg_levels", f"unknown feature level {level!r}; choose from {levels}")
        workers, b_l, b_u = self.dist.workers, self.train.batch_labeled, self.train.batch_unlabeled
        # The global batch is split evenly across ranks, so results do not depend on the worker count.
        _check(b_l % workers == 0 and b_u % workers == 0, "dist.workers", f"must divide train.batch_labeled ({b_l}) and train.batch_unlabeled ({b_u})")


def _bind_run_seed(cfg: Config) -> None:
    """``data.split_seed: null`` follows ``train.seed``: give the data section (a private copy: sections may
    be shared between configs) the run seed, so ``build_data(cfg.data)`` draws that run's split. Not a
    field: ``to_dict`` keeps ``null``, so a sweep's ``with_overrides(train.seed=...)`` re-binds it."""
    if cfg.data.split_seed is None:
        data = dataclasses.replace(cfg.data)
        object.__setattr__(data, "_run_seed", cfg.train.seed)
        object.__setattr__(cfg, "data", data)


def _valid_levels(depth: int) -> list[str]:
    return [*(f"enc{i}" for i in range(1, depth + 1)), "bottleneck", *(f"dec{i}" for i in range(1, depth)), "dec_last"]


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------- loading


def load_config(name_or_path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Load a packaged config by name (``tiny``) or a YAML file by path, then apply ``key=value`` overrides."""
    path = resolve_config_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:  # one line: YAML's own text spans several
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    overrides = list(overrides)
    return config_from_dict(apply_overrides(raw, [*overrides, *_budget_follows(k for k, _, _ in (o.partition("=") for o in overrides))]), source=str(path))


def _budget_follows(keys: Iterable[str]) -> list[str]:
    """``data.label_count`` wins over ``data.label_ratio``, so a ratio given as an override alone would be
    silently ignored under a file's count (``synthetic`` sets ``label_count: 8``): the ratio given last clears
    the count, unless the count is given too."""
    keys = {k.strip() for k in keys}
    return ["data.label_count=null"] if "data.label_ratio" in keys and "data.label_count" not in keys else []


def resolve_config_path(name_or_path: str | Path) -> Path:
    chosen = packaged_or_path(name_or_path, CONFIG_DIR / f"{name_or_path}.yaml", "config")
    if chosen is not None and chosen.is_file():
        return chosen
    path = Path(name_or_path)
    if chosen is not None or path.suffix in (".yaml", ".yml"):
        raise ConfigError(f"config file not found: {path}" + (" is a folder" if path.is_dir() else ""))
    names = packaged_config_names()
    raise ConfigError(f"unknown config {str(name_or_path)!r}: not a file, and not one of {names}{_hint(str(name_or_path), names)}")


_NOTED: set[str] = set()


def packaged_or_path(name_or_path: str | Path, packaged: Path, what: str) -> Path | None:
    """Which file a command-line argument means when it may be a packaged name or a path (configs, specs).

    A bare name (no folder part, no ``.yaml``/``.yml`` suffix) means the packaged one whenever there is one:
    a local file or folder of the same name neither hides it nor makes it unreachable, and stays reachable
    as ``./NAME``. When both exist, one note on stderr says which was used. Anything else is a path.
    Returns the path to use (which may not be a file), or None when the argument names nothing.
    """
    text = str(name_or_path)
    local = Path(text).expanduser()
    is_path = local.suffix in (".yaml", ".yml") or "/" in text or "\\" in text or text.startswith((".", "~"))
    if not is_path and packaged.is_file():
        if local.exists() and text not in _NOTED:
            _NOTED.add(text)
            kind = "folder" if local.is_dir() else "file"
            print(f"note: {text!r} is the packaged {what} {packaged}; the local {kind} {text!r} is not used (pass ./{text} to use it)", file=sys.stderr)
        return packaged
    return local if local.exists() else None


def packaged_config_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``a.b=value`` applied; values are parsed as YAML scalars."""
    result = _deep_copy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like section.key=value")
        set_dotted(result, key.strip(), yaml.safe_load(text) if text.strip() else None)
    return result


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is a value, not a section")
        node = child
    node[leaf] = value


def _deep_copy(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in tree.items()}


def config_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> Config:
    try:
        return _build(Config, raw, prefix="")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _build(cls: type, raw: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in raw if k not in names]
    if unknown:
        key = unknown[0]
        raise ConfigError(f"unknown key '{prefix}{key}'{_hint(key, names)}; valid keys: {', '.join(names)}")
    kwargs = {}
    for name, value in raw.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(typing.cast(type, hint), value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}{_hint(str(value), [str(a) for a in args])}")
        return value
    if origin is tuple:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], key) for v in items)
    return _coerce_scalar(value, hint, key)


def _coerce_scalar(value: Any, hint: Any, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if hint is float:
        # PyYAML (YAML 1.1) reads 1e-4 as a string; parse it here instead of failing later in the optimiser.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _is_number(value):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {hint!r}")  # pragma: no cover - schema bug


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ------------------------------------------------------------------------------------------- exporting


def to_dict(cfg: Config) -> dict[str, Any]:
    """Nested plain dict (lists for tuples): YAML- and JSON-safe."""
    return _plain(dataclasses.asdict(cfg))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def flatten(cfg: Config) -> dict[str, Any]:
    """``{"loss.w_cg": 0.1, "loss.cg_levels": "bottleneck,dec_last", ...}``: one scalar per Parquet column."""
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = ",".join(map(str, value)) if isinstance(value, list) else value

    walk(to_dict(cfg), "")
    return flat


def with_overrides(cfg: Config, overrides: Mapping[str, Any]) -> Config:
    """A new validated config with dotted-key values replaced (used by sweeps)."""
    raw = to_dict(cfg)
    for key, value in overrides.items():
        set_dotted(raw, key, list(value) if isinstance(value, tuple) else value)
    if _budget_follows(overrides):
        set_dotted(raw, "data.label_count", None)
    return config_from_dict(raw, source="overrides")


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
