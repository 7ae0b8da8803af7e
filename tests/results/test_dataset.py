"""The append-only results tables: a flush adds one part of new rows, a key's last row wins, nothing half-written
is ever read, a reopened folder continues, compaction keeps the rows and drops the files. Read back by
pyarrow, pandas and DuckDB (an engine independent of Arrow)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from hdc_ray.analysis import read_results
from hdc_ray.config import load_config
from hdc_ray.results import dataset
from hdc_ray.results.dataset import HISTORY, HISTORY_FILE, TRIALS, TRIALS_FILE
from hdc_ray.results.rows import history_row, trial_row
from hdc_ray.results.schema import history_schema, to_table, trials_schema
from hdc_ray.results.writer import MERGE_FANOUT, ResultsWriter

CFG = load_config("tiny")


def _writer(folder: Path) -> ResultsWriter:
    return ResultsWriter(str(folder), trials_schema(CFG), history_schema(CFG))


def _trial(writer: ResultsWriter, trial_id: str, status: str = "running") -> None:
    writer.put_trial(trial_row("s", trial_id, CFG, status=status, results=[]))


def _epoch(writer: ResultsWriter, trial_id: str, epoch: int, loss: float) -> None:
    writer.put_epoch(history_row("s", trial_id, {"epoch": epoch, "train_loss": loss}))


def _parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _history(folder: Path) -> list[tuple[str, int, float]]:
    table = dataset.read_table(dataset.filesystem_of(str(folder))[0], str(folder / HISTORY_FILE), HISTORY)
    return sorted((r["trial_id"], r["epoch"], r["train_loss"]) for r in table.to_pylist())


def test_a_flush_appends_one_part_of_only_the_new_rows(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    _epoch(writer, "t1", 1, 2.0)
    writer.flush()
    _epoch(writer, "t1", 2, 1.0)
    writer.flush()
    writer.flush()  # nothing new: no part
    parts = _parts(tmp_path / HISTORY_FILE)
    assert parts == ["part-0000000000-0000000000.parquet", "part-0000000001-0000000001.parquet", "part-0000000002-0000000002.parquet"]
    assert [pq.read_table(tmp_path / HISTORY_FILE / p).num_rows for p in parts] == [0, 1, 1]  # the first: empty, for the schema
    assert pq.read_schema(tmp_path / HISTORY_FILE / parts[-1]).metadata[b"hdc_ray_schema_version"] == b"1"
    assert _history(tmp_path) == [("t1", 1, 2.0), ("t1", 2, 1.0)]


def test_a_new_folder_is_readable_before_any_row(tmp_path: Path) -> None:
    _writer(tmp_path)
    trials = pd.read_parquet(tmp_path / TRIALS_FILE)
    assert trials.empty and "test_dice_fg" in trials.columns
    assert read_results(tmp_path).trials.empty


def test_a_part_left_half_written_by_a_kill_is_invisible_to_every_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = _writer(tmp_path)
    _epoch(writer, "t1", 1, 2.0)
    writer.flush()
    _epoch(writer, "t1", 2, 1.0)

    def killed(src: str, dst: str) -> None:  # the process dies between writing the temporary file and renaming it
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        writer.flush()
    monkeypatch.undo()
    folder = tmp_path / HISTORY_FILE
    leftover = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert len(leftover) == 1 and leftover[0].name.startswith(".")
    leftover[0].write_bytes(b"PAR1 half a part")  # truncated, as a kill mid-write leaves it
    assert _history(tmp_path) == [("t1", 1, 2.0)]  # the last flush interval is lost, nothing else
    assert len(pd.read_parquet(folder)) == 1
    assert duckdb.sql(f"select count(*) from read_parquet('{folder}/*.parquet')").fetchall() == [(1,)]
    resumed = _writer(tmp_path)  # the restarted driver continues after the visible parts
    _epoch(resumed, "t1", 2, 0.5)
    resumed.flush()
    assert _history(tmp_path) == [("t1", 1, 2.0), ("t1", 2, 0.5)]


def test_a_resumed_writer_continues_and_a_repeated_report_keeps_the_last(tmp_path: Path) -> None:
    first = _writer(tmp_path)
    _trial(first, "t1")
    _trial(first, "t2")
    for epoch in (1, 2, 3):
        _epoch(first, "t1", epoch, 10.0 - epoch)
    first.flush()
    del first  # the driver dies; t1 restarts from its epoch-1 checkpoint
    second = _writer(tmp_path)
    _trial(second, "t1", "completed")
    for epoch in (2, 3, 4):
        _epoch(second, "t1", epoch, 1.0 / epoch)
    second.flush()
    assert _history(tmp_path) == [("t1", 1, 9.0), ("t1", 2, 0.5), ("t1", 3, 1 / 3), ("t1", 4, 0.25)]
    trials = read_results(tmp_path).trials.set_index("trial_id")["status"].to_dict()
    assert trials == {"t1": "completed", "t2": "running"}


def test_compaction_keeps_the_rows_and_leaves_one_file_per_table(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    for n in range(30):  # 30 flushes: each trial starts, reports, a few epochs are reported twice
        _trial(writer, f"t{n % 7}", "running" if n < 20 else "completed")
        _epoch(writer, f"t{n % 7}", n // 7, float(n))
        writer.flush()
    before = read_results(tmp_path)
    files_before = len(_parts(tmp_path / HISTORY_FILE))
    stats = writer.compact()
    after = read_results(tmp_path)
    assert _parts(tmp_path / HISTORY_FILE) == ["part-0000000000-0000000030.parquet"] and len(_parts(tmp_path / TRIALS_FILE)) == 1
    assert stats[HISTORY_FILE].parts_before == files_before > 1 and stats[HISTORY_FILE].rows_after == 30
    assert stats[TRIALS_FILE].rows_before > stats[TRIALS_FILE].rows_after == 7  # superseded trial rows dropped
    pd.testing.assert_frame_equal(before.history.sort_values(["trial_id", "epoch"], ignore_index=True), after.history.sort_values(["trial_id", "epoch"], ignore_index=True))
    pd.testing.assert_frame_equal(before.trials.sort_values("trial_id", ignore_index=True), after.trials.sort_values("trial_id", ignore_index=True))
    raw = pd.read_parquet(tmp_path / HISTORY_FILE)  # once compacted, any reader sees each key once
    assert not raw.duplicated(["trial_id", "epoch"]).any() and list(raw["trial_id"]) == sorted(raw["trial_id"])
    assert dataset.compact_sweep(str(tmp_path))[HISTORY_FILE].parts_after == 1  # idempotent


def test_small_parts_are_merged_as_they_accumulate(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    flushes = 3 * MERGE_FANOUT + 5
    for n in range(flushes):
        _epoch(writer, "t1", n, float(n))
        _epoch(writer, "t1", 0, float(n))  # epoch 0 rewritten on every flush: merges must keep the last
        writer.flush()
    parts = _parts(tmp_path / HISTORY_FILE)
    assert len(parts) < MERGE_FANOUT  # 3 merged parts + the latest few, not one per flush
    history = _history(tmp_path)
    assert len(history) == flushes and history[0] == ("t1", 0, float(flushes - 1))


def test_duckdb_and_pandas_read_the_folder_as_one_table(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    for trial in ("a", "b"):
        _trial(writer, trial, "completed")
        for epoch in (1, 2):
            _epoch(writer, trial, epoch, float(epoch))
        writer.flush()
    writer.compact()
    glob = f"{tmp_path / HISTORY_FILE}/*.parquet"
    assert duckdb.sql(f"select trial_id, count(*) from read_parquet('{glob}') group by trial_id order by trial_id").fetchall() == [("a", 2), ("b", 2)]
    assert len(pd.read_parquet(tmp_path / HISTORY_FILE)) == 4 and set(pd.read_parquet(tmp_path / TRIALS_FILE)["trial_id"]) == {"a", "b"}
    # before compaction, DuckDB applies the last-row-wins rule with the file name and row number
    _trial(writer, "a", "failed")
    writer.flush()
    last = f"""select trial_id, status from read_parquet('{tmp_path / TRIALS_FILE}/*.parquet', filename=true, file_row_number=true)
               qualify row_number() over (partition by trial_id order by filename desc, file_row_number desc) = 1 order by trial_id"""
    assert duckdb.sql(last).fetchall() == [("a", "failed"), ("b", "completed")]


def test_results_written_as_single_files_are_read_and_continued(tmp_path: Path) -> None:
    rows = [trial_row("s", "old", CFG, status="completed", results=[])]
    pq.write_table(to_table(rows, trials_schema(CFG)), tmp_path / TRIALS_FILE)  # the layout before part folders
    pq.write_table(to_table([history_row("s", "old", {"epoch": 1, "train_loss": 3.0})], history_schema(CFG)), tmp_path / HISTORY_FILE)
    assert list(read_results(tmp_path).trials["trial_id"]) == ["old"]
    writer = _writer(tmp_path)  # a resumed sweep turns each file into its folder's first part
    _trial(writer, "new")
    writer.flush()
    assert (tmp_path / TRIALS_FILE).is_dir() and "part-0000000000-0000000000.parquet" in _parts(tmp_path / TRIALS_FILE)
    assert sorted(read_results(tmp_path).trials["trial_id"]) == ["new", "old"]
    assert _history(tmp_path) == [("old", 1, 3.0)]


def test_overwrite_starts_both_tables_empty(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    _trial(writer, "stale")
    writer.flush()
    ResultsWriter(str(tmp_path), trials_schema(CFG), history_schema(CFG), overwrite=True)
    assert dataset.read_table(dataset.filesystem_of(str(tmp_path))[0], str(tmp_path / TRIALS_FILE), TRIALS).num_rows == 0


def test_compacting_a_folder_without_results_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no trials\.parquet"):
        dataset.compact_sweep(str(tmp_path))
