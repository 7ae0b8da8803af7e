from __future__ import annotations

import itertools

import numpy as np
import pytest

from hdc_ray.data import DataError, Split, make_split

KEYS = [f"pool/{i:04d}" for i in range(400)]


def _sets(split: Split) -> list[set[int]]:
    return [set(split.labeled.tolist()), set(split.unlabeled.tolist()), set(split.val.tolist()), set(split.test.tolist())]


def test_sets_partition_the_pool_with_the_requested_sizes() -> None:
    split = make_split(KEYS, n_val=40, n_test=80, label_ratio=0.1, seed=0)
    sizes = [len(s) for s in _sets(split)]
    assert sizes == [28, 252, 40, 80]  # round(0.1 * 280) labelled of the 280-image training pool
    assert set().union(*_sets(split)) == set(range(400)) and sum(sizes) == 400
    for part in (split.labeled, split.unlabeled, split.val, split.test):
        assert part.dtype == np.int64 and np.all(np.diff(part) > 0)
    assert split.label_ratio == pytest.approx(0.1) and len(split.split_hash) == 12


def test_deterministic_and_seed_dependent() -> None:
    a = make_split(KEYS, n_val=40, n_test=80, label_ratio=0.1, seed=3)
    b = make_split(KEYS, n_val=40, n_test=80, label_ratio=0.1, seed=3)
    c = make_split(KEYS, n_val=40, n_test=80, label_ratio=0.1, seed=4)
    assert _sets(a) == _sets(b) and a.split_hash == b.split_hash
    assert _sets(a) != _sets(c) and a.split_hash != c.split_hash


def test_labelled_sets_are_nested_across_budgets_and_val_test_stay_put() -> None:
    splits = [make_split(KEYS, n_val=40, n_test=80, label_ratio=r, seed=7) for r in (0.05, 0.1, 0.2, 0.5, 1.0)]
    splits.insert(1, make_split(KEYS, n_val=40, n_test=80, label_count=20, seed=7))
    for small, large in itertools.pairwise(splits):
        assert set(small.labeled.tolist()) <= set(large.labeled.tolist())
        np.testing.assert_array_equal(small.val, large.val)
        np.testing.assert_array_equal(small.test, large.test)
    assert [len(s.labeled) for s in splits] == [14, 20, 28, 56, 140, 280]
    assert len(splits[-1].unlabeled) == 0
    assert len({s.split_hash for s in splits}) == len(splits)


def test_budget_rounds_half_up_and_a_ratio_of_no_image_is_an_error() -> None:
    keys = KEYS[:12]  # training pool of 10
    assert len(make_split(keys, n_val=1, n_test=1, label_ratio=0.25, seed=0).labeled) == 3  # 2.5 -> 3
    with pytest.raises(DataError, match=r"label_ratio=0.01 of 10 training images rounds to 0 labelled images"):
        make_split(keys, n_val=1, n_test=1, label_ratio=0.01, seed=0)


def test_labeled_mask_restricts_val_test_and_label_candidates() -> None:
    # FUGC-like: 50 labelled images and 450 label-less ones.
    keys = [f"fugc/labeled/{i:04d}" for i in range(50)] + [f"fugc/unlabeled/{i:04d}" for i in range(450)]
    has_mask = np.arange(500) < 50
    split = make_split(keys, n_val=5, n_test=10, label_ratio=1.0, seed=0, labeled_mask=has_mask)
    assert all(has_mask[split.val]) and all(has_mask[split.test]) and all(has_mask[split.labeled])
    assert len(split.labeled) == 35 and set(range(50, 500)) <= set(split.unlabeled.tolist())
    half = make_split(keys, n_val=5, n_test=10, label_ratio=0.5, seed=0, labeled_mask=has_mask)
    assert len(half.labeled) == 18 and set(half.labeled.tolist()) <= set(split.labeled.tolist())
    assert half.label_ratio == pytest.approx(18 / 485)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"label_ratio": 0.0}, r"label_ratio must be in \(0, 1\], got 0.0"),
        ({"label_ratio": 1.5}, r"label_ratio must be in \(0, 1\], got 1.5"),
        ({"label_count": 281}, r"label_count=281 must be in \[1, 280\]"),
        ({"label_count": 0}, r"label_count=0 must be in \[1, 280\]"),
        ({}, "give label_ratio or label_count"),
        ({"label_ratio": 0.1, "n_val": 200, "n_test": 200}, "leaves no labelled training image"),
        ({"label_ratio": 0.1, "labeled_mask": np.ones(3, bool)}, r"labeled_mask has shape \(3,\)"),
    ],
)
def test_bad_requests_raise_clear_data_errors(kwargs: dict, pattern: str) -> None:
    arguments = {"n_val": 40, "n_test": 80, "seed": 0, **kwargs}
    with pytest.raises(DataError, match=pattern):
        make_split(KEYS, **arguments)


def test_duplicate_or_missing_keys_are_rejected() -> None:
    with pytest.raises(DataError, match="'pool/0001' appears more than once"):
        make_split([*KEYS, "pool/0001"], n_val=1, n_test=1, label_ratio=0.5, seed=0)
    with pytest.raises(DataError, match="pool is empty"):
        make_split([], n_val=1, n_test=1, label_ratio=0.5, seed=0)


def test_hash_depends_on_the_keys() -> None:
    a = make_split(KEYS, n_val=40, n_test=80, label_ratio=0.1, seed=0)
    b = make_split([k.replace("pool", "other") for k in KEYS], n_val=40, n_test=80, label_ratio=0.1, seed=0)
    assert _sets(a) == _sets(b) and a.split_hash != b.split_hash
