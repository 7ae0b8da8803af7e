"""clusters/kuberay/*.yaml: valid ray.io/v1 objects for the published KubeRay CRDs, pinned images, resources.

The CRD copies live in ``../shared/kuberay-crds/`` next to the repository (CI provides them); without them the
schema tests skip. The schema is the CRD's ``spec.versions[name=v1].schema.openAPIV3Schema``, made strict the
way ``kubectl apply --validate=strict`` is: an unknown field is an error wherever the schema lists the known
ones (Kubernetes itself would silently drop it). The operator's own admission rules that matter here
(names, replicas, resource declarations, TTL) are checked by hand below.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cluster_files import GPU_IMAGE, HEAD_IMAGE, KUBERAY_CRDS, PACKAGE_PIP_SPEC, RAY_VERSION, TORCH_VERSION, kuberay_manifests, load_docs

MANIFESTS = kuberay_manifests()
IDS = [p.name for p in MANIFESTS]
CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml"}
MAX_NAME = 47  # KubeRay caps RayJob names at 47 characters (RayCluster at 63); keep both short


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _crd_schema(kind: str) -> dict[str, Any]:
    path = KUBERAY_CRDS / CRD_FILES[kind]
    if not path.is_file():
        pytest.skip(f"KubeRay CRD schemas not found at {KUBERAY_CRDS} (CI copies ray-project/kuberay ray-operator/config/crd/bases there)")
    return _load_crd_schema(path, kind)


@functools.cache
def _load_crd_schema(path: Path, kind: str) -> dict[str, Any]:
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 1-2 MB: the C loader if built
    assert crd["spec"]["group"] == "ray.io" and crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return _strict(version["schema"]["openAPIV3Schema"])


def _objects() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, doc) for p in MANIFESTS for doc in load_docs(p)]


def _cluster_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"] if obj["kind"] == "RayCluster" else obj["spec"]["rayClusterSpec"]


def _groups(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    spec = _cluster_spec(obj)
    return [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]


def _containers(group: dict[str, Any]) -> list[dict[str, Any]]:
    pod = group["template"]["spec"]
    return list(pod.get("initContainers", [])) + list(pod["containers"])


def test_both_manifests_are_shipped() -> None:
    kinds = sorted((p.name, d["kind"]) for p, d in _objects())
    assert kinds == [("raycluster.yaml", "RayCluster"), ("rayjob-sweep.yaml", "RayJob")]
    assert all(d["apiVersion"] == "ray.io/v1" for _, d in _objects())


@pytest.mark.parametrize("path", MANIFESTS, ids=IDS)
def test_validates_against_kuberay_crd(path: Path) -> None:
    for obj in load_docs(path):
        validator = jsonschema.Draft7Validator(_crd_schema(obj["kind"]))
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
        assert not errors, "\n".join(errors)


def test_strict_schema_catches_a_typo() -> None:
    path, obj = _objects()[0]
    bad = copy.deepcopy(obj)
    _cluster_spec(bad)["headGroupSpec"]["template"]["spec"]["containers"][0]["resource"] = {}
    assert not jsonschema.Draft7Validator(_crd_schema(obj["kind"])).is_valid(bad), path


@pytest.mark.parametrize("path", MANIFESTS, ids=IDS)
def test_images_match_the_pinned_ray(path: Path) -> None:
    for obj in load_docs(path):
        spec = _cluster_spec(obj)
        assert spec["rayVersion"] == RAY_VERSION
        assert "image" not in spec.get("autoscalerOptions", {}), "the autoscaler sidecar must use the head's Ray image"
        for name, group in _groups(obj):
            for container in _containers(group):
                assert re.fullmatch(rf"rayproject/ray:{re.escape(RAY_VERSION)}-\S+", container["image"]), container["image"]
                expected = HEAD_IMAGE if name == "head" else GPU_IMAGE
                assert container["image"] == expected, f"{path.name} {name}: CPU head, GPU workers"


def _quantity(value: Any) -> str:
    return str(value)


@pytest.mark.parametrize("path", MANIFESTS, ids=IDS)
def test_requests_and_limits_everywhere_gpu_limits_on_gpu_groups(path: Path) -> None:
    for obj in load_docs(path):
        assert [n for n, _ in _groups(obj)][1:], "at least one worker group"
        for name, group in _groups(obj):
            container = group["template"]["spec"]["containers"][0]
            res = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(kind, {})), f"{path.name} {name}: {kind} for cpu and memory"
            gpu_limit = res["limits"].get("nvidia.com/gpu")
            if name == "head":
                assert gpu_limit is None, "the head is CPU-only"
                continue
            assert gpu_limit is not None and int(_quantity(gpu_limit)) >= 1, f"{path.name} {name}: GPU groups need an nvidia.com/gpu limit"
            # extended resources: a request, if given, must equal the limit
            assert _quantity(res["requests"].get("nvidia.com/gpu", gpu_limit)) == _quantity(gpu_limit)
            assert any(t.get("key") == "nvidia.com/gpu" for t in group["template"]["spec"].get("tolerations", [])), (
                f"{name}: tolerate the GPU taint"
            )


def _ray_start_resources(group: dict[str, Any]) -> dict[str, Any]:
    raw = group.get("rayStartParams", {}).get("resources")
    if raw is None:
        return {}
    return json.loads(json.loads(raw) if raw.startswith('"') else raw)  # KubeRay's '"{\"X\": 1}"' form


@pytest.mark.parametrize("path", MANIFESTS, ids=IDS)
def test_head_holds_the_driver_resource(path: Path) -> None:
    for obj in load_docs(path):
        groups = dict(_groups(obj))
        assert _ray_start_resources(groups.pop("head")).get("driver_slots", 0) >= 1
        assert all("driver_slots" not in _ray_start_resources(g) for g in groups.values())


@pytest.mark.parametrize("path", MANIFESTS, ids=IDS)
def test_operator_admission_rules(path: Path) -> None:
    """The KubeRay webhook/controller checks that a schema cannot express (ValidateRayClusterSpec/RayJobSpec)."""
    for obj in load_docs(path):
        name = obj["metadata"]["name"]
        assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= MAX_NAME, f"{name}: DNS-1035 label, short"
        spec = _cluster_spec(obj)
        assert spec.get("enableInTreeAutoscaling") is True, "GPU groups scale from zero through the autoscaler"
        for group_name, group in _groups(obj):
            if group_name != "head":
                assert 0 <= group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"], group_name
                assert group["minReplicas"] == 0, f"{group_name}: GPU pods start at zero"
            params = group.get("rayStartParams", {})
            declares = any(k in params for k in ("num-cpus", "num-gpus", "memory", "resources"))
            assert not (declares and group.get("resources")), f"{group_name}: resources in rayStartParams and in .resources"
            assert "labels" not in params
        if obj["kind"] == "RayJob":
            job = obj["spec"]
            assert job["shutdownAfterJobFinishes"] is True, "a one-shot sweep tears its cluster down"
            assert job.get("ttlSecondsAfterFinished", 0) >= 0
            assert job.get("activeDeadlineSeconds", 1) > 0 and job.get("backoffLimit", 0) >= 0
            assert "clusterSelector" not in job


def test_rayjob_runs_a_sweep_into_object_storage() -> None:
    (job,) = [d for _, d in _objects() if d["kind"] == "RayJob"]
    entrypoint = job["spec"]["entrypoint"]
    assert entrypoint.startswith("hdc-ray sweep ")
    assert re.search(r"--results (s3|gs)://\S+", entrypoint), "results must outlive the cluster: a bucket URI"
    assert "--address auto" in entrypoint


def test_rayjob_runtime_env_is_valid_for_ray() -> None:
    """runtimeEnvYAML parses (KubeRay's check) and passes Ray's own runtime_env validation (offline)."""
    from ray.runtime_env import RuntimeEnv

    (job,) = [d for _, d in _objects() if d["kind"] == "RayJob"]
    runtime_env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    RuntimeEnv(**runtime_env)
    packages = runtime_env["pip"]["packages"]
    assert f"torch=={TORCH_VERSION}" in packages and f"ray[default,tune,train]=={RAY_VERSION}" in packages
    assert PACKAGE_PIP_SPEC in packages
    assert "https://download.pytorch.org/whl/cu128" in runtime_env["pip"]["pip_install_options"]
    assert runtime_env["working_dir"].startswith("https://github.com/YOUR_ORG/hdc-ray/archive/")


def test_raycluster_installs_pinned_packages_before_ray_start() -> None:
    (cluster,) = [d for _, d in _objects() if d["kind"] == "RayCluster"]
    assert cluster["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    for name, group in _groups(cluster):
        container = group["template"]["spec"]["containers"][0]
        script = " ".join(container["args"])
        index = "whl/cpu" if name == "head" else "whl/cu128"
        assert f'"torch=={TORCH_VERSION}" --index-url https://download.pytorch.org/{index}' in script, name
        assert f'"{PACKAGE_PIP_SPEC}"' in script and f'"ray[default,tune,train]=={RAY_VERSION}"' in script, name
        assert script.rstrip().endswith("&& $KUBERAY_GEN_RAY_START_CMD"), f"{name}: Ray starts only after the installs succeed"
        assert script.startswith("ulimit -n 65536;"), name
    assert cluster["spec"]["authOptions"] == {"mode": "token", "secretName": "hdc-ray-auth-token"}
