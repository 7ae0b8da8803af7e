from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from hdc_ray.config import DataConfig
from hdc_ray.data import CLASS_NAMES, DataBundle, DataError, build_data, default_cache_dir


def _synthetic(tmp_path: Path, **overrides) -> DataConfig:
    fields = {"image_size": 32, "n_train": 20, "n_val": 4, "n_test": 6, "label_ratio": 0.2, "cache_dir": str(tmp_path / "cache")}
    return DataConfig(**{**fields, **overrides})


def _parts(bundle: DataBundle):
    return {"labeled": bundle.labeled, "unlabeled": bundle.unlabeled, "val": bundle.val, "test": bundle.test}


def _assert_disjoint_and_label_free(bundle: DataBundle) -> None:
    keys = [set(part.keys) for part in _parts(bundle).values()]
    assert sum(len(k) for k in keys) == len(set().union(*keys))
    assert bundle.unlabeled.masks is None and bundle.unlabeled.native_masks is None
    for name in ("labeled", "val", "test"):
        part = _parts(bundle)[name]
        assert part.masks is not None and part.masks.shape == part.images.shape and part.masks.dtype == np.uint8
        assert len(part.native_masks) == len(part)


def test_synthetic_bundle_shapes_and_sets(tmp_path: Path) -> None:
    bundle = build_data(_synthetic(tmp_path))
    _assert_disjoint_and_label_free(bundle)
    assert [len(p) for p in _parts(bundle).values()] == [4, 16, 4, 6]
    assert bundle.labeled.images.shape == (4, 32, 32) and bundle.labeled.images.dtype == np.float32
    assert bundle.class_names == CLASS_NAMES["cervix"] and bundle.task == "cervix"
    assert bundle.label_ratio == pytest.approx(0.2) and bundle.val.spacing == [None] * 4
    assert list((tmp_path / "cache").glob("*.npz"))  # generated once, cached
    assert pickle.loads(pickle.dumps(bundle)).split_hash == bundle.split_hash  # Ray ships it to workers


def test_synthetic_bundle_is_deterministic(tmp_path: Path) -> None:
    a = build_data(_synthetic(tmp_path))
    b = build_data(_synthetic(tmp_path, cache_dir=str(tmp_path / "other-cache")))  # regenerated, not loaded
    assert a.split_hash == b.split_hash
    for name, part in _parts(a).items():
        assert part.keys == _parts(b)[name].keys
        np.testing.assert_array_equal(part.images, _parts(b)[name].images)
    assert build_data(_synthetic(tmp_path, split_seed=1)).split_hash != a.split_hash


def test_labelled_sets_nest_across_ratios(tmp_path: Path) -> None:
    small, large = (build_data(_synthetic(tmp_path, label_ratio=r)) for r in (0.1, 0.5))
    assert set(small.labeled.keys) < set(large.labeled.keys)
    assert small.val.keys == large.val.keys and small.test.keys == large.test.keys


def test_synthetic_pool_is_a_prefix_of_a_larger_pool(tmp_path: Path) -> None:
    """Sample i is the same image whatever the pool size: growing n_train adds images, changes none."""
    images = {}
    for n_train in (20, 40):
        bundle = build_data(_synthetic(tmp_path, n_train=n_train))
        for part in _parts(bundle).values():
            images[n_train] = {**images.get(n_train, {}), **dict(zip(part.keys, part.images, strict=True))}
    common = set(images[20]) & set(images[40])
    assert len(common) == 30
    for key in common:
        np.testing.assert_array_equal(images[20][key], images[40][key])


def test_default_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HDC_RAY_CACHE", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache" / "synthetic"
    build_data(_synthetic(tmp_path, cache_dir=None, n_train=2, n_val=1, n_test=1, task="psfh", label_count=1))
    assert len(list((tmp_path / "env-cache" / "synthetic").glob("psfh_*.npz"))) == 1


def test_fugc_folder_through_build_data(tmp_path: Path, fx) -> None:
    root = fx.make_fugc(tmp_path / "fugc", n_labeled=6, n_unlabeled=4, h=24, w=40)
    cfg = DataConfig(source="fugc", root=str(root), image_size=32, n_val=1, n_test=2, label_ratio=1.0)
    bundle = build_data(cfg)
    _assert_disjoint_and_label_free(bundle)
    assert bundle.task == "cervix" and bundle.class_names == CLASS_NAMES["cervix"]
    assert all(k.startswith("fugc/labeled/") for k in bundle.labeled.keys + bundle.val.keys + bundle.test.keys)
    assert len(bundle.labeled) == 3 and len(bundle.unlabeled) == 4 and bundle.label_ratio == pytest.approx(3 / 7)
    assert bundle.val.images.shape == (1, 32, 32) and bundle.test.native_masks[0].shape == (24, 40)
    assert set(np.unique(bundle.labeled.masks)) <= {0, 1, 2}  # nearest resize makes no new labels
    fewer = build_data(DataConfig(source="fugc", root=str(root), image_size=32, n_val=1, n_test=2, label_count=1))
    assert set(fewer.labeled.keys) < set(bundle.labeled.keys) and len(fewer.unlabeled) == 6
    with pytest.raises(DataError, match="leaves no labelled training image"):
        build_data(DataConfig(source="fugc", root=str(root), image_size=32))  # default n_val=40, n_test=80


def test_psfh_folder_through_build_data(psfh_root: Path) -> None:
    cfg = DataConfig(source="psfh", root=str(psfh_root), image_size=16, n_val=1, n_test=1, label_ratio=0.5)
    bundle = build_data(cfg)
    _assert_disjoint_and_label_free(bundle)
    assert [len(p) for p in _parts(bundle).values()] == [2, 2, 1, 1]
    assert bundle.task == "psfh" and bundle.class_names == CLASS_NAMES["psfh"]
    assert bundle.test.spacing == [pytest.approx((0.3, 0.2))] and bundle.test.native_masks[0].shape == (20, 28)
    assert bundle.unlabeled.images.shape == (2, 16, 16) and bundle.unlabeled.images.min() >= 0.0


def _run_config(tmp_path: Path, *overrides: str):
    from hdc_ray.config import load_config

    return load_config("tiny", [f"data.cache_dir={tmp_path / 'cache'}", "data.n_train=40", *overrides])


def test_each_train_seed_is_another_labelled_split_unless_the_split_is_pinned(tmp_path: Path) -> None:
    """data.split_seed: null follows train.seed (seeds vary the split); an int pins one split for all seeds."""
    a, b = (build_data(_run_config(tmp_path, f"train.seed={s}", "data.label_count=4").data) for s in (0, 1))
    assert set(a.labeled.keys) != set(b.labeled.keys) and a.split_hash != b.split_hash
    pinned = [build_data(_run_config(tmp_path, f"train.seed={s}", "data.label_count=4", "data.split_seed=0").data) for s in (0, 1)]
    assert pinned[0].labeled.keys == pinned[1].labeled.keys == a.labeled.keys  # seed 0 follows to split seed 0
    assert pinned[0].split_hash == pinned[1].split_hash == a.split_hash


def test_label_counts_nest_within_one_split(tmp_path: Path) -> None:
    small, large = (build_data(_run_config(tmp_path, "train.seed=2", f"data.label_count={n}").data) for n in (4, 8))
    assert len(small.labeled) == 4 and len(large.labeled) == 8 and set(small.labeled.keys) < set(large.labeled.keys)
    assert small.val.keys == large.val.keys and small.test.keys == large.test.keys


def test_impossible_budgets_are_clear_errors(tmp_path: Path, fx) -> None:
    from hdc_ray.config import ConfigError

    with pytest.raises(ConfigError, match=r"data\.label_count: 41 labelled images asked for, but the training pool has only data\.n_train=40"):
        _run_config(tmp_path, "data.label_count=41")
    with pytest.raises(ConfigError, match=r"rounds to 0 labelled images"):
        _run_config(tmp_path, "data.label_ratio=0.01")
    # Real datasets: the pool is only known once the folder is read; the split says it as a DataError.
    root = fx.make_fugc(tmp_path / "fugc", n_labeled=6, n_unlabeled=4, h=24, w=40)
    with pytest.raises(DataError, match=r"label_count=50 must be in \[1, 4\]"):
        build_data(DataConfig(source="fugc", root=str(root), image_size=32, n_val=1, n_test=1, label_count=50))
