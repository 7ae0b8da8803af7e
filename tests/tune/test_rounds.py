"""A study that runs until it is decided: the rule, the seeds of each round, and rounds into s3:// with a driver
killed mid-round and resumed (against a real S3-protocol server on loopback: moto)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from hdc_ray.analysis.answer import decide
from hdc_ray.tune.spec import SpecError, Stopping, load_spec

STUDY = """
name: rounds
base: tiny
overrides: {train.epochs: 1, train.iters_per_epoch: 400, data.label_ratio: 1.0}
variants:
  hdc: {}
  supervised: {train.method: supervised}
space:
  data.label_count: {grid: [3]}
seeds: [0, 1]
objectives: [{metric: val_dice_fg, mode: max}]
search: {sampler: grid, concurrency: 2}
stopping: {until: decided, round_seeds: 1, min_seeds: 3, max_seeds: 3, width: 0.000001}
resources: {workers: 1, cpus_per_worker: 0.5}
"""


def _spec_file(tmp_path: Path, text: str = STUDY) -> Path:
    path = tmp_path / "rounds.yaml"
    path.write_text(text)
    return path


def test_rounds_add_the_next_seeds_up_to_max_seeds() -> None:
    rule = Stopping(round_seeds=3, max_seeds=8)
    assert rule.seeds_of_round((0, 1, 2), 1) == (0, 1, 2)
    assert rule.seeds_of_round((0, 1, 2), 2) == (3, 4, 5)
    assert rule.seeds_of_round((0, 1, 2), 3) == (6, 7)  # only 2 left under max_seeds 8
    assert rule.seeds_of_round((0, 1, 2), 4) == ()


def test_the_spec_parses_and_checks_stopping(tmp_path: Path) -> None:
    spec = load_spec(_spec_file(tmp_path))
    assert spec.stopping == Stopping(round_seeds=1, min_seeds=3, max_seeds=3, width=1e-6)
    for bad, message in (
        ("stopping: {until: forever}", "the one rule is 'decided'"),
        ("stopping: {until: decided, max_seeds: 1}", "fewer than the 2 seeds of the first round"),
        ("stopping: {until: decided, width: 2}", "stopping.width"),
        ("stopping: {until: decided, patience: 3}", "unknown key 'stopping.patience'"),
    ):
        text = STUDY.replace("stopping: {until: decided, round_seeds: 1, min_seeds: 3, max_seeds: 3, width: 0.000001}", bad)
        with pytest.raises(SpecError, match=message):
            load_spec(_spec_file(tmp_path, text))
    with pytest.raises(SpecError, match="need a grid study"):
        load_spec("smoke", ["stopping={until: decided}"])


def _trials(gains: list[float], budgets: tuple[int, ...] = (4, 8)) -> pd.DataFrame:
    rows = []
    for n in budgets:
        for seed, g in enumerate(gains):
            base = 0.6 + 0.01 * seed
            rows += [{"trial_id": f"{m}{n}{seed}", "status": "completed", "method": m, "label_ratio": n / 100, "n_labeled": n,
                      "seed": seed, "val_dice_fg": base + (g if m == "hdc" else 0.0)} for m in ("hdc", "supervised")]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_budget_is_decided_when_its_interval_excludes_zero_or_is_narrow() -> None:
    from hdc_ray.tune.rounds import stop_reason

    rule = Stopping(min_seeds=3, max_seeds=9, width=0.02)
    clear = decide(_trials([0.05, 0.06, 0.04]), "val_dice_fg", width=rule.width)  # excludes zero
    assert clear.decided and "decided after 3 splits" in stop_reason(clear, 3, rule)
    narrow = decide(_trials([0.001, -0.002, 0.0015]), "val_dice_fg", width=rule.width)  # includes zero, 1 point wide
    assert narrow.decided
    wide = decide(_trials([0.05, -0.04, 0.02]), "val_dice_fg", width=rule.width)
    assert not wide.decided and stop_reason(wide, 3, rule) == ""
    assert wide.open_budgets() == ["hdc@4 images", "hdc@8 images"]
    assert stop_reason(wide, 9, rule).startswith("max_seeds reached (9 splits); still open: hdc@4 images")
    two = decide(_trials([0.05, 0.06]), "val_dice_fg", width=rule.width)  # no interval from 2 splits
    assert not two.decided
    assert stop_reason(clear, 2, Stopping(min_seeds=6)) == ""  # decided, but fewer splits than min_seeds


# ------------------------------------------------------------------------------------------ s3:// end to end


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    """A moto S3 server on loopback and the environment that points boto3/pyarrow (and Ray's storage) at it."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        subprocess.run([sys.executable, "-c", "import boto3; boto3.client('s3').create_bucket(Bucket='study')"], env=env, check=True)
        yield env
    finally:
        server.terminate()
        server.wait(10)


def _read_s3(env: dict[str, str], code: str) -> str:
    prelude = "import json, pandas as pd, pyarrow.fs as fs; f, _ = fs.FileSystem.from_uri('s3://study/r'); "
    return subprocess.run([sys.executable, "-c", prelude + code], env=env, capture_output=True, text=True, check=True).stdout


def _rounds(env: dict[str, str]) -> dict | None:
    out = _read_s3(env, "i = f.get_file_info('study/r/rounds/rounds.json'); "
                        "print(f.open_input_stream(i.path).read().decode() if i.type == fs.FileType.File else 'null')")  # fmt: skip
    return json.loads(out)


@pytest.mark.ray
@pytest.mark.slow
def test_rounds_into_s3_survive_a_driver_killed_mid_round(tmp_path: Path, s3_env: dict[str, str]) -> None:
    sweep = [sys.executable, "-m", "hdc_ray.cli", "sweep", str(_spec_file(tmp_path)), "--results", "s3://study/r"]
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(sweep, cwd=tmp_path, env=s3_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    # The driver prints "round 2" after it wrote round 2 into rounds.json: watch the local log (polling S3 lags by
    # seconds, and a fast machine once finished all of round 2 inside that lag). 400 steps make a trial last ~10 s.
    deadline = time.monotonic() + 420
    while first.poll() is None and time.monotonic() < deadline and "round 2, splits" not in (tmp_path / "first.log").read_text():
        time.sleep(0.2)
    assert first.poll() is None, "the study ended before round 2 could be killed: " + (tmp_path / "first.log").read_text()[-3000:]
    time.sleep(2)  # round 2's trials are starting
    os.killpg(first.pid, signal.SIGKILL)  # driver, raylet, GCS, workers: all gone at once
    first.wait(30)
    killed = _rounds(s3_env)
    assert killed is not None and killed["rounds"][0]["status"] == "finished" and killed["rounds"][1]["status"] == "running"
    assert killed["stopped"] is None

    second = subprocess.run([*sweep, "--resume"], cwd=tmp_path, env=s3_env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "round 2, splits [2]" in second.stdout
    done = _rounds(s3_env)
    assert done is not None and [r["seeds"] for r in done["rounds"]] == [[0, 1], [2]]
    assert all(r["status"] == "finished" for r in done["rounds"])
    assert done["stopped"]["kind"] == "max_seeds" and done["stopped"]["reason"].startswith("max_seeds reached (3 splits)")
    assert [d["n"] for d in done["rounds"][1]["decision"]] == [3]  # round 2's decision pairs all 3 splits
    trials = pd.read_json(io.StringIO(_read_s3(s3_env, "t = pd.read_parquet('study/r/rounds/trials.parquet', filesystem=f); "
                                           "print(t[['trial_id', 'status', 'seed', 'method']].to_json())")))  # fmt: skip
    finished = trials[trials["status"] == "completed"]
    assert sorted(finished.groupby(["method", "seed"]).size().to_dict().items()) == [((m, s), 1) for m in ("hdc", "supervised") for s in (0, 1, 2)]
    assert set(trials["status"]) <= {"completed", "failed"}  # a trial lost with the driver is marked, never left running

    again = subprocess.run([*sweep, "--resume"], cwd=tmp_path, env=s3_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already stopped: max_seeds reached" in again.stdout
