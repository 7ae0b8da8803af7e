"""Resuming an interrupted sweep (issue 12): a changed spec is refused or recorded, ghost trials are
marked abandoned in trials.parquet and in the Optuna study, a spec file that is not YAML is one line.
No cluster: the pieces run_sweep calls are exercised directly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from hdc_ray.config import with_overrides
from hdc_ray.outputs import OutputError, check_writable
from hdc_ray.results.rows import trial_row
from hdc_ray.results.schema import history_schema, trials_schema
from hdc_ray.results.writer import TRIALS_FILE, ResultsWriter
from hdc_ray.tune.callback import ABANDONED, abandon_ghost_rows
from hdc_ray.tune.search import abandon_running_trials
from hdc_ray.tune.spec import SpecError, is_spec_file, load_spec
from hdc_ray.tune.sweep import SPEC_CHANGES, check_spec_unchanged, save_spec, spec_differences


def _started(tmp_path: Path, *overrides: str) -> Path:
    folder = tmp_path / "sweep"
    save_spec(load_spec("smoke", list(overrides)), str(folder))
    return folder


def test_unchanged_spec_resumes(tmp_path: Path) -> None:
    folder = _started(tmp_path, "search.trials=4")
    check_spec_unchanged(load_spec("smoke", ["search.trials=4"]), str(folder))  # no error


def test_changed_search_is_refused_even_with_the_flag(tmp_path: Path) -> None:
    folder = _started(tmp_path, "search.trials=4")
    changed = load_spec("smoke", ["search.trials=6"])
    for accept in (False, True):
        with pytest.raises(SpecError, match=r"search.trials: 4 -> 6.*cannot change in a resumed sweep"):
            check_spec_unchanged(changed, str(folder), accept=accept)


def test_changed_overrides_are_refused_then_accepted_and_recorded(tmp_path: Path) -> None:
    folder = _started(tmp_path)
    changed = load_spec("smoke", ["overrides.train.epochs=3"])
    with pytest.raises(SpecError, match=r"overrides.train.epochs: 2 -> 3.*--accept-spec-change"):
        check_spec_unchanged(changed, str(folder))
    check_spec_unchanged(changed, str(folder), accept=True)
    record = yaml.safe_load((folder / SPEC_CHANGES).read_text())
    assert record[0]["changes"] == {"overrides.train.epochs": {"from": 2, "to": 3}}
    datetime.fromisoformat(record[0]["at"])
    save_spec(changed, str(folder))  # what run_sweep does next: spec.yaml records the spec that now runs
    check_spec_unchanged(changed, str(folder))


def test_spec_differences_name_added_and_removed_keys() -> None:
    diff = spec_differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "d": 3}})
    assert diff == {"a.c": (2, None), "a.d": (None, 3)}


def _rows(folder: Path, statuses: dict[str, str]) -> None:
    spec = load_spec("smoke")
    cfg = spec.base_config()
    writer = ResultsWriter(str(folder), trials_schema(cfg), history_schema(cfg))
    for tid, status in statuses.items():
        writer.put_trial(trial_row("smoke", tid, cfg, status=status, results=[], started_at=datetime.now(UTC)))
    writer.flush()


def test_ghost_rows_are_marked_abandoned(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    _rows(folder, {"t1": "completed", "t2": "running", "t3": "running"})
    assert abandon_ghost_rows(load_spec("smoke"), "smoke", str(folder), known={"t1", "t2"}) == 1
    cfg = load_spec("smoke").base_config()
    trials = ResultsWriter(str(folder), trials_schema(cfg), history_schema(cfg)).read(TRIALS_FILE).to_pandas().set_index("trial_id")
    assert trials.loc["t3", "status"] == "failed" and trials.loc["t3", "error"] == ABANDONED
    assert trials.loc["t2", "status"] == "running"  # Tune knows it: it resumes and reports again
    assert len(trials) == 3 and pd.notna(trials.loc["t3", "finished_at"])


def test_running_optuna_trials_unknown_to_tune_fail(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(storage=url, study_name="s")
    for tid in ("known", "ghost"):
        study.ask().set_user_attr("tune_trial_id", tid)
    done = study.ask()
    study.tell(done, 0.5)
    assert abandon_running_trials(url, "s", known={"known"}) == 1
    states = {t.user_attrs.get("tune_trial_id"): (t.state, t.user_attrs.get("tune_status")) for t in optuna.load_study(study_name="s", storage=url).trials}
    assert states["ghost"] == (optuna.trial.TrialState.FAIL, "abandoned")
    assert states["known"][0] == optuna.trial.TrialState.RUNNING
    assert abandon_running_trials(url, "no-such-study", known=set()) == 0


def test_spec_that_is_not_yaml_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: [1\n  b: :\n")
    assert not is_spec_file(bad)
    with pytest.raises(SpecError, match="not valid YAML") as err:
        load_spec(bad)
    assert "\n" not in str(err.value)
    bad.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)


def test_results_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "results", "--results")
    with pytest.raises(OutputError, match="cannot write into /proc"):
        check_writable("/proc/hdc-ray-results", "--results")
    check_writable(tmp_path / "new" / "deeper", "--results")
    assert not (tmp_path / "new").exists()  # the check creates nothing


def test_a_ghost_that_even_finished_is_abandoned_but_earlier_rounds_are_not(tmp_path: Path) -> None:
    """A trial that started and finished after Tune's last save is rerun by the resumed sweep: its first row is marked
    abandoned so each cell completes once; rows of seeds this experiment does not run (a study's earlier rounds) stay."""
    spec = load_spec("smoke")  # seeds (0,)
    cfg = spec.base_config()
    writer = ResultsWriter(str(tmp_path), trials_schema(cfg), history_schema(cfg))
    for tid, status, seed in (("known", "completed", 0), ("ghost_done", "completed", 0), ("earlier_round", "completed", 7), ("ghost_run", "running", 7)):
        writer.put_trial(trial_row("smoke", tid, with_overrides(cfg, {"train.seed": seed}), status=status, results=[], started_at=datetime.now(UTC)))
    writer.flush()
    assert abandon_ghost_rows(spec, "smoke", str(tmp_path), known={"known"}) == 2
    trials = ResultsWriter(str(tmp_path), trials_schema(cfg), history_schema(cfg)).read(TRIALS_FILE).to_pandas().set_index("trial_id")
    assert trials.loc["ghost_done", "error"] == ABANDONED and trials.loc["ghost_run", "error"] == ABANDONED
    assert trials.loc["earlier_round", "status"] == "completed" and trials.loc["known", "status"] == "completed"
