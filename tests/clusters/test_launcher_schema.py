"""clusters/aws-gpu.yaml and clusters/gcp-gpu.yaml: valid for the pinned Ray's cluster launcher, and shaped
the way the sweep needs (CPU head holding the driver resource, GPU workers from zero, pinned installs).

Offline: the JSON schema is the one inside the installed Ray wheel (``ray/autoscaler/ray-schema.json``), and
``prepare_config``/``validate_config`` are what ``ray up`` runs on a config before it calls any cloud API.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cluster_files import GPU_IMAGE, HEAD_IMAGE, PACKAGE_PIP_SPEC, RAY_VERSION, TORCH_VERSION, launcher_configs, ray_schema

CONFIGS = launcher_configs()
IDS = [p.name for p in CONFIGS]


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def test_both_launcher_configs_are_shipped() -> None:
    assert {p.name for p in CONFIGS} == {"aws-gpu.yaml", "gcp-gpu.yaml"}


def test_schema_comes_from_the_installed_wheel() -> None:
    import ray

    assert ray.__version__ == RAY_VERSION, "the configs are pinned to Ray 2.60.0; validate with that wheel"
    schema = ray_schema()
    assert schema["required"] == ["cluster_name", "provider"]


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_validates_against_ray_schema(path: Path) -> None:
    validator = jsonschema.Draft7Validator(ray_schema())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_load(path))]
    assert not errors, "\n".join(errors)


def test_schema_check_catches_a_typo() -> None:
    """The schema is strict (additionalProperties: false), so a misspelt key would not slip through."""
    config = _load(CONFIGS[0])
    config["available_node_types"]["head_cpu"]["min_worker"] = 0
    assert not jsonschema.Draft7Validator(ray_schema()).is_valid(config)


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_ray_up_offline_preparation_accepts_it(path: Path) -> None:
    """What `ray up` does before touching the cloud: merge the provider defaults, then validate again."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(_load(path)))
    validate_config(prepared)
    jsonschema.Draft7Validator(ray_schema()).validate(prepared)


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_cpu_head_holds_the_driver_resource(path: Path) -> None:
    config = _load(path)
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("driver_slots", 0) >= 1, "the head must advertise driver_slots for the trial drivers"
    assert head["resources"].get("GPU", 0) == 0, "the head is CPU-only"
    assert head["resources"].get("CPU", 0) >= 2
    others = {name: t for name, t in types.items() if name != config["head_node_type"]}
    assert all("driver_slots" not in t["resources"] for t in others.values()), "only the head may hold driver_slots"


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_gpu_workers_autoscale_from_zero(path: Path) -> None:
    config = _load(path)
    workers = {n: t for n, t in config["available_node_types"].items() if n != config["head_node_type"]}
    assert workers
    for name, node_type in workers.items():
        assert node_type["resources"].get("GPU", 0) >= 1, f"{name}: worker types are GPU nodes"
        assert node_type["min_workers"] == 0, f"{name}: GPU nodes start at zero"
        assert 1 <= node_type["max_workers"] <= config["max_workers"], name
    assert config["idle_timeout_minutes"] > 0


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_images_match_the_pinned_ray(path: Path) -> None:
    docker = _load(path)["docker"]
    assert docker["head_image"] == HEAD_IMAGE
    assert docker["worker_image"] == GPU_IMAGE
    assert docker["image"] == GPU_IMAGE


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_installs_are_pinned(path: Path) -> None:
    config = _load(path)
    head = " ".join(config["setup_commands"] + config["head_setup_commands"])
    workers = " ".join(config["setup_commands"] + config["worker_setup_commands"])
    for where, text, index in (("head", head, "whl/cpu"), ("workers", workers, "whl/cu128")):
        assert f'"ray[default,tune,train]=={RAY_VERSION}"' in text, where
        assert f'"torch=={TORCH_VERSION}" --index-url https://download.pytorch.org/{index}' in text, where
        assert f'"{PACKAGE_PIP_SPEC}"' in text, where
        # torch before the package, or pip would resolve the package's torch from PyPI first
        assert text.index("torch==") < text.index(PACKAGE_PIP_SPEC), where
    assert not any("pip install" in c for c in config["setup_commands"]), "per-node-kind installs only (torch index differs)"


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_start_commands(path: Path) -> None:
    config = _load(path)
    head = " ".join(config["head_start_ray_commands"])
    assert "ray start --head" in head
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert re.search(r"--dashboard-host[= ]127\.0\.0\.1\b", head)
    worker = " ".join(config["worker_start_ray_commands"])
    assert "--address=$RAY_HEAD_IP:6379" in worker


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_workers_can_write_to_the_bucket(path: Path) -> None:
    """Train workers upload checkpoints to storage_path themselves: GPU nodes need bucket credentials."""
    config = _load(path)
    for name, node_type in config["available_node_types"].items():
        if name == config["head_node_type"]:
            continue
        node_config = node_type["node_config"]
        if config["provider"]["type"] == "aws":
            assert "IamInstanceProfile" in node_config, name
        else:
            scopes = [s for acct in node_config["serviceAccounts"] for s in acct["scopes"]]
            assert "https://www.googleapis.com/auth/cloud-platform" in scopes, name


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_specs_are_mounted_for_runs_on_the_head(path: Path) -> None:
    mounts = _load(path)["file_mounts"]
    assert mounts.get("/home/ray/hdc-ray/search_spaces") == "./search_spaces"
