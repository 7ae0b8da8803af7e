"""Appends a sweep's rows to ``trials.parquet/`` and ``history.parquet/``: each flush writes only the new rows.

The two tables are append-only part folders (:mod:`hdc_ray.results.dataset`): a flush turns the rows put
since the previous flush into one part per table, so its cost follows the new rows, not the sweep's size,
and the writer keeps nothing but those pending rows. A row written again (a trial's new status, an epoch
reported again after a restart) supersedes the earlier one for every reader; :meth:`ResultsWriter.compact`
(run at the end of a sweep, or ``hdc-ray compact``) rewrites each table as one part holding each row once.

Small parts are merged as they accumulate (``MERGE_FANOUT`` parts of one size into one part of the next),
so a folder holds a few dozen parts, not one per flush, and each row is rewritten a few times at most.
Reopening a folder continues it: a resumed sweep appends after what is there, and results written as
single files by an earlier hdc-ray become the first part of each folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyarrow import fs

from hdc_ray.results import dataset
from hdc_ray.results.dataset import HISTORY_FILE, TRIALS_FILE, Layout, Part, TableStats
from hdc_ray.results.schema import to_table

MERGE_FANOUT = 16  # this many parts of one size merge into one: at most ~16 parts per size level
FLUSH_ROWS = 50_000  # pending rows that force a flush, so a long batch (export) stays in bounded memory

Pending = dict[str, dict[Any, dict[str, Any]]]  # table name -> key -> the row last put since the last flush

__all__ = ["HISTORY_FILE", "MERGE_FANOUT", "TRIALS_FILE", "Pending", "ResultsWriter"]


@dataclass
class _Table:
    folder: str
    schema: pa.Schema
    layout: Layout
    parts: list[Part]
    pending: dict[Any, dict[str, Any]] = field(default_factory=dict)  # key -> the row last put since the flush
    recent: dict[str, pa.Table] = field(default_factory=dict)  # the one-flush parts not merged yet, kept for the merge

    @property
    def next_seq(self) -> int:
        return max((p.last for p in self.parts), default=0) + 1


class ResultsWriter:
    """``overwrite``: start both tables empty (``hdc-ray export`` rebuilding them), instead of continuing them.
    ``flush_rows``: pending rows that make a put flush at once; None: only explicit flushes write (a caller
    that writes on another thread, :class:`~hdc_ray.results.background.BackgroundFlusher`).
    """

    def __init__(
        self, folder: str, trials_schema: pa.Schema, history_schema: pa.Schema, *, overwrite: bool = False, flush_rows: int | None = FLUSH_ROWS
    ) -> None:
        self.filesystem: fs.FileSystem
        self.folder: str
        self.filesystem, self.folder = dataset.filesystem_of(folder)
        self.filesystem.create_dir(self.folder, recursive=True)
        self.flush_rows = flush_rows
        self._tables = {
            TRIALS_FILE: self._open(TRIALS_FILE, trials_schema, overwrite),
            HISTORY_FILE: self._open(HISTORY_FILE, history_schema, overwrite),
        }

    def put_trial(self, row: dict[str, Any]) -> None:
        self._put(TRIALS_FILE, row["trial_id"], row)

    def put_epoch(self, row: dict[str, Any]) -> None:
        """Keyed by (trial, epoch): an epoch reported again after a restart replaces the first report."""
        self._put(HISTORY_FILE, (row["trial_id"], int(row["epoch"])), row)

    @property
    def pending_rows(self) -> int:
        return sum(len(t.pending) for t in self._tables.values())

    def flush(self) -> None:
        """Append the rows put since the last flush (one part per table that has any); nothing else is rewritten."""
        self.write_pending(self.take_pending())

    def take_pending(self) -> Pending:
        """Hand over the rows put since the last flush, for :meth:`write_pending` (possibly on another thread)."""
        taken = {name: table.pending for name, table in self._tables.items() if table.pending}
        for name in taken:
            self._tables[name].pending = {}
        return taken

    def write_pending(self, taken: Pending) -> None:
        """Write rows from :meth:`take_pending` as one part per table. One thread at a time: parts are not locked."""
        for name, pending in taken.items():
            table = self._tables[name]
            seq, rows = table.next_seq, to_table(list(pending.values()), table.schema)
            part = dataset.write_part(self.filesystem, table.folder, rows, seq, seq)
            table.parts.append(part)
            table.recent[part.path] = rows
            self._merge_small_parts(table)

    def return_pending(self, taken: Pending) -> None:
        """Put back rows whose write failed, under any row put since (the newer report of a key wins)."""
        for name, pending in taken.items():
            table = self._tables[name]
            table.pending = pending | table.pending

    def compact(self) -> dict[str, TableStats]:
        """Flush, then rewrite each table as one part holding each row once (the end of a sweep)."""
        self.flush()
        stats = {}
        for name, table in self._tables.items():
            stats[name] = dataset.compact(self.filesystem, table.folder, table.layout)
            table.parts = dataset.list_parts(self.filesystem, table.folder)
            table.recent.clear()
        return stats

    def read(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """The current rows of ``trials.parquet`` or ``history.parquet`` on disk (pending rows not included)."""
        table = self._tables[name]
        return dataset.read_table(self.filesystem, table.folder, table.layout, columns)

    def schema(self, name: str) -> pa.Schema:
        return self._tables[name].schema

    def _open(self, name: str, schema: pa.Schema, overwrite: bool) -> _Table:
        folder = f"{self.folder}/{name}"
        if overwrite and dataset.exists(self.filesystem, folder):
            if dataset.is_legacy_file(self.filesystem, folder):
                self.filesystem.delete_file(folder)
            else:
                self.filesystem.delete_dir(folder)
        parts = dataset.open_folder(self.filesystem, folder)
        if not parts:  # an empty part: every reader finds the table and its schema from the first second
            parts = [dataset.write_part(self.filesystem, folder, schema.empty_table(), 0, 0)]
        return _Table(folder, schema, dataset.LAYOUTS[name], parts)

    def _put(self, name: str, key: Any, row: dict[str, Any]) -> None:
        table = self._tables[name]
        table.pending.pop(key, None)  # re-inserted at the end: the part's row order is the order of last puts
        table.pending[key] = row
        if self.flush_rows is not None and self.pending_rows >= self.flush_rows:
            self.flush()

    def _merge_small_parts(self, table: _Table) -> None:
        """While the last ``MERGE_FANOUT`` parts are all of one size level, merge them into one part."""
        while len(table.parts) >= MERGE_FANOUT and len({_level(p) for p in table.parts[-MERGE_FANOUT:]}) == 1:
            run = table.parts[-MERGE_FANOUT:]
            try:
                merged = dataset.merge(self.filesystem, table.folder, run, table.layout, table.recent)
            except FileNotFoundError:  # `hdc-ray compact` ran meanwhile and merged these parts already
                table.parts = dataset.list_parts(self.filesystem, table.folder)
                table.recent.clear()
                return
            table.parts[-MERGE_FANOUT:] = [merged]
            table.recent.clear()  # at most MERGE_FANOUT small tables are ever kept


def _level(part: Part) -> int:
    """0 for a part of one flush, 1 for one of MERGE_FANOUT flushes, 2 for MERGE_FANOUT**2, ..."""
    span, level = part.last - part.first + 1, 0
    while span >= MERGE_FANOUT:
        span //= MERGE_FANOUT
        level += 1
    return level
