"""Keeps a sweep's rows and rewrites ``trials.parquet`` / ``history.parquet`` atomically after each change.

Local files are written to ``*.tmp`` and renamed (``os.replace``), so a reader never sees half a file;
object stores (``s3://``, ``gs://``) replace whole objects on upload, which is atomic there already.
Rows already on disk are loaded first, so a resumed sweep keeps what it had written.
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from hdc_ray.results.schema import to_table

TRIALS_FILE = "trials.parquet"
HISTORY_FILE = "history.parquet"


class ResultsWriter:
    def __init__(self, folder: str, trials_schema: pa.Schema, history_schema: pa.Schema) -> None:
        self.filesystem: fs.FileSystem
        self.folder: str
        self.filesystem, self.folder = fs.FileSystem.from_uri(folder) if "://" in folder else (fs.LocalFileSystem(), os.path.abspath(folder))
        self.trials_schema, self.history_schema = trials_schema, history_schema
        self.filesystem.create_dir(self.folder, recursive=True)
        self.trials: dict[str, dict[str, Any]] = {r["trial_id"]: r for r in self._read(TRIALS_FILE)}
        self.history: dict[tuple[str, int], dict[str, Any]] = {(r["trial_id"], int(r["epoch"])): r for r in self._read(HISTORY_FILE)}

    def put_trial(self, row: dict[str, Any]) -> None:
        self.trials[row["trial_id"]] = row

    def put_epoch(self, row: dict[str, Any]) -> None:
        """Keyed by (trial, epoch): an epoch reported again after a restart replaces the first report."""
        self.history[(row["trial_id"], int(row["epoch"]))] = row

    def flush(self) -> None:
        self._write(TRIALS_FILE, to_table(sorted(self.trials.values(), key=_trial_order), self.trials_schema))
        self._write(HISTORY_FILE, to_table([self.history[k] for k in sorted(self.history)], self.history_schema))

    def _read(self, name: str) -> list[dict[str, Any]]:
        path = f"{self.folder}/{name}"
        if self.filesystem.get_file_info(path).type != fs.FileType.File:
            return []
        return pq.read_table(path, filesystem=self.filesystem).to_pylist()

    def _write(self, name: str, table: pa.Table) -> None:
        path = f"{self.folder}/{name}"
        if isinstance(self.filesystem, fs.LocalFileSystem):
            pq.write_table(table, path + ".tmp")
            os.replace(path + ".tmp", path)
        else:
            pq.write_table(table, path, filesystem=self.filesystem)


def _trial_order(row: dict[str, Any]) -> tuple[bool, str, str]:
    started = row.get("started_at")
    return (started is None, str(started), row["trial_id"])
