"""A study that runs until it is decided: the rule, the seeds of each round, and rounds into s3:// with a driver
killed mid-round and resumed (against a real S3-protocol server on loopback: moto)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from hdc_ray.analysis.evidence import decide
from hdc_ray.tune.spec import SpecError, Stopping, load_spec
from tests.bench_scripts import load_bench

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
stopping: {until: decided, round_seeds: 1, min_seeds: 5, max_seeds: 5, width: 1.9}
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
    assert spec.stopping == Stopping(round_seeds=1, min_seeds=5, max_seeds=5, width=1.9, metric="test_dice_fg")
    for bad, message in (
        ("stopping: {until: forever}", "the one rule is 'decided'"),
        ("stopping: {until: decided, max_seeds: 1}", "fewer than the 2 seeds of the first round"),
        ("stopping: {until: decided, width: 2}", "stopping.width"),
        ("stopping: {until: decided, patience: 3}", "unknown key 'stopping.patience'"),
    ):
        text = STUDY.replace("stopping: {until: decided, round_seeds: 1, min_seeds: 5, max_seeds: 5, width: 1.9}", bad)
        with pytest.raises(SpecError, match=message):
            load_spec(_spec_file(tmp_path, text))
    with pytest.raises(SpecError, match="need a grid study"):
        load_spec("smoke", ["stopping={until: decided}"])


def _trials(gains: list[float], budgets: tuple[int, ...] = (4, 8)) -> pd.DataFrame:
    rows = []
    for n in budgets:
        for seed, g in enumerate(gains):
            base = 0.6 + 0.01 * seed
            rows += [{"trial_id": f"{m}{n}{seed}", "status": "completed", "method": m, "label_ratio": n / 100, "n_labeled": n, "seed": seed,
                      "test_dice_fg": base + (g if m == "hdc" else 0.0), "val_dice_fg": base} for m in ("hdc", "supervised")]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_rule_stops_on_the_metric_the_report_answers_on() -> None:
    """Issue 31: the rule decided on validation Dice while the headline answered on test Dice."""
    clear = [0.05, 0.06, 0.04, 0.05, 0.06, 0.05]
    assert Stopping().metric == "test_dice_fg"
    on_test = decide(_trials(clear), Stopping().metric, width=Stopping().width)
    assert on_test.decided and on_test.stop(6, 6, 18)[0] == "decided"
    on_val = decide(_trials(clear), "val_dice_fg", width=Stopping().width)  # validation shows no gain here: not "decided" on gains
    assert [j.verdict for j in on_val.comparisons] == ["not established", "not established"]


# ------------------------------------------------------------------------------------------ s3:// end to end


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    """A moto S3 server on loopback (bench/kill_soak.py's) and the environment that points boto3/pyarrow at it."""
    with load_bench("kill_soak").moto_s3("study", dict(os.environ)) as env:
        yield env


def _read_s3(env: dict[str, str], code: str) -> str:
    prelude = "import json, pandas as pd, pyarrow.fs as fs; f, _ = fs.FileSystem.from_uri('s3://study/r'); "
    return subprocess.run([sys.executable, "-c", prelude + code], env=env, capture_output=True, text=True, check=True).stdout


def _rounds(env: dict[str, str]) -> dict | None:
    out = _read_s3(env, "i = f.get_file_info('study/r/rounds/rounds.json'); "
                        "print(f.open_input_stream(i.path).read().decode() if i.type == fs.FileType.File else 'null')")  # fmt: skip
    return json.loads(out)


@pytest.mark.ray
@pytest.mark.slow
def test_rounds_into_s3_survive_a_kill_stop_decided_and_reopen_with_a_raised_max_seeds(tmp_path: Path, s3_env: dict[str, str]) -> None:
    """A driver killed mid-round resumes; the study stops "decided" on the metric it reports; the report's "more rounds"
    command (a raised max_seeds on --resume) then runs the next round after that decided stop (issue 31), into s3://."""
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
    assert killed["stopped"] is None and killed["rule"]["metric"] == "test_dice_fg"

    second = subprocess.run([*sweep, "--resume"], cwd=tmp_path, env=s3_env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "round 2, splits [2]" in second.stdout
    done = _rounds(s3_env)
    assert done is not None and [r["seeds"] for r in done["rounds"]] == [[0, 1], [2], [3], [4]]
    assert all(r["status"] == "finished" for r in done["rounds"])
    # 5 splits: the confidence sequence is finite (3 could not exclude anything) and narrower than the width 1.9
    assert done["stopped"]["kind"] == "decided" and done["stopped"]["reason"].startswith("decided after 5 splits"), done["stopped"]
    assert [d["n"] for d in done["rounds"][-1]["decision"]] == [5] and not done["rounds"][2]["decided"]  # 4 splits: unbounded
    _check_trials(s3_env, seeds=5)

    again = subprocess.run([*sweep, "--resume"], cwd=tmp_path, env=s3_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already stopped: decided after 5 splits" in again.stdout
    more = subprocess.run([*sweep, "--resume", "--accept-spec-change", "--set", "stopping.max_seeds=6"], cwd=tmp_path, env=s3_env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert more.returncode == 0, more.stdout[-3000:] + more.stderr[-3000:]
    assert "max_seeds is now 6: adding rounds after the 5 splits run so far (it had stopped: decided" in more.stdout
    assert "round 5, splits [5]" in more.stdout
    final = _rounds(s3_env)
    assert final is not None and [r["seeds"] for r in final["rounds"]][-1] == [5] and final["rule"]["max_seeds"] == 6
    assert final["stopped"]["kind"] == "decided" and [d["n"] for d in final["rounds"][-1]["decision"]] == [6]  # every split, old and new
    _check_trials(s3_env, seeds=6)


def _check_trials(env: dict[str, str], seeds: int) -> None:
    trials = pd.read_json(io.StringIO(_read_s3(env, "t = pd.read_parquet('study/r/rounds/trials.parquet', filesystem=f); "
                                           "print(t[['trial_id', 'status', 'seed', 'method']].to_json())")))  # fmt: skip
    finished = trials[trials["status"] == "completed"]
    assert sorted(finished.groupby(["method", "seed"]).size().to_dict().items()) == [((m, s), 1) for m in ("hdc", "supervised") for s in range(seeds)]
    assert set(trials["status"]) <= {"completed", "failed"}  # a trial lost with the driver is marked, never left running
