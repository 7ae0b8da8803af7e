"""Schema, rows and the atomic writer, without Ray: fixed types, known rows, nothing half-written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hdc_ray.config import Config, load_config
from hdc_ray.results.rows import error_line, final_status, history_row, trial_row
from hdc_ray.results.schema import SCHEMA_VERSION, config_types, history_schema, metric_columns, to_table, trials_schema
from hdc_ray.results.writer import ResultsWriter

CFG = load_config("tiny")


def _final_report(epoch: int = 2) -> dict[str, float | str]:
    report: dict[str, float | str] = {"epoch": float(epoch), "best_epoch": 1.0, "done": 1.0, "label_ratio": 0.25, "n_labeled": 6,
                                      "split_hash": "abc", "node": "n1", "epoch_time_s": 2.0, "images_per_s": 10.0}  # fmt: skip
    report |= {c: 0.9 for c in metric_columns(CFG, "val")}  # last epoch's validation ...
    report |= {f"best_{c}": 0.5 for c in metric_columns(CFG, "val")}  # ... and the best epoch's
    report |= {c: 0.4 for c in metric_columns(CFG, "test")}
    return report


def test_config_columns_are_typed_from_annotations_not_values() -> None:
    types = config_types(Config())
    assert types["cfg.loss.w_cg"] == pa.float64() and types["cfg.train.epochs"] == pa.int64()
    assert types["cfg.dist.use_gpu"] == pa.bool_() and types["cfg.train.method"] == pa.string()
    assert types["cfg.data.label_count"] == pa.int64()  # int | None: nullable int, not string
    assert types["cfg.loss.cg_levels"] == pa.string()  # tuple: comma-joined


def test_metric_columns_follow_the_task_classes() -> None:
    assert metric_columns(CFG, "test")[:3] == ["test_dice_fg", "test_dice_anterior_lip", "test_dice_posterior_lip"]
    psfh = load_config("tiny", ["data.task=psfh"])
    assert "val_hd95_fetal_head" in metric_columns(psfh, "val")


def test_a_failed_trial_keeps_every_column_type() -> None:
    schema = trials_schema(CFG)
    ok = trial_row("s", "t1", CFG, status="completed", results=[_final_report()])
    failed = trial_row("s", "t2", CFG, status="failed", results=[], error="boom")
    for rows in ([failed], [ok, failed], [failed, ok]):
        assert to_table(rows, schema).schema == schema
    table = to_table([failed], schema)
    assert table.column("test_dice_fg").null_count == 1 and table.column("error").to_pylist() == ["boom"]


def test_trial_row_takes_best_epoch_validation_and_final_test_metrics() -> None:
    row = trial_row("s", "t1", CFG, status=final_status([_final_report()]), results=[_final_report()], variant="no_cg")
    assert row["status"] == "completed" and row["variant"] == "no_cg" and row["schema_version"] == SCHEMA_VERSION
    assert row["val_dice_fg"] == 0.5 and row["test_dice_fg"] == 0.4  # best epoch, not the last one
    assert row["epochs_done"] == 2.0 and row["best_epoch"] == 1.0 and row["cfg.train.method"] == "hdc"
    assert row["train_time_s"] == 2.0 and row["split_hash"] == "abc" and row["method"] == "hdc"


def test_time_totals_use_every_epoch_including_those_before_a_restart() -> None:
    earlier = [{"epoch": 1.0, "epoch_time_s": 3.0, "images_per_s": 20.0}]
    row = trial_row("s", "t1", CFG, status="completed", results=[_final_report()], epochs=[*earlier, _final_report()])
    assert row["train_time_s"] == 5.0 and row["images_per_s"] == 15.0


def test_status_error_and_seed_helpers() -> None:
    assert final_status([{"epoch": 1.0}]) == "early_stopped" and final_status([]) == "early_stopped"
    assert error_line("Traceback...\n  File x\nValueError: bad lr\n") == "ValueError: bad lr"


def test_writer_reloads_and_replaces_a_repeated_epoch(tmp_path: Path) -> None:
    writer = ResultsWriter(str(tmp_path), trials_schema(CFG), history_schema(CFG))
    started = datetime(2026, 1, 1, tzinfo=UTC)
    writer.put_trial(trial_row("s", "t1", CFG, status="running", results=[], started_at=started))
    writer.put_epoch(history_row("s", "t1", {"epoch": 1.0, "train_loss": 2.0, "val_dice_fg": 0.1, "time_total_s": 9.0}))
    writer.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.parquet", "trials.parquet"]
    again = ResultsWriter(str(tmp_path), trials_schema(CFG), history_schema(CFG))  # a resumed sweep
    assert again.read("trials.parquet").to_pylist()[0]["started_at"] == started
    again.put_epoch(history_row("s", "t1", {"epoch": 1.0, "train_loss": 1.5}))  # epoch 1 reported again after a restart
    again.put_epoch(history_row("s", "t1", {"epoch": 2.0, "train_loss": 1.0}))
    again.compact()
    history = pq.read_table(tmp_path / "history.parquet").to_pylist()
    assert [(r["epoch"], r["train_loss"]) for r in history] == [(1, 1.5), (2, 1.0)]
    assert "time_total_s" not in history[0]  # Tune's bookkeeping is not part of the schema


@pytest.mark.parametrize("bad", [{"epoch": "x"}])
def test_a_value_of_the_wrong_kind_fails_loudly(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        to_table([history_row("s", "t", bad)], history_schema(CFG))
