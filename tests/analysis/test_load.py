"""Reading sweeps: one or many, selection, partial sweeps, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from hdc_ray.analysis import AnalysisError, read_results


def test_reads_every_sweep_into_tidy_tables(fake_results: Path) -> None:
    res = read_results(fake_results)
    assert res.sweeps == ("ablation", "budget")
    assert len(res.trials) == 59 and not res.history.empty
    assert not res.trials.duplicated(["sweep", "trial_id"]).any()
    assert str(res.trials["started_at"].dt.tz) == "UTC"
    assert res.trials["label_ratio"].dtype == "float64"
    assert set(res.history["sweep"]) == {"ablation", "budget"}


def test_status_counts_and_finished(fake_results: Path) -> None:
    res = read_results(fake_results)
    counts = res.status_counts()
    assert counts.loc["budget", ["completed", "failed", "running"]].tolist() == [36, 1, 2]
    assert counts.loc["ablation", "early_stopped"] == 1
    assert len(res.finished) == 56


def test_selects_sweeps_and_single_sweep_folder(fake_results: Path) -> None:
    assert read_results(fake_results, ["budget"]).sweeps == ("budget",)
    single = read_results(fake_results / "ablation")
    assert single.sweeps == ("ablation",) and len(single.trials) == 20


def test_reads_a_file_uri(fake_results: Path) -> None:
    assert read_results(f"file://{fake_results}").sweeps == ("ablation", "budget")


def test_unknown_sweep_lists_available(fake_results: Path) -> None:
    with pytest.raises(AnalysisError, match=r"nope not found.*available: ablation, budget"):
        read_results(fake_results, ["nope"])


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="does not exist"):
        read_results(tmp_path / "missing")


def test_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(AnalysisError, match="not a directory"):
        read_results(tmp_path / "f.txt")


def test_no_trials_parquet(results_root: Path) -> None:
    (results_root / "sweep_a").mkdir()
    with pytest.raises(AnalysisError, match=r"no sweep results.*<sweep>/trials.parquet"):
        read_results(results_root)


def test_different_schema_versions_name_both(results_root: Path, sweep_writer, trial_factory) -> None:
    sweep_writer(results_root, "old", [trial_factory("old", "a", "hdc", 0.1, 0, 0.8)], version=1)
    sweep_writer(results_root, "new", [trial_factory("new", "a", "hdc", 0.1, 0, 0.8)], version=2)
    with pytest.raises(AnalysisError, match=r"different results schema versions \(new: v2, old: v1\)"):
        read_results(results_root)
    assert read_results(results_root, ["old"]).sweeps == ("old",)


def test_unsupported_schema_version(results_root: Path, sweep_writer, trial_factory) -> None:
    sweep_writer(results_root, "future", [trial_factory("future", "a", "hdc", 0.1, 0, 0.8)], version=2)
    with pytest.raises(AnalysisError, match="written with results schema v2, this hdc-ray reads v1"):
        read_results(results_root)


def test_history_with_another_version_is_refused(results_root: Path, sweep_writer, trial_factory, history_factory) -> None:
    row = trial_factory("s", "a", "hdc", 0.1, 0, 0.8)
    folder = sweep_writer(results_root, "s", [row], history_factory(row, 2))
    sweep_writer(results_root / "tmp", "s", [row], history_factory(row, 2), version=3)
    (results_root / "tmp" / "s" / "history.parquet").replace(folder / "history.parquet")
    with pytest.raises(AnalysisError, match="v3"):
        read_results(results_root / "s")


def test_missing_required_column(results_root: Path) -> None:
    (results_root / "s").mkdir()
    pd.DataFrame({"schema_version": [1], "trial_id": ["a"]}).to_parquet(results_root / "s" / "trials.parquet")
    with pytest.raises(AnalysisError, match="lacks required column"):
        read_results(results_root)


def test_not_hdc_ray_parquet(results_root: Path) -> None:
    (results_root / "s").mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(results_root / "s" / "trials.parquet")
    with pytest.raises(AnalysisError, match="no schema_version column"):
        read_results(results_root)


def test_unreadable_file(results_root: Path) -> None:
    (results_root / "s").mkdir()
    (results_root / "s" / "trials.parquet").write_bytes(b"not parquet")
    with pytest.raises(AnalysisError, match="cannot read"):
        read_results(results_root)


def test_history_is_optional(results_root: Path, sweep_writer, trial_factory) -> None:
    sweep_writer(results_root, "s", [trial_factory("s", "a", "hdc", 0.1, 0, 0.8)])
    res = read_results(results_root)
    assert res.history.empty and len(res.trials) == 1


def test_no_ray_or_optuna_on_import(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys, hdc_ray.analysis; print('ray' in sys.modules, 'optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
