"""Config loading: strict keys, typed values, YAML-1.1 numbers, overrides, flattening."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hdc_ray.config import (
    Config,
    ConfigError,
    config_from_dict,
    dump_yaml,
    flatten,
    load_config,
    packaged_config_names,
    with_overrides,
)


def test_packaged_configs_are_addressable_by_name() -> None:
    assert {"tiny", "synthetic", "fugc", "psfh"} <= set(packaged_config_names())
    assert load_config("tiny").name == "tiny"
    assert load_config("synthetic").data.source == "synthetic"


@pytest.mark.parametrize("name", ["fugc", "psfh"])
def test_real_dataset_configs_need_only_the_data_path(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"needs data\.root"):
        load_config(name)
    cfg = load_config(name, [f"data.root={tmp_path}"])
    assert cfg.data.root == str(tmp_path) and cfg.data.source == name


def test_unknown_key_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'train\.epochz'.*did you mean 'epochs'"):
        load_config("tiny", ["train.epochz=3"])
    with pytest.raises(ConfigError, match=r"unknown key 'trian'.*did you mean 'train'"):
        config_from_dict({"trian": {}})


def test_yaml_11_exponent_strings_become_floats(tmp_path: Path) -> None:
    # PyYAML reads `lr: 1e-4` as the STRING "1e-4"; the config parses it as the field's float.
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-4\n  ema_decay: 0.99\n")
    cfg = load_config(path)
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=two", "expected an integer"),
        ("train.method=flexmatch", "is not one of"),
        ("data.label_ratio=0", r"must be in \(0, 1\]"),
        ("data.label_ratio=1.5", r"must be in \(0, 1\]"),
        ("noise.strong_geometric=yes please", "expected true/false"),
        ("loss.cg_levels=[enc9]", "unknown feature level"),
        ("dist.workers=3", "must divide"),
        ("train.select_metric=test_dice_fg", "validation metric"),
        ("data.image_size=50", "multiple of 16"),
        ("eval.empty_penalty=huge", "diagonal"),
        ("loss.sup_dice=-1", r"loss\.sup_dice: must be >= 0"),
        ("loss.threshold_kind=freematch", "is not one of"),
        ("loss.threshold_momentum=1", r"loss\.threshold_momentum: must be in \[0, 1\)"),
        ("loss.cg_form=sqrt", "is not one of"),
    ],
)
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", [override])


def test_override_syntax_errors() -> None:
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        load_config("tiny", ["train.epochs"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config("tiny", ["name.x=1"])


def test_unknown_config_name_lists_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown config 'tinyy'.*did you mean 'tiny'"):
        load_config("tinyy")


def test_configs_are_frozen() -> None:
    cfg = load_config("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 1.0  # type: ignore[misc]


def test_flatten_roundtrip_and_overrides() -> None:
    cfg = load_config("tiny")
    flat = flatten(cfg)
    assert flat["train.method"] == "hdc"
    assert flat["loss.cg_levels"] == "bottleneck,dec_last"
    assert all(not isinstance(v, (dict, list, tuple)) for v in flat.values())
    changed = with_overrides(cfg, {"loss.w_cg": 0.0, "loss.cg_levels": ("enc2",)})
    assert changed.loss.w_cg == 0.0 and changed.loss.cg_levels == ("enc2",)
    assert cfg.loss.w_cg != 0.0  # the original is untouched


def test_dump_yaml_reloads_to_the_same_config(tmp_path: Path) -> None:
    cfg = load_config("synthetic", ["train.lr=5e-4", "loss.mi_kind=iic"])
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_config(path) == cfg


def test_defaults_are_a_valid_config() -> None:
    assert isinstance(config_from_dict({}), Config)


# ------------------------------------------------------------------------------ label budgets and splits


def test_split_seed_follows_train_seed_unless_pinned() -> None:
    cfg = load_config("tiny", ["train.seed=3"])
    assert cfg.data.split_seed is None and cfg.data.effective_split_seed == 3
    # A sweep changes train.seed through with_overrides: the split follows (null survives to_dict).
    assert with_overrides(cfg, {"train.seed": 5}).data.effective_split_seed == 5
    assert flatten(cfg)["data.split_seed"] is None
    pinned = load_config("tiny", ["train.seed=3", "data.split_seed=1"])
    assert pinned.data.effective_split_seed == 1 and with_overrides(pinned, {"train.seed": 5}).data.effective_split_seed == 1
    # Sections may be shared between configs: binding the run seed never leaks into another config.
    other = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=7))
    assert other.data.effective_split_seed == 7 and cfg.data.effective_split_seed == 3
    import pickle

    assert pickle.loads(pickle.dumps(other)).data.effective_split_seed == 7  # Ray ships configs to workers


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.label_count=25"], r"data\.label_count: 25 labelled images asked for, but the training pool has only data\.n_train=24"),
        (["data.label_count=0"], r"data\.label_count: must be >= 1"),
        (["data.label_ratio=0.01"], r"data\.label_ratio: 0\.01 of data\.n_train=24 rounds to 0 labelled images"),
        (["data.split_seed=-1"], r"data\.split_seed: must be >= 0 or null"),
    ],
)
def test_impossible_label_budgets_are_config_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", overrides)


def test_a_count_budget_ignores_the_ratio() -> None:
    cfg = load_config("tiny", ["data.label_count=4", "data.label_ratio=0.01"])  # a count wins: no rounding error
    assert cfg.data.label_count == 4


def test_old_generator_presets_stay_reachable() -> None:
    assert load_config("tiny", ["data.difficulty=v1_hard"]).data.difficulty == "v1_hard"
    with pytest.raises(ConfigError, match="is not one of"):
        load_config("tiny", ["data.difficulty=brutal"])


def test_a_label_ratio_override_is_not_silently_ignored_under_the_files_label_count() -> None:
    from hdc_ray.config import load_config, with_overrides

    base = load_config("synthetic")
    assert base.data.label_count == 8  # the benchmark's default budget is a count
    assert load_config("synthetic", ["data.label_ratio=1.0"]).data.label_count is None
    both = load_config("synthetic", ["data.label_ratio=0.5", "data.label_count=4"])
    assert (both.data.label_count, both.data.label_ratio) == (4, 0.5)
    assert with_overrides(base, {"data.label_ratio": 1.0}).data.label_count is None
    assert with_overrides(base, {"data.label_ratio": 1.0, "data.label_count": 16}).data.label_count == 16
    assert with_overrides(base, {"train.seed": 3}).data.label_count == 8
