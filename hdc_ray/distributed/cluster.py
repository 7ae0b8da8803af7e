"""Connecting to a Ray cluster and checking, before anything starts, that a run fits on it.

Every check fails within seconds with a :class:`ClusterError` that says what to change. ``ray.init``
retries an address for minutes when something that is not Ray answers there (a silent port or an HTTP
server: no answer in 120 s; a gRPC server without Ray's services: none in 150 s), so a ``HOST:PORT`` is
probed first:
a TCP connect (is anything listening?), then an HTTP/2 handshake, because a Ray head's GCS and the Ray
Client server are gRPC servers and gRPC is HTTP/2 (a web server, Redis or a silent service on the port is
refused in seconds, naming what answered), then one GCS call that every Ray head answers (an HTTP/2 or gRPC
service that is not Ray). A run that needs more CPUs or GPUs than the cluster has is refused instead of
waiting forever.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time

from hdc_ray.errors import UserError

PROBE_TIMEOUT_S = 3.0  # TCP connect
REPLY_TIMEOUT_S = 5.0  # a GCS answers the HTTP/2 preface in milliseconds; 5 s leaves room for a busy head
# The client connection preface of RFC 9113 section 3.4, then an empty SETTINGS frame (length 0, type 4, no
# flags, stream 0). An HTTP/2 server must answer with its own SETTINGS frame before anything else.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
HTTP2_SETTINGS = 4
# A GCS method with no arguments that every Ray head answers: a joining driver asks it for the cluster id.
GCS_PROBE_METHOD = "/ray.rpc.NodeInfoGcsService/GetClusterId"
GCS_PORT, CLIENT_PORT = 6379, 10001  # what `ray start --head` uses unless told otherwise


class ClusterError(UserError, RuntimeError):
    """The cluster cannot run what was asked (unreachable, not Ray, too small, no GPU)."""


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
    """Refuse ``address`` unless a Ray GCS (or, for ``ray://``, a Ray Client server) answers there."""
    client = address.startswith("ray://")
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterError(f"--address {address!r}: expected 'auto' or HOST:PORT (e.g. 10.0.0.5:{GCS_PORT})")
    try:
        if _tls_on():  # a TLS head answers a clear-text preface with an alert: check only that it listens
            socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
            return
        reply, closed = _http2_reply(host.strip("[]"), int(port))
    except OSError as exc:
        raise ClusterError(f"no Ray head node answers at {address} ({exc.strerror or exc}); check the address and that `ray start --head` runs there") from exc
    heard = what_answered(reply, closed)
    if heard is None and not client:
        heard = _not_a_gcs(f"{host}:{port}")
    if heard is not None:
        raise ClusterError(f"{address} is not a Ray cluster: {heard}; {_where_ray_listens(client)}")


def _http2_reply(host: str, port: int) -> tuple[bytes, bool]:
    """What ``host:port`` sends back to an HTTP/2 preface within ``REPLY_TIMEOUT_S``, and whether it hung up."""
    with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as conn:
        conn.sendall(HTTP2_PREFACE)
        reply, deadline = b"", time.monotonic() + REPLY_TIMEOUT_S
        while len(reply) < 64 and (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            try:
                chunk = conn.recv(64 - len(reply))
            except TimeoutError:
                break
            except ConnectionResetError:
                return reply, True
            if not chunk:
                return reply, True
            reply += chunk
            if _is_http2_settings(reply):
                break
        return reply, False


def what_answered(reply: bytes, closed: bool) -> str | None:
    """None when ``reply`` opens with an HTTP/2 SETTINGS frame (a gRPC server), else what answered, in words."""
    if _is_http2_settings(reply):
        return None
    if reply.startswith(b"HTTP/") or reply.lstrip()[:14].lower() in (b"<!doctype html", b"<html>"):  # an HTML page: HTTP/0.9 style
        return f"an HTTP server answered ({_printable(reply)})"
    if reply[:1] == b"\x15" and reply[1:2] == b"\x03":
        return "a TLS server answered (if the Ray cluster uses TLS, set RAY_USE_TLS=1 and its certificates)"
    if reply:
        return f"a service that does not speak HTTP/2 (gRPC) answered ({_printable(reply)})"
    if closed:
        return "a service accepted the connection and closed it without a word"
    return f"a service accepts connections but never speaks (nothing back in {REPLY_TIMEOUT_S:g} s)"


def _is_http2_settings(reply: bytes) -> bool:
    if len(reply) < 9:
        return False
    _, frame_type, _, stream = struct.unpack(">3sBBI", reply[:9])
    return frame_type == HTTP2_SETTINGS and stream & 0x7FFFFFFF == 0


def _not_a_gcs(target: str) -> str | None:
    """None unless the HTTP/2 server at ``target`` says it has no such GCS method (UNIMPLEMENTED).

    A gRPC server without Ray's services answers UNIMPLEMENTED, and so does an HTTP/2 web server (gRPC reads
    its 404 as UNIMPLEMENTED). A real GCS answers (or, with token auth and no token here, says UNAUTHENTICATED).
    """
    import grpc  # installed with ray

    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(GCS_PROBE_METHOD, request_serializer=None, response_deserializer=None)
        try:
            call(b"", timeout=REPLY_TIMEOUT_S)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                return f"an HTTP/2 (gRPC) service answered that is not a Ray GCS (it does not know {GCS_PROBE_METHOD})"
            # Anything else (no token, busy, deadline): it may well be Ray; ray.init will say.
    return None


def _where_ray_listens(client: bool) -> str:
    if client:
        return f"a Ray Client server listens on port {CLIENT_PORT} of the head (ray://HOST:{CLIENT_PORT}), started by `ray start --head`"
    return f"a Ray head's GCS listens on port {GCS_PORT} by default (`ray start --head` prints the address to use), or pass --address auto on a node of the cluster"


def _tls_on() -> bool:
    return os.environ.get("RAY_USE_TLS", "").strip().lower() in ("1", "true")


def _printable(raw: bytes) -> str:
    """The first line of ``raw`` as quoted ASCII, at most 60 characters (it goes into a one-line error)."""
    text = raw.split(b"\n", 1)[0].decode("ascii", "replace").strip()
    text = "".join(c if c.isprintable() else "." for c in text)
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


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
