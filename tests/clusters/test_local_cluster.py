"""A real Ray head started with `ray start --head` on loopback; a tiny sweep against it with `--address`, the
same sweep through `ray job submit`, and the clusters/local-cluster.sh lifecycle.

Everything binds to 127.0.0.1: `--node-ip-address=127.0.0.1 --dashboard-host=127.0.0.1` alone is not
enough on Linux (Ray swaps loopback for the machine's address and then listens on all interfaces), so every
process that starts or joins the cluster runs with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0. One test checks the
listening sockets of the cluster's processes.

Stopping: `ray stop --force` would end *every* Ray process on the machine (a parallel test run, another
user's cluster), so it is never called. The head is started in a new session (`start_new_session=True`);
Ray's daemons and workers inherit that session, and teardown signals exactly the processes of that session
(SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster_files import CLUSTERS, REPO

pytestmark = [pytest.mark.slow, pytest.mark.ray]

BIN = Path(sys.executable).parent
RAY = BIN / "ray" if (BIN / "ray").exists() else Path(shutil.which("ray") or "ray")
SWEEP_TIMEOUT = 600
JOB_EXCLUDES = [".git", ".venv", "results", "runs", "**/__pycache__", "*.parquet"]


def _hdc_ray() -> list[str]:
    script = BIN / "hdc-ray"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hdc_ray.cli"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ processes of one session
def _stat(pid: int) -> tuple[str, int] | None:
    """(state, session id) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[3])


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is `sid`."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None and st[1] == sid and st[0] != "Z":
            pids.append(int(entry))
    return pids


def stop_session(sid: int, grace: float = 5.0) -> None:
    """End the processes of one session only (never `ray stop`, which ends every Ray on the machine)."""
    if sid <= 1:
        return  # not a session we created (0: kernel threads and the like)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in session_pids(sid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while session_pids(sid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not session_pids(sid):
            return


def wait_for_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answered (401 with token authentication)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def wait_for_tcp(host: str, port: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def cluster_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"))}
    env.update(
        RAY_AUTH_MODE="disabled",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # keep every Ray port on 127.0.0.1 (see the module docstring)
        RAY_USAGE_STATS_ENABLED="0",
        RAY_TRAIN_HEALTH_CHECK_INTERVAL_S="0.25",
        TUNE_DISABLE_AUTO_CALLBACK_LOGGERS="1",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # Ray workers import hdc_ray: from the installed package, or from this checkout
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Head:
    gcs: str  # 127.0.0.1:PORT, for --address
    dashboard: str  # http://127.0.0.1:PORT, for ray job submit
    session: int
    tmp: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def local_head() -> Iterator[Head]:
    if not RAY.exists():
        pytest.skip("the `ray` executable is not installed next to this Python")
    # Short path: Ray's unix sockets live under it and must fit in 107 characters.
    tmp = Path(tempfile.mkdtemp(prefix="hdcray-", dir="/tmp"))
    gcs_port, dash_port, client_port, agent_port = _free_port(), _free_port(), _free_port(), _free_port()
    env = cluster_env()
    cmd = [
        str(RAY),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={gcs_port}",
        "--num-cpus=4",
        "--num-gpus=0",
        "--resources",
        json.dumps({"driver_slots": 4}),
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash_port}",
        f"--ray-client-server-port={client_port}",
        f"--dashboard-agent-listen-port={agent_port}",
        f"--temp-dir={tmp / 'ray'}",
        "--object-store-memory=300000000",
        "--disable-usage-stats",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sid = proc.pid  # the new session's id: Ray's daemons and workers inherit it
    try:
        out, _ = proc.communicate(timeout=180)
        if proc.returncode != 0:
            pytest.fail(f"ray start --head failed ({proc.returncode}):\n{out}")
        wait_for_http(f"http://127.0.0.1:{dash_port}/api/version")
        wait_for_tcp("127.0.0.1", agent_port)  # the job server needs the head's dashboard agent
        yield Head(f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dash_port}", sid, tmp, env)
    finally:
        if proc.poll() is None:
            proc.kill()
        stop_session(sid)
        leftovers = session_pids(sid)
        shutil.rmtree(tmp, ignore_errors=True)
        assert not leftovers, f"processes of the test cluster survived teardown: {leftovers}"


def _run(cmd: list[str], env: dict[str, str], timeout: float, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``cwd`` is always a temporary folder: a subprocess must never write into the checkout."""
    for _ in range(3):
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        # a job submitted while the agent registers is refused with this message and nothing started: retry
        if proc.returncode == 0 or "No available agent to submit job" not in proc.stdout + proc.stderr:
            return proc
        time.sleep(5)
    return proc


def _tail(proc: subprocess.CompletedProcess[str], n: int = 4000) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-n:]}\n--- stderr\n{proc.stderr[-n:]}"


def _assert_completed_trials(sweep_dir: Path) -> None:
    import pyarrow.parquet as pq

    table = sweep_dir / "trials.parquet"
    assert table.exists(), f"{table} was not written"
    rows = pq.read_table(table).to_pylist()
    assert len(rows) >= 1
    assert sum(1 for r in rows if r.get("status") == "completed") >= 1, [r.get("status") for r in rows]


# ------------------------------------------------------------------------------------------------- tests
def test_head_listens_on_loopback_only_and_runs_jobs(local_head: Head) -> None:
    code = "import ray; ray.init(); r = ray.cluster_resources(); print('driver_slots=%d cpus=%d' % (r['driver_slots'], r['CPU']))"
    proc = _run(
        [str(RAY), "job", "submit", "--address", local_head.dashboard, "--", "python", "-c", code], local_head.env, 180, cwd=local_head.tmp
    )
    assert proc.returncode == 0, _tail(proc)
    assert "driver_slots=4 cpus=4" in proc.stdout + proc.stderr

    import ray  # noqa: F401  (puts Ray's vendored psutil on sys.path: psutil is importable only after it)

    psutil = importlib.import_module("psutil")  # not an import statement: import sorting would put it before ray

    exposed = []
    for pid in session_pids(local_head.session):
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for c in conns:
            if c.status != psutil.CONN_LISTEN:
                continue
            ip = ipaddress.ip_address(c.laddr.ip)
            mapped = getattr(ip, "ipv4_mapped", None)
            if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
                exposed.append(f"pid {pid} ({' '.join(psutil.Process(pid).cmdline()[:3])}) listens on {c.laddr.ip}:{c.laddr.port}")
    assert not exposed, "\n".join(exposed)


def test_sweep_with_address(local_head: Head) -> None:
    results = local_head.tmp / "results"
    cmd = [
        *_hdc_ray(),
        "sweep",
        "smoke",
        "--address",
        local_head.gcs,
        "--results",
        str(results),
        "--name",
        "t",
        "--trials",
        "1",
        "--set",
        "resources.driver_resource=driver_slots",
    ]
    proc = _run(cmd, local_head.env, SWEEP_TIMEOUT, cwd=local_head.tmp)
    assert proc.returncode == 0, _tail(proc)
    _assert_completed_trials(results / "t")


def test_sweep_via_job_submit(local_head: Head) -> None:
    results = local_head.tmp / "results"
    runtime_env = json.dumps({"working_dir": str(REPO), "excludes": JOB_EXCLUDES})
    hdc = "hdc-ray" if (BIN / "hdc-ray").exists() else "python -m hdc_ray.cli"
    entrypoint = f"{hdc} sweep smoke --address auto --results {results} --name tj --trials 1 --set resources.driver_resource=driver_slots"
    cmd = [str(RAY), "job", "submit", "--address", local_head.dashboard, "--runtime-env-json", runtime_env, "--", *entrypoint.split()]
    proc = _run(cmd, local_head.env, SWEEP_TIMEOUT, cwd=local_head.tmp)
    assert proc.returncode == 0, _tail(proc)
    _assert_completed_trials(results / "tj")


@pytest.mark.skipif(shutil.which("setsid") is None or shutil.which("bash") is None, reason="needs bash and util-linux setsid")
def test_local_cluster_script_lifecycle() -> None:
    """clusters/local-cluster.sh: start (loopback, token auth), a job with the printed env, stop; nothing left."""
    state = Path(tempfile.mkdtemp(prefix="hdcls-", dir="/tmp"))
    script = CLUSTERS / "local-cluster.sh"
    env = cluster_env(HDC_RAY_LOCAL_DIR=str(state), RAY=str(RAY))
    for key in ("RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):
        env.pop(key)  # the script must set these itself
    ports = [str(_free_port()) for _ in range(4)]
    try:
        start = _run(
            [
                "bash",
                str(script),
                "start",
                "--cpus",
                "2",
                "--driver-slots",
                "2",
                "--port",
                ports[0],
                "--dashboard-port",
                ports[1],
                "--client-port",
                ports[2],
                "--agent-port",
                ports[3],
                "--auth",
                "token",
            ],
            env,
            240,
            cwd=state,
        )
        assert start.returncode == 0, _tail(start)
        assert (state / "auth_token").stat().st_mode & 0o077 == 0, "the token file must be private"

        exports = _run(["bash", str(script), "env"], env, 30, cwd=state)
        assert exports.returncode == 0, _tail(exports)
        job_env = dict(env)
        for line in exports.stdout.splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                job_env[key] = value
        assert job_env["RAY_AUTH_MODE"] == "token" and job_env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
        code = "import ray; ray.init(); print('slots=%d' % ray.cluster_resources()['driver_slots'])"
        job = _run(
            [str(RAY), "job", "submit", "--address", f"http://127.0.0.1:{ports[1]}", "--", "python", "-c", code], job_env, 180, cwd=state
        )
        assert job.returncode == 0, _tail(job)
        assert "slots=2" in job.stdout + job.stderr

        stranger = {k: v for k, v in job_env.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
        denied = _run(
            [str(RAY), "job", "list", "--address", f"http://127.0.0.1:{ports[1]}"], {**stranger, "RAY_AUTH_MODE": "disabled"}, 60, cwd=state
        )
        assert denied.returncode != 0, "without the token the job server must refuse"

        sessions = [int(s) for s in (state / "cluster.env").read_text().split('SESSIONS="')[1].split('"')[0].split()]
        stop = _run(["bash", str(script), "stop"], env, 120, cwd=state)
        assert stop.returncode == 0, _tail(stop)
        assert not (state / "cluster.env").exists()
        deadline = time.monotonic() + 10
        while (left := [pid for sid in sessions for pid in session_pids(sid)]) and time.monotonic() < deadline:
            time.sleep(0.2)  # SIGKILLed processes take a moment to leave /proc
        assert not left, f"stop left processes behind: {left}"
    finally:
        env_file = state / "cluster.env"
        if env_file.exists():  # a failed run: end the recorded sessions ourselves
            for sid in env_file.read_text().split('SESSIONS="')[1].split('"')[0].split():
                stop_session(int(sid))
        for sidfile in state.glob("*.sid"):
            stop_session(int(sidfile.read_text().strip() or 0))
        shutil.rmtree(state, ignore_errors=True)
