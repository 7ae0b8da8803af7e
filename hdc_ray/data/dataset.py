"""Assemble the four training/evaluation sets from a ``DataConfig``: the data side of one run.

Synthetic: generate (or load from the cache) a pool of ``n_train + n_val + n_test`` images from
``data_seed``, then split it with ``split_seed`` (by default the run's ``train.seed``: every seed is another
labelled set; see ``DataConfig.effective_split_seed``). FUGC / PSFH: read the user's folder, split it (val/test
only from labelled images), resize to ``image_size`` (images bilinear, masks nearest) and keep the native
masks of labelled/val/test images for metrics at native resolution. For real sources ``n_train`` is
ignored (the training pool is every image not in val/test) and the label budget applies to the labelled
images left for training (FUGC: ``label_ratio=1.0`` uses all of them; the 450 label-less images are always
unlabelled). The bundle's ``label_ratio`` is the actual labelled share of the training pool.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hdc_ray.config import DataConfig
from hdc_ray.data.readers import SampleFile, fugc_files, load_sample, psfh_files
from hdc_ray.data.splits import Split, make_split
from hdc_ray.data.synthetic import SyntheticSpec, generate_dataset
from hdc_ray.data.tasks import CLASS_NAMES

CACHE_ENV = "HDC_RAY_CACHE"  # overrides the cache root (default ~/.cache/hdc-ray)
_REAL_TASK = {"fugc": "cervix", "psfh": "psfh"}  # which class vocabulary each real source uses


@dataclass(frozen=True)
class ArrayDataset:
    """Images at training size with their masks, in pool order of the split's (sorted) indices."""

    images: np.ndarray  # (N, S, S) float32 in [0, 1]
    masks: np.ndarray | None  # (N, S, S) uint8 class indices at training size (nearest); None: unlabelled
    native_masks: list[np.ndarray] | None  # N masks (H_i, W_i) at native resolution, for metrics
    spacing: list[tuple[float, float] | None]  # per image, mm per pixel (row, col) at native resolution
    keys: list[str]

    def __post_init__(self) -> None:
        n = len(self.keys)
        lengths = [len(self.images), len(self.spacing)]
        lengths += [len(x) for x in (self.masks, self.native_masks) if x is not None]
        if any(length != n for length in lengths):
            raise ValueError(f"ArrayDataset: inconsistent lengths {lengths} for {n} keys")

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class DataBundle:
    labeled: ArrayDataset
    unlabeled: ArrayDataset  # masks and native_masks are None: no label can leak into SSL terms
    val: ArrayDataset  # model selection only
    test: ArrayDataset  # reported numbers only
    class_names: tuple[str, ...]
    split_hash: str
    label_ratio: float  # actual labelled share of the training pool (labelled + unlabelled)
    task: str  # class vocabulary: "cervix" (synthetic cervix, FUGC) or "psfh" (synthetic PSFH, PSFH)


def build_data(cfg: DataConfig, progress: bool = False) -> DataBundle:
    """Build the labelled / unlabelled / validation / test sets that ``cfg`` describes."""
    if cfg.source == "synthetic":
        return _synthetic(cfg, progress)
    return _real(cfg, progress)


def default_cache_dir() -> Path:
    """``$HDC_RAY_CACHE/synthetic`` if the variable is set, else ``~/.cache/hdc-ray/synthetic``."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "hdc-ray") / "synthetic"


# ------------------------------------------------------------------------------------------- synthetic


def _synthetic(cfg: DataConfig, progress: bool) -> DataBundle:
    spec = SyntheticSpec(cfg.task, cfg.difficulty, cfg.image_size)
    n = cfg.n_train + cfg.n_val + cfg.n_test
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    images, masks = generate_dataset(spec, n, cfg.data_seed, cache_dir=cache, progress=progress)
    keys = [f"synthetic/{cfg.task}-{cfg.difficulty}-{cfg.image_size}-seed{cfg.data_seed}/{i:05d}" for i in range(n)]
    split = make_split(
        keys, n_val=cfg.n_val, n_test=cfg.n_test, label_ratio=cfg.label_ratio, label_count=cfg.label_count, seed=cfg.effective_split_seed
    )

    def subset(index: np.ndarray, labelled: bool) -> ArrayDataset:
        # Fancy indexing copies: the unlabelled set holds no view into the full mask array.
        sub_masks = masks[index] if labelled else None
        native = list(sub_masks) if sub_masks is not None else None
        return ArrayDataset(images[index], sub_masks, native, [None] * len(index), [keys[i] for i in index])

    return _bundle(split, subset, cfg.task)


def _bundle(split: Split, subset: Callable[[np.ndarray, bool], ArrayDataset], task: str) -> DataBundle:
    return DataBundle(
        labeled=subset(split.labeled, True),
        unlabeled=subset(split.unlabeled, False),
        val=subset(split.val, True),
        test=subset(split.test, True),
        class_names=CLASS_NAMES[task],
        split_hash=split.split_hash,
        label_ratio=split.label_ratio,
        task=task,
    )


# ---------------------------------------------------------------------------------------------- real


def real_split(cfg: DataConfig) -> tuple[list[SampleFile], Split]:
    """The files of a real dataset and the run's split of them, without decoding an image (``hdc-ray
    evaluate`` reads only the split it scores)."""
    assert cfg.root is not None  # DataConfig guarantees it for real sources
    if cfg.source == "fugc":
        labeled, unlabeled = fugc_files(cfg.root)
        files = labeled + unlabeled
    else:
        files = psfh_files(cfg.root)
    keys = [f.key for f in files]
    has_mask = np.array([f.mask_path is not None for f in files])
    split = make_split(keys, n_val=cfg.n_val, n_test=cfg.n_test, label_ratio=cfg.label_ratio,
                       label_count=cfg.label_count, seed=cfg.effective_split_seed, labeled_mask=has_mask)  # fmt: skip
    return files, split


def _real(cfg: DataConfig, progress: bool) -> DataBundle:
    files, split = real_split(cfg)
    counter = _Progress(len(files), cfg.source, progress)

    def subset(index: np.ndarray, labelled: bool) -> ArrayDataset:
        # Unlabelled training images are read without their masks (if any): nothing to leak.
        chosen = [files[i] if labelled else replace(files[i], mask_path=None) for i in index]
        return _load_resized(chosen, cfg.image_size, labelled, counter)

    return _bundle(split, subset, _REAL_TASK[cfg.source])


def _load_resized(files: Sequence[SampleFile], size: int, labelled: bool, counter: _Progress) -> ArrayDataset:
    """Read each file, resize image (bilinear) and mask (nearest) to ``size x size``; keep native masks."""
    images = np.empty((len(files), size, size), np.float32)
    masks = np.empty((len(files), size, size), np.uint8)
    native: list[np.ndarray] = []
    spacing: list[tuple[float, float] | None] = []
    for i, entry in enumerate(files):
        sample = load_sample(entry)
        images[i] = resize_image(sample.image, size)
        if labelled:
            assert sample.mask is not None  # make_split puts only images with masks in labelled sets
            masks[i] = resize_mask(sample.mask, size)
            native.append(sample.mask)
        spacing.append(sample.spacing)
        counter.step()
    keys = [f.key for f in files]
    return ArrayDataset(images, masks if labelled else None, native if labelled else None, spacing, keys)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear (anti-aliased when shrinking) resize of a float image ``(H, W)`` to ``(size, size)``."""
    if image.shape == (size, size):
        return image.astype(np.float32, copy=False)
    from PIL import Image

    resized = np.asarray(Image.fromarray(image.astype(np.float32)).resize((size, size), Image.Resampling.BILINEAR))
    return np.clip(resized, 0.0, 1.0).astype(np.float32)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a class-index mask ``(H, W)`` to ``(size, size)`` (no new labels)."""
    if mask.shape == (size, size):
        return mask
    from PIL import Image

    return np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST)).copy()


class _Progress:
    def __init__(self, total: int, name: str, enabled: bool) -> None:
        self.total, self.name, self.enabled, self.done = total, name, enabled, 0

    def step(self) -> None:
        self.done += 1
        if self.enabled and (self.done % max(1, self.total // 10) == 0 or self.done == self.total):
            print(f"reading {self.name}: {self.done}/{self.total}", file=sys.stderr)
