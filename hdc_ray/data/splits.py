"""Label-budget splits: labelled / unlabelled / validation / test index sets over a pool of samples.

One permutation (from ``seed``) orders the pool: validation and test come first, the rest is the
training pool in random order, and the labelled set is a *prefix* of it. So for one seed the labelled
sets are nested across label budgets (the 5% set is inside the 10% set) and val/test do not move when
the budget changes: label-budget curves are paired comparisons.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hdc_ray.data.errors import DataError


@dataclass(frozen=True)
class Split:
    """Sorted int64 index arrays into the pool, and a short hash identifying the split."""

    labeled: np.ndarray
    unlabeled: np.ndarray
    val: np.ndarray
    test: np.ndarray
    split_hash: str  # sha256 (12 hex) over the four index arrays and the pool keys

    @property
    def label_ratio(self) -> float:
        """Actual labelled share of the training pool (labelled + unlabelled)."""
        return len(self.labeled) / max(len(self.labeled) + len(self.unlabeled), 1)


def make_split(
    keys: Sequence[str],
    *,
    n_val: int,
    n_test: int,
    label_ratio: float | None = None,
    label_count: int | None = None,
    seed: int,
    labeled_mask: np.ndarray | None = None,
) -> Split:
    """Split a pool of ``len(keys)`` samples, deterministically from ``seed``.

    ``labeled_mask`` (bool, one per key) marks the items that have masks (FUGC: 50 labelled + 450
    label-less images). Validation and test are drawn from those only, label-less items always go to the
    unlabelled set, and the label budget applies to the labelled candidates left for training: the
    labelled set is ``label_count`` items, or ``round(label_ratio * candidates)`` (a budget of 0 images, or
    more than there are, is a DataError). Without a mask every item is a candidate, so this is
    ``label_ratio`` of the training pool. Budgets as counts (4, 8, 16) are what label-budget curves plot.
    """
    keys = list(keys)
    has_mask = _mask(keys, labeled_mask)
    eligible = np.flatnonzero(has_mask)
    if n_val < 0 or n_test < 0:
        raise DataError(f"split: n_val and n_test must be >= 0, got n_val={n_val}, n_test={n_test}")
    if n_val + n_test >= len(eligible):
        what = "labelled images" if labeled_mask is not None else "images"
        raise DataError(
            f"split: n_val + n_test = {n_val + n_test} leaves no labelled training image: the pool has only {len(eligible)} {what}"
        )
    order = np.random.default_rng(seed).permutation(eligible)
    val, test, candidates = order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]
    n_labeled = _budget(len(candidates), label_ratio, label_count)
    labeled = candidates[:n_labeled]  # a prefix: nested across budgets
    unlabeled = np.concatenate([candidates[n_labeled:], np.flatnonzero(~has_mask)])
    parts = [np.sort(p).astype(np.int64) for p in (labeled, unlabeled, val, test)]
    _check_partition(parts, len(keys))
    labeled_idx, unlabeled_idx, val_idx, test_idx = parts
    return Split(labeled=labeled_idx, unlabeled=unlabeled_idx, val=val_idx, test=test_idx, split_hash=split_hash(parts, keys))


def _mask(keys: list[str], labeled_mask: np.ndarray | None) -> np.ndarray:
    if not keys:
        raise DataError("split: the pool is empty")
    duplicates = [key for key, count in Counter(keys).items() if count > 1]
    if duplicates:
        raise DataError(f"split: pool keys must be unique; {duplicates[0]!r} appears more than once")
    if labeled_mask is None:
        return np.ones(len(keys), bool)
    mask = np.asarray(labeled_mask, bool)
    if mask.shape != (len(keys),):
        raise DataError(f"split: labeled_mask has shape {mask.shape}, expected ({len(keys)},)")
    return mask


def _budget(candidates: int, label_ratio: float | None, label_count: int | None) -> int:
    """How many labelled training items: ``label_count`` wins over ``label_ratio`` (as in DataConfig)."""
    if label_count is not None:
        if not 1 <= label_count <= candidates:
            raise DataError(f"split: label_count={label_count} must be in [1, {candidates}] (labelled images available for training)")
        return int(label_count)
    if label_ratio is None:
        raise DataError("split: give label_ratio or label_count")
    if not 0.0 < label_ratio <= 1.0:
        raise DataError(f"split: label_ratio must be in (0, 1], got {label_ratio}")
    # Round half up (not Python's banker's rounding) so budgets are predictable. A ratio that rounds to no
    # labelled image is an error, not a silent 1: a budget curve must show the budget it ran.
    n_labeled = min(candidates, math.floor(label_ratio * candidates + 0.5))
    if n_labeled < 1:
        raise DataError(f"split: label_ratio={label_ratio} of {candidates} training images rounds to 0 labelled images; "
                        "raise it or give label_count")  # fmt: skip
    return n_labeled


def _check_partition(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    # These are invariants of the construction, not user errors: fail loudly if they ever break.
    assert len(joined) == len(np.unique(joined)), "split sets overlap"
    assert len(joined) == n, "split sets do not cover the pool"


def split_hash(parts: Sequence[np.ndarray], keys: Sequence[str]) -> str:
    """sha256 (first 12 hex) over the sorted index arrays (labelled, unlabelled, val, test) and the keys."""
    digest = hashlib.sha256()
    for part in parts:
        # Length first, so that moving an index between adjacent sets always changes the hash.
        digest.update(np.int64(len(part)).astype("<i8").tobytes())
        digest.update(np.sort(np.asarray(part, np.int64)).astype("<i8").tobytes())
    digest.update("\n".join(keys).encode())
    return digest.hexdigest()[:12]
