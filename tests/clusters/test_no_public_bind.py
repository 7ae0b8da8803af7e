"""No file in clusters/ exposes the dashboard, the job server or the Ray client port on a public address.

Ray has no authentication on these ports unless token mode is on, and the job server runs arbitrary code, so:

* Nowhere: an all-interfaces address (``0.0.0.0``, ``::``), in any flag, comment or doc (so nobody copies one).
* Ray cluster launcher and local scripts/docs: every ``ray start --head`` passes
  ``--dashboard-host=127.0.0.1`` (Ray's default, made explicit so an edit is a visible change);
  ``--node-ip-address`` (where the GCS and the Ray client server bind) is loopback, a private address, or a
  shell variable the script checks; ``kubectl port-forward`` only listens on loopback.
* Kubernetes: inside a pod KubeRay starts the dashboard on all of the *pod's* interfaces by default. That is
  the pod's cluster-internal address, and it must stay that way: the head Service and the RayJob submitter
  reach the dashboard/job server through it. What decides public exposure is the Service, so the manifests must
  keep it ``ClusterIP`` (no NodePort/LoadBalancer, no Ingress, no ``hostNetwork``/``hostPort``) and must not set
  ``dashboard-host`` in ``rayStartParams`` at all (neither widening it, nor narrowing it to loopback, which
  would break the submitter). Users reach the ports with ``kubectl port-forward`` on their own loopback.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
from cluster_files import REPO, cluster_files, iter_strings, kuberay_manifests, launcher_configs, load_docs, text_sources

FILES = cluster_files()
IDS = [str(p.relative_to(REPO)) for p in FILES]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ALL_INTERFACES = re.compile(r"(?<![\d.])0\.0\.0\.0(?![\d.])|\[::\]|(?:host|address|bind)[= :\"']+::(?![\w:])", re.IGNORECASE)


def _flag_values(text: str, flag: str) -> list[str]:
    return [m.group(1).strip("'\"") for m in re.finditer(rf"{re.escape(flag)}(?:=|\s+)(\S+)", text)]


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_no_all_interfaces_address(path: Path) -> None:
    hits = [line.strip() for line in path.read_text().splitlines() if ALL_INTERFACES.search(line)]
    assert not hits, f"{path.name} binds (or suggests binding) to all interfaces:\n" + "\n".join(hits)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_dashboard_and_node_addresses(path: Path) -> None:
    text = "\n".join(text_sources(path))
    for value in _flag_values(text, "--dashboard-host"):
        assert value in LOOPBACK, f"{path.name}: --dashboard-host={value}"
    for value in _flag_values(text, "--node-ip-address"):
        if value.startswith("$"):
            continue  # local-cluster.sh: 127.0.0.1, or a --lan address it has checked is private
        ip = ipaddress.ip_address(value)
        assert ip.is_loopback or ip.is_private, f"{path.name}: --node-ip-address={value} is public"
    for line in text.splitlines():
        if "port-forward" in line:
            for value in _flag_values(line, "--address"):
                assert value in LOOPBACK, f"{path.name}: kubectl port-forward --address {value}"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_every_head_start_keeps_the_dashboard_on_loopback(path: Path) -> None:
    sources = text_sources(path)
    if path.suffix == ".sh":
        # the script builds `ray start` from an argument array: check the array it uses for the head
        text = path.read_text()
        assert "--head" in text and re.search(r"--dashboard-host=127\.0\.0\.1\b", text), path.name
        return
    for line in sources:
        if re.search(r"\bray start\b.*--head\b", line):
            assert re.search(r"--dashboard-host[= ](127\.0\.0\.1|localhost)\b", line), f"{path.name}: {line.strip()}"


@pytest.mark.parametrize("path", launcher_configs(), ids=lambda p: p.name)
def test_launcher_head_start_is_explicit(path: Path) -> None:
    (config,) = load_docs(path)
    starts = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    assert starts and all("--dashboard-host=127.0.0.1" in c for c in starts)
    assert not config["provider"].get("use_internal_ips") or "ssh_proxy_command" in config.get("auth", {}), (
        "internal IPs only make sense with a bastion/proxy for ray up"
    )
    # A custom security group must not open anything but SSH to the world.
    for rule in config["provider"].get("security_group", {}).get("IpPermissions", []):
        world = any(r.get("CidrIp") == "0.0.0.0/0" for r in rule.get("IpRanges", []))
        assert not world or (rule.get("FromPort"), rule.get("ToPort")) == (22, 22), rule


def _kube_objects() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in kuberay_manifests() for d in load_docs(p)]


def _cluster_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"] if obj["kind"] == "RayCluster" else obj["spec"]["rayClusterSpec"]


def test_kubernetes_objects_are_only_ray_kinds() -> None:
    """No Service/Ingress/Route/Gateway of our own: KubeRay's ClusterIP Services are the only way in."""
    kinds = {d["kind"] for _, d in _kube_objects()}
    assert kinds <= {"RayCluster", "RayJob"}, kinds


@pytest.mark.parametrize("path", kuberay_manifests(), ids=lambda p: p.name)
def test_kubernetes_services_stay_cluster_internal(path: Path) -> None:
    for obj in load_docs(path):
        spec = _cluster_spec(obj)
        head = spec["headGroupSpec"]
        assert head.get("serviceType") == "ClusterIP", "the head Service must be ClusterIP (explicitly)"
        assert not head.get("enableIngress", False)
        assert head.get("headService", {}).get("spec", {}).get("type", "ClusterIP") == "ClusterIP"
        assert "dashboard-host" not in head.get("rayStartParams", {}), "leave the in-pod dashboard host to KubeRay (see module doc)"
        groups = [head, *spec.get("workerGroupSpecs", [])]
        for group in groups:
            pod = group["template"]["spec"]
            assert not pod.get("hostNetwork", False), "hostNetwork would put Ray's ports on the node's address"
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                assert all("hostPort" not in port for port in container.get("ports", [])), container["name"]
        if obj["kind"] == "RayJob":
            submitter = obj["spec"].get("submitterPodTemplate", {}).get("spec", {})
            assert not submitter.get("hostNetwork", False)


def test_no_public_exposure_words_in_kubernetes_manifests() -> None:
    for path, obj in _kube_objects():
        values = " ".join(iter_strings(obj))
        for word in ("LoadBalancer", "NodePort"):
            assert word not in values, f"{path.name}: {word}"
