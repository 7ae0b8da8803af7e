"""A real sweep through Tune + Optuna + Train, its Parquet files checked row by row against Tune."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from hdc_ray.results.schema import SCHEMA_VERSION
from hdc_ray.tune.spec import load_spec
from hdc_ray.tune.sweep import run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_every_trial_lands_in_parquet_as_tune_saw_it(smoke_sweep) -> None:  # type: ignore[no-untyped-def]
    trials = pd.read_parquet(smoke_sweep.folder / "trials.parquet").set_index("trial_id")
    assert len(trials) == smoke_sweep.n_trials == len(smoke_sweep.grid)
    assert (trials["schema_version"] == SCHEMA_VERSION).all() and (trials["sweep"] == "smoke_test").all()
    for result in smoke_sweep.grid:
        assert result.error is None
        tid = result.metrics["trial_id"]
        row = trials.loc[tid]
        assert row["status"] == "completed"
        for key in ("test_dice_fg", "test_hd95_fg", "test_dice_anterior_lip", "label_ratio"):
            assert row[key] == pytest.approx(result.metrics[key]), key
        assert row["val_dice_fg"] == pytest.approx(result.metrics["best_val_dice_fg"])  # best epoch, not last
        assert row["best_epoch"] == result.metrics["best_epoch"] and row["split_hash"] == result.metrics["split_hash"]
        assert row["cfg.loss.w_cg"] == pytest.approx(result.config["loss.w_cg"])
        assert row["cfg.data.label_ratio"] == pytest.approx(result.config["data.label_ratio"])
        assert row["cfg.train.epochs"] == 2 and row["epochs_done"] == 2
        assert row["checkpoint_path"] and row["finished_at"] >= row["started_at"]
        assert row["hdc_ray_version"] and row["node"]


def test_history_has_one_row_per_trial_per_epoch(smoke_sweep) -> None:  # type: ignore[no-untyped-def]
    history = pd.read_parquet(smoke_sweep.folder / "history.parquet")
    assert len(history) == 2 * smoke_sweep.n_trials
    for result in smoke_sweep.grid:
        tune_rows = result.metrics_dataframe.sort_values("epoch")
        ours = history[history["trial_id"] == result.metrics["trial_id"]].sort_values("epoch")
        assert ours["epoch"].tolist() == [1, 2]
        assert ours["val_dice_fg"].tolist() == pytest.approx(tune_rows["val_dice_fg"].tolist())
        assert ours["train_loss"].tolist() == pytest.approx(tune_rows["train_loss"].tolist())


def test_schema_types_are_fixed_and_an_independent_engine_reads_the_files(smoke_sweep) -> None:  # type: ignore[no-untyped-def]
    duckdb = pytest.importorskip("duckdb")
    (part,) = (smoke_sweep.folder / "trials.parquet").glob("*.parquet")  # compacted at the end of the sweep: one part
    schema = pq.read_schema(part)
    assert str(schema.field("error").type) == "string"  # all-null column keeps its declared type
    assert str(schema.field("test_dice_fg").type) == "double" and str(schema.field("seed").type) == "int64"
    rows = duckdb.sql(f"select trial_id, test_dice_fg from read_parquet('{smoke_sweep.folder / 'trials.parquet'}/*.parquet') order by trial_id").fetchall()
    expected = pd.read_parquet(smoke_sweep.folder / "trials.parquet").sort_values("trial_id")
    assert [r[0] for r in rows] == expected["trial_id"].tolist()
    assert [r[1] for r in rows] == pytest.approx(expected["test_dice_fg"].tolist())
    n_history = duckdb.sql(f"select count(*) from read_parquet('{smoke_sweep.folder / 'history.parquet'}/*.parquet')").fetchall()
    assert n_history == [(2 * smoke_sweep.n_trials,)]


def test_the_optuna_study_is_stored_next_to_the_results(smoke_sweep) -> None:  # type: ignore[no-untyped-def]
    db = smoke_sweep.folder / "optuna.db"
    assert db.is_file()
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("select study_name from studies")]
        n_done = conn.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
        attrs = conn.execute("select key, value_json from trial_user_attributes order by trial_id, key").fetchall()
    assert names == ["smoke_test"] and n_done == smoke_sweep.n_trials
    tagged = {json.loads(v) for k, v in attrs if k == "tune_trial_id"}  # the dashboard joins trials.parquet on these
    assert tagged == set(pd.read_parquet(smoke_sweep.folder / "trials.parquet")["trial_id"])
    assert [json.loads(v) for k, v in attrs if k == "tune_status"] == ["completed"] * smoke_sweep.n_trials
    assert (smoke_sweep.folder / "spec.yaml").is_file()


def test_export_rebuilds_the_same_parquet_from_tune(smoke_sweep, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from hdc_ray.tune.export import export_experiment

    n_trials, n_epochs = export_experiment(smoke_sweep.folder / "tune", tmp_path)
    assert (n_trials, n_epochs) == (smoke_sweep.n_trials, 2 * smoke_sweep.n_trials)
    live = pd.read_parquet(smoke_sweep.folder / "trials.parquet").set_index("trial_id").sort_index()
    rebuilt = pd.read_parquet(tmp_path / "trials.parquet").set_index("trial_id").sort_index()
    for column in ("status", "test_dice_fg", "val_dice_fg", "split_hash", "best_epoch", "cfg.loss.w_mi", "label_ratio"):
        assert rebuilt[column].tolist() == pytest.approx(live[column].tolist()) if live[column].dtype.kind == "f" else rebuilt[column].tolist() == live[column].tolist()


def test_a_second_sweep_of_the_same_name_needs_resume(smoke_sweep) -> None:  # type: ignore[no-untyped-def]
    from hdc_ray.tune.spec import SpecError

    with pytest.raises(SpecError, match="--resume"):
        run_sweep(load_spec("smoke"), results=str(smoke_sweep.folder.parent), name="smoke_test")
    with pytest.raises(SpecError, match="no interrupted sweep"):
        run_sweep(load_spec("smoke"), results=str(smoke_sweep.folder.parent), name="never_ran", resume=True)


def test_report_on_the_smoke_sweep_writes_every_plot(smoke_sweep, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from hdc_ray.cli import main

    out = tmp_path / "report"
    code = main(["report", str(smoke_sweep.folder.parent), "--sweep", "smoke_test", "--out", str(out)])
    assert code == 0
    markdown = (out / "report.md").read_text()
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} >= {"label_budget.png", "learning_curves.png", "pareto.png"}
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert f"]({png.name})" in markdown
    assert (out / "report.html").is_file()


def test_the_ray_train_launcher_still_runs_one_worker_trials(ray_session: None, tmp_path: Path) -> None:
    """resources.launcher=train keeps the DDP code path (Train controller + worker group) for one worker."""
    spec = load_spec("smoke", ["search.trials=1", "resources.launcher=train"])
    assert not spec.resources.in_trial
    folder, grid = run_sweep(spec, results=str(tmp_path), name="via_train")
    assert grid[0].error is None
    row = pd.read_parquet(f"{folder}/trials.parquet").iloc[0]
    assert row["status"] == "completed" and "/train/" in row["checkpoint_path"]  # Train's own run folder
    assert (Path(folder) / "train").is_dir()


def test_a_reused_trial_process_gives_the_numbers_of_a_fresh_one(ray_session: None, tmp_path: Path) -> None:
    """Tune reuses trial processes (``reuse_actors``): a trial run after another in the same process must
    train exactly as it does alone in a fresh one, or reuse would leak state between trials."""
    common = ["base=tiny", "overrides={train.epochs: 1}", "exclude=[]", "seeds=[0]", "search.concurrency=1",
              "variants={supervised: {train.method: supervised}}"]  # fmt: skip
    pair = load_spec("study", [*common, "space={data.label_count: {grid: [4, 8]}}"])
    alone = load_spec("study", [*common, "space={data.label_count: {grid: [8]}}"])
    after, _ = run_sweep(pair, results=str(tmp_path), name="pair")
    fresh, _ = run_sweep(alone, results=str(tmp_path), name="alone")
    second = pd.read_parquet(f"{after}/trials.parquet").set_index("n_labeled").loc[8]
    single = pd.read_parquet(f"{fresh}/trials.parquet").set_index("n_labeled").loc[8]
    assert second["status"] == single["status"] == "completed"
    for metric in ("val_dice_fg", "test_dice_fg", "test_hd95_fg", "best_epoch"):
        assert second[metric] == pytest.approx(single[metric], abs=1e-6), metric
