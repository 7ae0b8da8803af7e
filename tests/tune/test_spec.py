"""Sweep specs: every distribution, and clear errors for bad specs (pure, no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hdc_ray.tune.spec import SpecError, is_spec_file, load_spec, shipped_spec_names, trial_params

SHIPPED = ["smoke", "loss_weights", "noise_levels", "label_budget", "ablation", "study"]


def _write(tmp_path: Path, body: dict) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def _base(**extra: object) -> dict:  # type: ignore[type-arg]
    return {"name": "t", "base": "tiny", "space": {"loss.w_cg": {"uniform": [0.0, 1.0]}}, **extra}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_specs_validate(name: str) -> None:
    assert name in shipped_spec_names()
    spec = load_spec(name)
    assert spec.n_trials() >= 1 and "is valid" in spec.describe()


def test_every_distribution_parses(tmp_path: Path) -> None:
    space = {
        "loss.w_pc": {"uniform": [0.1, 2.0]},
        "train.lr": {"loguniform": [1e-4, 1e-2]},
        "model.depth": {"int": [2, 3]},
        "loss.mi_kind": {"choice": ["renyi", "iic"]},
        "train.epochs": {"fixed": 1},
    }
    spec = load_spec(_write(tmp_path, _base(space=space)))
    kinds = {k: d.kind for k, d in spec.space.items()}
    assert kinds == {"loss.w_pc": "uniform", "train.lr": "loguniform", "model.depth": "int", "loss.mi_kind": "choice", "train.epochs": "fixed"}
    assert spec.space["model.depth"].args == (2, 3)


def test_translation_to_tune_domains(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from ray.tune.search.sample import Categorical, Float, Integer

    from hdc_ray.tune.search import build_param_space

    space = {"loss.w_pc": {"uniform": [0.1, 2.0]}, "model.depth": {"int": [2, 3]}, "loss.mi_kind": {"choice": ["renyi", "iic"]}, "train.epochs": {"fixed": 1}}
    params = build_param_space(load_spec(_write(tmp_path, _base(space=space))))
    assert isinstance(params["loss.w_pc"], Float) and (params["loss.w_pc"].lower, params["loss.w_pc"].upper) == (0.1, 2.0)
    assert isinstance(params["model.depth"], Integer) and (params["model.depth"].lower, params["model.depth"].upper) == (2, 4)  # inclusive -> Tune's exclusive
    assert isinstance(params["loss.mi_kind"], Categorical) and params["train.epochs"] == 1 and params["train.seed"] == 0


def test_grid_spec_crosses_variants_and_seeds() -> None:
    pytest.importorskip("ray")
    from hdc_ray.tune.search import build_param_space

    spec = load_spec("ablation")
    params = build_param_space(spec)
    assert set(params["variant"]["grid_search"]) == set(spec.variants)
    assert params["train.seed"]["grid_search"] == [0, 1, 2, 3, 4, 5]  # six splits: no conclusion on fewer
    assert spec.n_trials() == len(spec.variants) * 6
    assert spec.trial_config({"variant": "no_cg", "train.seed": 1}).loss.w_cg == 0.0
    assert spec.trial_config({"variant": "single_decoder"}).model.noisy_decoder == "none"
    assert spec.trial_config({"variant": "no_ema"}).train.ema_decay == 0.0
    cfg = spec.trial_config({"variant": "supervised"})
    assert cfg.train.method == "supervised" and cfg.train.epochs * cfg.train.iters_per_epoch == 800


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_base(space={"loss.w_cgg": {"uniform": [0, 1]}}), r"did you mean 'w_cg'"),
        (_base(space={"loss.w_cg": {"uniform": [1.0, 0.1]}}), r"low 1.0 > high 0.1"),
        (_base(space={"loss.w_cg": {"choice": []}}), "non-empty list"),
        (_base(space={"loss.w_cg": {"normal": [0, 1]}}), "unknown distribution"),
        (_base(space={"train.lr": {"loguniform": [0.0, 1.0]}}), "low > 0"),
        (_base(space={"model.depth": {"int": [2.5, 3]}}), "integers"),
        (_base(space={"data.label_ratio": {"uniform": [0.0, 1.0]}}), r"label_ratio = 0.0"),
        (_base(spaec={}), r"did you mean 'space'"),
        (_base(objectives=[{"metric": "val_dice_fg", "mode": "max"}, {"metric": "label_ratio", "mode": "min"}], search={"sampler": "nsga2", "metric": "val_dice_fg"}), "objectives"),
        (_base(objectives=[{"metric": "test_dice_fg", "mode": "max"}]), "never test_"),
        (_base(objectives=[{"metric": "val_dice_fg", "mode": "up"}]), "max or min"),
        (_base(search={"sampler": "cmaes"}), "is not one of"),
        (_base(variants={"a": {}}), "need search.sampler: grid"),
        (_base(scheduler={"type": "hyperband"}), "ASHA does not"),
        (_base(resources={"driver_cpus": 0}), "driver_cpus"),
        (_base(objectives=[{"metric": "val_dice_fg", "mode": "max"}, {"metric": "label_ratio", "mode": "min"}], seeds=[0, 1]), "one seed"),
        (_base(seeds=[0, 1, 2], scheduler={"type": "asha", "grace_period": 2}), r"ASHA would stop one split's trial"),
        ({"name": "t", "base": "tiny", "search": {"sampler": "grid"}, "variants": {"x": {"loss.w_pcc": 0}}}, "did you mean 'w_pc'"),
    ],
)
def test_bad_specs_give_clear_errors(tmp_path: Path, body: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SpecError, match=message):
        load_spec(_write(tmp_path, body))


def test_unknown_spec_name_suggests() -> None:
    with pytest.raises(SpecError, match=r"did you mean 'smoke'"):
        load_spec("smok")


def test_spec_and_config_files_are_told_apart() -> None:
    assert is_spec_file("smoke") and not is_spec_file("tiny")


def test_a_config_value_set_on_a_spec_points_to_overrides() -> None:
    # `hdc-ray sweep loss_weights --set train.epochs=8` is what a user types first
    with pytest.raises(SpecError, match=r"unknown key 'train'.*--set overrides\.train\.<field>"):
        load_spec("smoke", ["train.epochs=8"])
    with pytest.raises(SpecError, match=r"--set overrides\.noise\.<field>"):
        load_spec("smoke", ["noise.feature_noise=0.1"])
    assert load_spec("smoke", ["overrides.train.epochs=8"]).overrides["train.epochs"] == 8


def test_cli_overrides_reach_the_spec() -> None:
    spec = load_spec("smoke", ["search.trials=1"])
    assert spec.trials == 1 and spec.n_trials() == 1


def test_trial_params_drop_tune_bookkeeping_and_pick_the_seed_by_trial_index() -> None:
    spec = load_spec("smoke", ["seeds=[3, 4]"])
    assert trial_params(spec, {"loss.w_cg": 0.1, "__trial_index__": 1}) == {"loss.w_cg": 0.1, "train.seed": 4}


def test_grid_exclude_leaves_cells_out_and_the_param_space_carries_the_rest() -> None:
    from ray import tune

    from hdc_ray.tune.search import build_param_space

    spec = load_spec("study")
    cells = spec.grid_cells()
    assert {"variant": "hdc", "data.label_count": None} not in cells
    assert {"variant": "supervised", "data.label_count": None} in cells and {"variant": "hdc", "data.label_count": 4} in cells
    assert {"variant": "hdc", "data.label_count": 16} not in cells  # the demo leaves HDC@16 out for time
    assert len(cells) == 2 * 4 - 2 and spec.n_trials() == len(cells) * len(spec.seeds)
    space = build_param_space(spec)
    assert space["cell"] == tune.grid_search(cells) and "data.label_count" not in space
    params = trial_params(spec, {"cell": {"variant": "hdc", "data.label_count": 8}, "train.seed": 1})
    assert params == {"variant": "hdc", "data.label_count": 8, "train.seed": 1}
    cfg = spec.trial_config(params)
    assert cfg.train.method == "hdc" and cfg.data.label_count == 8 and cfg.train.seed == 1
    reference = spec.trial_config(trial_params(spec, {"cell": {"variant": "supervised", "data.label_count": None}, "train.seed": 0}))
    assert reference.data.label_count is None and reference.data.label_ratio == 1.0


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"variant": "nope"}, r"exclude\[0\]\.variant: 'nope' is not one of the grid values"),
        ({"train.lr": 0.1}, r"exclude\[0\]\.train\.lr: not a grid axis"),
        ({"data.label_count": 4}, None),  # fine: drops a whole column
    ],
)
def test_bad_exclude_rules_are_named(rule: dict, message: str | None) -> None:  # type: ignore[type-arg]
    overrides = [f"exclude=[{_flow(rule)}]"]
    if message is None:
        assert load_spec("study", overrides).n_trials() == (2 * 4 - 2) * 3  # the list replaces the shipped rules (3 seeds)
    else:
        with pytest.raises(SpecError, match=message):
            load_spec("study", overrides)


def test_excluding_everything_or_outside_a_grid_is_refused() -> None:
    with pytest.raises(SpecError, match="every grid cell is excluded"):
        load_spec("study", ["exclude=[{data.label_count: 4}, {data.label_count: 8}, {data.label_count: 16}, {data.label_count: null}]"])
    with pytest.raises(SpecError, match=r"needs search\.sampler: grid"):
        load_spec("smoke", ["exclude=[{variant: hdc}]"])


def test_dotted_overrides_from_the_command_line() -> None:
    spec = load_spec("study", ["overrides.train.epochs=3", "overrides.data.n_val=7"])
    assert spec.overrides["train.epochs"] == 3 and spec.base_config().data.n_val == 7


def _flow(rule: dict) -> str:  # type: ignore[type-arg]
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in rule.items()) + "}"
