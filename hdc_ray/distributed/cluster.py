"""Connecting to a Ray cluster and checking, before anything starts, that a run fits on it.

Every check fails within seconds with a :class:`ClusterError` that says what to change: an unreachable
address is probed with a plain TCP connect before Ray is asked (``ray.init`` would retry for a minute),
and a run that needs more CPUs or GPUs than the cluster has is refused instead of waiting forever.
"""

from __future__ import annotations

import logging
import os
import socket

PROBE_TIMEOUT_S = 3.0


class ClusterError(RuntimeError):
    """The cluster cannot run what was asked (unreachable, too small, no GPU)."""


def connect(address: str | None = None, *, num_cpus: int | None = None, log_to_driver: bool = True) -> None:
    """Join ``address`` (``auto`` or ``HOST:PORT``), or start a local cluster when it is None.

    A no-op when this process is already connected (tests share one session cluster). ``log_to_driver``:
    stream the workers' stdout/stderr here (sweeps turn it off unless verbose: trials report through Tune).
    """
    import ray

    if ray.is_initialized():
        return
    if address is None:
        # A private single-machine cluster: Ray's token auth would only write ~/.ray/auth_token.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if address not in (None, "auto", "local"):
        _probe(address)
    try:
        # address "local": a fresh private cluster, never one that a `ray start` left running on this host.
        ray.init(address=address or "local", num_cpus=num_cpus if address is None else None, log_to_driver=log_to_driver, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = "start one with `ray start --head`, or omit --address for a local cluster" if address == "auto" else "check the address and that the head node is up"
        raise ClusterError(f"cannot connect to the Ray cluster at {address!r}: {_first_line(exc)}; {hint}") from exc


def _probe(address: str) -> None:
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterError(f"--address {address!r}: expected 'auto' or HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ClusterError(f"no Ray head node answers at {address} ({exc.strerror or exc}); check the address and that `ray start --head` runs there") from exc


def check_placement(workers: int, cpus_per_worker: float, use_gpu: bool, cluster: dict[str, float]) -> None:
    """Refuse a Train run the cluster can never place (pure: ``cluster`` is ``ray.cluster_resources()``)."""
    cpus, gpus = cluster.get("CPU", 0.0), cluster.get("GPU", 0.0)
    if use_gpu and gpus < 1:
        raise ClusterError("--gpu / dist.use_gpu: the cluster has no GPU; drop --gpu to train on CPU workers (gloo)")
    if use_gpu and workers > gpus:
        raise ClusterError(f"{workers} GPU workers asked for, the cluster has {gpus:g} GPU(s); use --workers {int(gpus)} or fewer")
    need = workers * cpus_per_worker
    if need > cpus + 1e-9:
        raise ClusterError(
            f"{workers} workers x {cpus_per_worker:g} CPU = {need:g} CPUs asked for, the cluster has {cpus:g}; "
            f"lower --workers or dist.cpus_per_worker"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
