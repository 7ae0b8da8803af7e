"""Concurrency planning: never more trials at once than the cluster can place (pure)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from hdc_ray.distributed.cluster import ClusterError
from hdc_ray.tune.spec import load_spec
from hdc_ray.tune.sweep import plan_concurrency


def test_concurrency_follows_the_cluster_and_the_spec() -> None:
    spec = load_spec("smoke")  # one 0.45 CPU worker per trial, trained inside the trial; spec asks for 2
    assert plan_concurrency(spec, cluster_cpus=4, cluster_gpus=0) == 2
    assert plan_concurrency(spec, cluster_cpus=0.5, cluster_gpus=0) == 1
    many = load_spec("smoke", ["search.concurrency=auto"])
    assert plan_concurrency(many, cluster_cpus=1.5, cluster_gpus=0) == 3  # floor(1.5 / 0.45)
    assert plan_concurrency(many, cluster_cpus=2, cluster_gpus=0) == 4  # floor(2 / 0.45) = 4 = the spec's trials
    on_train = load_spec("smoke", ["search.concurrency=auto", "resources.launcher=train"])  # + a 0.1 CPU Train driver
    assert plan_concurrency(on_train, cluster_cpus=2, cluster_gpus=0) == 3  # floor(2 / 0.55)


def test_gpu_trials_are_limited_by_gpus() -> None:
    spec = load_spec("smoke", ["resources.gpus_per_worker=1", "search.concurrency=auto"])
    assert plan_concurrency(spec, cluster_cpus=64, cluster_gpus=2) == 2
    with pytest.raises(ClusterError, match="GPU"):
        plan_concurrency(spec, cluster_cpus=64, cluster_gpus=0)


def test_a_trial_that_cannot_fit_is_an_error() -> None:
    with pytest.raises(ClusterError, match="one trial needs"):
        plan_concurrency(load_spec("smoke", ["resources.workers=4", "resources.cpus_per_worker=1"]), cluster_cpus=2, cluster_gpus=0)


def test_an_existing_cluster_may_scale_to_the_specs_explicit_concurrency() -> None:
    # A `ray up` / KubeRay cluster starts with its CPU head only: GPU trials fit nowhere *yet*.
    spec = load_spec("smoke", ["resources.gpus_per_worker=1", "search.concurrency=3"])
    assert plan_concurrency(spec, cluster_cpus=8, cluster_gpus=0, may_scale=True) == 3
    with pytest.raises(ClusterError, match="GPU"):  # a local cluster does not grow
        plan_concurrency(spec, cluster_cpus=8, cluster_gpus=0)
    auto = load_spec("smoke", ["resources.gpus_per_worker=1", "search.concurrency=auto"])
    with pytest.raises(ClusterError, match=r"autoscaling cluster set search\.concurrency"):
        plan_concurrency(auto, cluster_cpus=8, cluster_gpus=0, may_scale=True)
