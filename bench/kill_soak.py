"""Kill soak: SIGKILL a sweep's driver again and again, resume after each kill, and count what was lost.

    python bench/kill_soak.py --kills 50 --seed 0                 # a 12-trial grid sweep, local results
    python bench/kill_soak.py --kills 50 --seed 0 --storage s3    # the same into s3:// (a moto server on loopback)
    python bench/kill_soak.py --kills 10 --mode train             # hdc-ray train --workers 2 --resume (Ray Train)
    python bench/kill_soak.py --kills 10 --mode rounds            # a study in rounds (stopping: {until: decided})

Each kill lands at a moment drawn from ``--seed`` (printed, so a failure can be replayed): half the kills
come a random 0-``--max-delay`` s after the driver starts its sweep, half right after a new checkpoint
appears in the results (the window in which Tune's saved state and the checkpoints on storage disagree).
The whole process group dies at once, driver, raylet and workers, like a lost machine. After the last kill
one resume runs to the end; then the results are checked:

- every trial of the grid completed exactly once (rows left by a driver killed before Tune saved them are
  marked abandoned, never ``running``);
- every completed trial's history holds epochs 1..N exactly once;
- no run printed a traceback, and the final resume exited 0.

The figures of a run are in docs/benchmarks.md ("Killed and resumed"). tests/tune/test_kill_soak.py runs a
few kills of the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EPOCHS = 4
TRAIN_EPOCHS = 12  # hdc-ray train --workers 2: one run, long enough for a few kills
CHECKPOINT_NAME = re.compile(r"^(checkpoint_\d[\w.\-]*|epoch_\d+\.pt)$")  # Tune: checkpoint_000003, Train: checkpoint_<timestamp>
SOAK_SPEC = """
name: soak
base: tiny
overrides: {{train.epochs: {epochs}, train.iters_per_epoch: 40, train.keep_checkpoints: 2, data.label_ratio: 0.5}}
variants:
  hdc: {{}}
  supervised: {{train.method: supervised}}
space:
  data.label_ratio: {{grid: [0.25, 0.5]}}
seeds: [0, 1, 2]
objectives: [{{metric: val_dice_fg, mode: max}}]
search: {{sampler: grid, concurrency: 2}}
resources: {{workers: 1, cpus_per_worker: 0.45, driver_cpus: 0.1}}
"""
ROUNDS_SPEC = """
name: soak
base: tiny
overrides: {{train.epochs: {epochs}, train.iters_per_epoch: 40, train.keep_checkpoints: 2, data.label_ratio: 1.0}}
variants:
  hdc: {{}}
  supervised: {{train.method: supervised}}
space:
  data.label_count: {{grid: [3]}}
seeds: [0, 1]
objectives: [{{metric: val_dice_fg, mode: max}}]
search: {{sampler: grid, concurrency: 2}}
stopping: {{until: decided, round_seeds: 1, min_seeds: 4, max_seeds: 4, width: 0.000001}}
resources: {{workers: 1, cpus_per_worker: 0.45, driver_cpus: 0.1}}
"""


@dataclass
class SoakReport:
    mode: str
    storage: str
    seed: int
    kills: int = 0
    runs: int = 0
    cycles: int = 0
    trials: int = 0  # trials the grids asked for, over every cycle
    epochs_checked: int = 0
    tracebacks: list[str] = field(default_factory=list)  # the first line of each traceback's error, per run
    bad_exits: list[int] = field(default_factory=list)  # exit codes other than 0 and SIGKILL
    trials_lost: list[str] = field(default_factory=list)  # grid cells not completed exactly once
    trials_failed: list[str] = field(default_factory=list)  # rows failed for another reason than being abandoned
    running_left: int = 0
    abandoned: int = 0
    epochs_missing: list[str] = field(default_factory=list)  # "trial: epochs ..." not in history
    epochs_doubled: int = 0
    final_rc: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        lost = self.tracebacks or self.bad_exits or self.trials_lost or self.trials_failed or self.epochs_missing
        return not lost and not self.running_left and not self.epochs_doubled and self.final_rc == 0

    def summary(self) -> str:
        head = (f"kill soak ({self.mode}, {self.storage}, seed {self.seed}): {self.kills} kills over {self.cycles} sweeps, {self.runs} runs, "
                f"{self.seconds:.0f} s; {self.trials} trials, lost {len(self.trials_lost)}, failed {len(self.trials_failed)}, left running {self.running_left}, "
                f"abandoned ghosts {self.abandoned}; {self.epochs_checked} history epochs, missing {len(self.epochs_missing)}, doubled {self.epochs_doubled}; "
                f"tracebacks {len(self.tracebacks)}, bad exits {len(self.bad_exits)}; final resume rc {self.final_rc}")  # fmt: skip
        details = [*(f"  lost: {t}" for t in self.trials_lost[:10]), *(f"  failed: {t}" for t in self.trials_failed[:10]),
                   *(f"  history: {e}" for e in self.epochs_missing[:10]), *(f"  traceback: {t}" for t in self.tracebacks[:10]),
                   *(f"  note: {n}" for n in self.notes[:10])]  # fmt: skip
        return "\n".join([head, *details, "PASS" if self.ok else "FAIL"])


# ------------------------------------------------------------------------------------------ storage


@dataclass
class Storage:
    """Where results go: a local folder, or a bucket on a loopback S3-protocol server."""

    results: str
    env: dict[str, str]

    def filesystem(self):  # type: ignore[no-untyped-def]
        from pyarrow import fs

        if self.results.startswith("s3://"):
            return fs.S3FileSystem(endpoint_override=self.env["AWS_ENDPOINT_URL"], access_key="testing", secret_key="testing",
                                   region="us-east-1", scheme="http"), self.results.removeprefix("s3://")  # fmt: skip
        return fs.LocalFileSystem(), self.results

    def checkpoints(self, under: str) -> set[str]:
        """Every checkpoint (Tune's ``checkpoint_N`` folders, Train's, hdc-ray's ``epoch_N.pt``) below ``under``."""
        from pyarrow import fs

        filesystem, root = self.filesystem()
        try:
            infos = filesystem.get_file_info(fs.FileSelector(f"{root}/{under}", recursive=True, allow_not_found=True))
        except OSError:
            return set()
        return {i.path for i in infos if CHECKPOINT_NAME.match(i.base_name)}

    def read_table(self, path: str):  # type: ignore[no-untyped-def]
        import pyarrow.parquet as pq

        filesystem, root = self.filesystem()
        return pq.read_table(f"{root}/{path}", filesystem=filesystem).to_pandas()

    def read_text(self, path: str) -> str | None:
        filesystem, root = self.filesystem()
        try:
            with filesystem.open_input_stream(f"{root}/{path}") as f:
                return f.read().decode()
        except (FileNotFoundError, OSError):
            return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_s3(bucket: str, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A moto S3 server on loopback holding BUCKET, and ENV plus what points boto3/pyarrow (and Ray's storage) at it."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**env, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        subprocess.run([sys.executable, "-c", f"import boto3; boto3.client('s3').create_bucket(Bucket={bucket!r})"], env=env, check=True)
        yield env
    finally:
        server.terminate()
        server.wait(10)


@contextmanager
def storage_of(kind: str, workdir: Path) -> Iterator[Storage]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "HDC_RAY_CACHE": str(workdir / "cache")}
    if kind == "local":
        yield Storage(str(workdir / "results"), env)
        return
    with moto_s3("soak", env) as s3_env:
        yield Storage("s3://soak/r", s3_env)


# ------------------------------------------------------------------------------------------ one run


def _command(mode: str, spec: Path, storage: Storage, name: str, resume: bool) -> list[str]:
    cli = [sys.executable, "-m", "hdc_ray.cli"]
    if mode == "train":
        return [*cli, "train", "tiny", "--workers", "2", "--out", f"{storage.results}/{name}", "--set", f"train.epochs={TRAIN_EPOCHS}",
                "--set", "train.iters_per_epoch=40", "--set", "train.keep_checkpoints=1", "--set", "dist.cpus_per_worker=0.5",
                "--no-progress", *(["--resume"] if resume else [])]  # fmt: skip
    return [*cli, "sweep", str(spec), "--name", name, "--results", storage.results, *(["--resume"] if resume else [])]


STARTED = {"sweep": "sweep 'soak", "rounds": "sweep 'soak", "train": "epoch 1/"}  # the run has begun its work


def _run_once(mode: str, spec: Path, storage: Storage, name: str, log: Path, resume: bool, kill: tuple[str, float] | None, timeout: float) -> int:
    """Start the command; with ``kill`` (how, seconds), SIGKILL its process group at that moment. Returns the exit code."""
    before = storage.checkpoints(name) if kill and kill[0] == "checkpoint" else set()
    with log.open("w") as out:
        proc = subprocess.Popen(_command(mode, spec, storage, name, resume), cwd=log.parent, env=storage.env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        if kill is None:
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
                return 124
        while STARTED[mode] not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        how, delay = kill
        if how == "checkpoint":  # right after a checkpoint the sweep had not seen before
            while proc.poll() is None and time.monotonic() < deadline and not (storage.checkpoints(name) - before):
                time.sleep(0.05)
        try:
            proc.wait(delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        return proc.returncode


def _tracebacks(text: str) -> list[str]:
    """The error line closing each traceback of a run's output (Ray's own worker tracebacks included)."""
    found = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            tail = next((x for x in lines[i + 1 :] if x and not x.startswith((" ", "\t", "Traceback"))), "?")
            found.append(tail.strip()[:200])
    return found


# ------------------------------------------------------------------------------------------ the soak


def soak(workdir: Path, *, kills: int, seed: int, mode: str = "sweep", storage_kind: str = "local", per_cycle: int = 3,
         max_delay: float = 30.0, timeout: float = 600.0, log: bool = True) -> SoakReport:  # fmt: skip
    """``kills`` SIGKILLs at moments drawn from ``seed``, in cycles: a fresh sweep killed up to ``per_cycle`` times
    (a resume after each), then one resume to the end, then its results checked."""
    rng = np.random.default_rng(seed)
    report = SoakReport(mode, storage_kind, seed)
    started = time.monotonic()
    spec = workdir / "soak.yaml"
    spec.write_text((ROUNDS_SPEC if mode == "rounds" else SOAK_SPEC).format(epochs=EPOCHS))
    with storage_of(storage_kind, workdir) as storage:
        cycle = 0
        while report.kills < kills:
            _cycle(report, rng, mode, spec, storage, workdir, f"soak{cycle}", min(per_cycle, kills - report.kills), max_delay, timeout, log)
            cycle += 1
    report.seconds = time.monotonic() - started
    return report


def _cycle(report: SoakReport, rng: np.random.Generator, mode: str, spec: Path, storage: Storage, workdir: Path, name: str, kills: int,
           max_delay: float, timeout: float, log: bool) -> None:  # fmt: skip
    report.cycles += 1
    begun = False
    for k in range(kills):
        how = "checkpoint" if rng.random() < 0.5 else "random"
        delay = float(rng.uniform(0.0, 0.4) if how == "checkpoint" else rng.uniform(0.0, max_delay))
        path = workdir / f"{name}-run{k}.log"
        rc = _run_once(mode, spec, storage, name, path, resume=begun, kill=(how, delay), timeout=timeout)
        begun = begun or _has_started(mode, storage, name)
        report.runs += 1
        report.kills += rc == -signal.SIGKILL
        _judge_run(report, path, rc)
        if log:
            print(f"  {name} run {k + 1}: kill {how} +{delay:.2f} s -> rc {rc}", flush=True)
        if rc != -signal.SIGKILL:
            break  # it finished (or failed) before the kill: nothing left to kill in this cycle
    path = workdir / f"{name}-final.log"
    rc = _run_once(mode, spec, storage, name, path, resume=begun, kill=None, timeout=timeout)
    report.runs += 1
    _judge_run(report, path, rc)
    report.final_rc = rc if report.final_rc in (None, 0) else report.final_rc
    if rc == 0:
        _check_results(report, mode, storage, name)
    else:
        report.notes.append(f"{name}: final resume rc {rc}: {path.read_text()[-600:]!r}")
    if log:
        print(f"  {name} final resume -> rc {rc}; so far: {report.summary().splitlines()[0]}", flush=True)


def _has_started(mode: str, storage: Storage, name: str) -> bool:
    """Whether the next run must be a resume: the sweep (or run) left something to continue."""
    if mode == "train":
        return bool(storage.checkpoints(name))
    return storage.read_text(f"{name}/spec.yaml") is not None or bool(storage.checkpoints(name))


def _judge_run(report: SoakReport, path: Path, rc: int) -> None:
    text = path.read_text()
    report.tracebacks += _tracebacks(text)
    if rc not in (0, -signal.SIGKILL):
        report.bad_exits.append(rc)
        report.notes.append(f"{path.name}: rc {rc}: {text[-400:]!r}")


def _check_results(report: SoakReport, mode: str, storage: Storage, name: str) -> None:
    if mode == "train":
        _check_train(report, storage, name)
        return
    from hdc_ray.tune.callback import ABANDONED

    folder = name
    if mode == "rounds":  # every round finished, and the study says why it stopped
        rounds = json.loads(storage.read_text(f"{folder}/rounds.json") or "null")
        if not rounds or rounds.get("stopped") is None or any(r["status"] != "finished" for r in rounds["rounds"]):
            report.trials_lost.append(f"{name}: rounds.json not finished: {rounds}")
    trials = storage.read_table(f"{folder}/trials.parquet")
    history = storage.read_table(f"{folder}/history.parquet")
    ghosts = trials["error"] == ABANDONED
    report.abandoned += int(ghosts.sum())
    report.running_left += int((trials["status"] == "running").sum())
    real = trials[~ghosts]
    report.trials_failed += [f"{name}/{r.trial_id}: {r.status} {r.error}" for r in real.itertuples() if r.status != "completed"]
    cells = _expected_cells(mode)
    done = real[real["status"] == "completed"]
    counts = done.groupby(["method", "label_ratio" if mode == "sweep" else "n_labeled", "seed"]).size().to_dict()
    report.trials += len(cells)
    report.trials_lost += [f"{name} {c}: completed {counts.get(c, 0)} times" for c in cells if counts.get(c, 0) != 1]
    report.trials_lost += [f"{name} {c}: not in the grid" for c in counts if c not in cells]
    report.epochs_doubled += int(history.duplicated(["trial_id", "epoch"]).sum())
    for tid in done["trial_id"]:
        epochs = sorted(history.loc[history["trial_id"] == tid, "epoch"].astype(int))
        report.epochs_checked += EPOCHS
        if epochs != list(range(1, EPOCHS + 1)):
            report.epochs_missing.append(f"{name}/{tid}: epochs {epochs}")


def _expected_cells(mode: str) -> list[tuple[str, float, int]]:
    if mode == "rounds":
        return [(m, 3, s) for m in ("hdc", "supervised") for s in range(4)]
    return [(m, r, s) for m in ("hdc", "supervised") for r in (0.25, 0.5) for s in range(3)]


def _check_train(report: SoakReport, storage: Storage, name: str) -> None:
    report.trials += 1
    text = storage.read_text(f"{name}/metrics.json")
    if text is None:
        report.trials_lost.append(f"{name}: no metrics.json")
        return
    metrics = json.loads(text)
    if int(metrics.get("epoch", 0)) != TRAIN_EPOCHS:
        report.trials_lost.append(f"{name}: finished at epoch {metrics.get('epoch')}, not {TRAIN_EPOCHS}")
    from hdc_ray.distributed.worker import newest_in_run_folder

    state = newest_in_run_folder(f"{storage.results}/{name}")  # the run's history travels in its checkpoints
    epochs = [int(r["epoch"]) for r in (state or {}).get("history", [])]
    report.epochs_checked += TRAIN_EPOCHS
    if epochs != list(range(1, TRAIN_EPOCHS + 1)):
        report.epochs_missing.append(f"{name}: epochs {epochs}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="the kill schedule's seed (printed; the same seed replays the schedule)")
    parser.add_argument("--mode", choices=("sweep", "train", "rounds"), default="sweep")
    parser.add_argument("--storage", choices=("local", "s3"), default="local")
    parser.add_argument("--per-cycle", type=int, default=3, help="kills of one sweep before it is resumed to its end and checked")
    parser.add_argument("--max-delay", type=float, default=30.0, help="the latest random kill, in seconds after the sweep starts")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the logs and results here (default: a temporary folder)")
    args = parser.parse_args(argv)
    print(f"kill soak: {args.kills} kills, mode {args.mode}, storage {args.storage}, seed {args.seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hdc-soak-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = soak(workdir, kills=args.kills, seed=args.seed, mode=args.mode, storage_kind=args.storage,
                      per_cycle=args.per_cycle, max_delay=args.max_delay)
    print(report.summary(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
