"""An append-only Parquet table: a folder of part files, read as one table with "last row of a key wins".

``RESULTS/NAME/trials.parquet/`` and ``RESULTS/NAME/history.parquet/`` are such folders (pure pyarrow,
no Ray, no hdc_ray config). Each flush adds one part holding only the rows since the previous flush, so
writing costs O(new rows), not O(everything so far). The layout is what Spark, pandas, pyarrow, DuckDB
and polars read as one table::

    trials.parquet/part-0000000001-0000000001.parquet    # the rows of flush 1
    trials.parquet/part-0000000002-0000000017.parquet    # flushes 2..17, merged
    trials.parquet/.part-0000000018-0000000018.parquet.tmp   # being written: hidden from every reader

A part is named by the range of flushes it holds; names sort in write order. A key (a trial, or a trial's
epoch) may appear in several parts when it was written again (a trial's status changed, an epoch was
reported again after a restart): the last occurrence, by part order then row order, is the current row.
:func:`read_table` applies that rule; :func:`compact` rewrites a folder as one part holding each key once.
Merging consecutive parts never changes what a reader sees, so readers may read while the writer merges.

Local parts are written to a hidden ``.tmp`` file, fsynced, renamed, and the folder fsynced, so neither a
killed process nor a power loss leaves half a part visible. Object stores (``s3://``, ``gs://``) make an
uploaded object visible whole, so parts are written in place there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs

TRIALS_FILE = "trials.parquet"  # one row per trial: a trial's status changes, its last row is current
HISTORY_FILE = "history.parquet"  # one row per trial per epoch: an epoch reported again replaces the first report
_PART = re.compile(r"^part-(\d{10})-(\d{10})\.parquet$")
_ROW = "__hdc_ray_row"


@dataclass(frozen=True)
class Layout:
    """How a table's rows are identified (``keys``: the last row of a key wins) and ordered once compacted."""

    keys: tuple[str, ...]
    order: tuple[str, ...]
    nulls_last: str | None = None  # a column whose nulls sort after every value (trials not started yet)


TRIALS = Layout(keys=("trial_id",), order=("started_at", "trial_id"), nulls_last="started_at")
HISTORY = Layout(keys=("trial_id", "epoch"), order=("trial_id", "epoch"))
LAYOUTS = {TRIALS_FILE: TRIALS, HISTORY_FILE: HISTORY}


@dataclass(frozen=True)
class Part:
    path: str
    first: int  # the first and last flush the part holds
    last: int


@dataclass(frozen=True)
class TableStats:
    """What :func:`compact` did to one table folder."""

    parts_before: int
    parts_after: int
    rows_before: int  # every stored row, superseded ones included
    rows_after: int  # one per key
    bytes_after: int


def part_name(first: int, last: int) -> str:
    return f"part-{first:010d}-{last:010d}.parquet"


def is_legacy_file(filesystem: fs.FileSystem, path: str) -> bool:
    """Results written before the dataset layout: ``trials.parquet`` is one plain Parquet file."""
    return filesystem.get_file_info(path).type == fs.FileType.File


def exists(filesystem: fs.FileSystem, path: str) -> bool:
    return filesystem.get_file_info(path).type != fs.FileType.NotFound


def list_parts(filesystem: fs.FileSystem, folder: str) -> list[Part]:
    """The visible parts of a table folder in write order (temporary files and other names are not parts)."""
    infos = filesystem.get_file_info(fs.FileSelector(folder, allow_not_found=True))
    parts = []
    for info in infos:
        match = _PART.match(info.base_name)
        if match and info.type == fs.FileType.File:
            parts.append(Part(info.path, int(match[1]), int(match[2])))
    return sorted(parts, key=lambda p: (p.first, p.last))


def open_folder(filesystem: fs.FileSystem, folder: str) -> list[Part]:
    """Create the table folder (moving a legacy single file into it as its first part); return its parts."""
    if is_legacy_file(filesystem, folder):
        _migrate_legacy_file(filesystem, folder)
    hidden = _hidden_legacy(folder)
    if is_legacy_file(filesystem, hidden):  # a migration interrupted between its two renames
        filesystem.create_dir(folder, recursive=True)
        filesystem.move(hidden, f"{folder}/{part_name(0, 0)}")
    filesystem.create_dir(folder, recursive=True)
    return list_parts(filesystem, folder)


def write_part(filesystem: fs.FileSystem, folder: str, table: pa.Table, first: int, last: int) -> Part:
    """Write ``table`` as the part holding flushes ``first..last``, visible only once complete and durable.

    A one-flush part is short-lived (merged soon) and small: written without compression, dictionaries or
    statistics, a third cheaper than the defaults used for merged parts.
    """
    path = f"{folder}/{part_name(first, last)}"
    options = {"compression": "none", "use_dictionary": False, "write_statistics": False} if first == last else {}
    if not isinstance(filesystem, fs.LocalFileSystem):
        pq.write_table(table, path, filesystem=filesystem, **options)  # an object appears whole on upload
        return Part(path, first, last)
    tmp = f"{folder}/.{part_name(first, last)}.tmp"  # the leading dot hides it from pyarrow, pandas, DuckDB globs
    pq.write_table(table, tmp, **options)
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_dir(folder)  # the rename itself survives a power loss
    return Part(path, first, last)


def read_parts(filesystem: fs.FileSystem, parts: Sequence[Part], columns: Sequence[str] | None = None) -> pa.Table:
    """The parts' rows concatenated in write order (superseded rows included)."""
    tables = [pq.read_table(p.path, filesystem=filesystem, columns=list(columns) if columns else None) for p in parts]
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def last_wins(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """Keep the last row of each key, in the order of those last rows."""
    if table.num_rows == 0:
        return table
    numbered = table.append_column(_ROW, pa.array(range(table.num_rows), pa.int64()))
    last = numbered.group_by(list(keys), use_threads=False).aggregate([(_ROW, "max")]).column(f"{_ROW}_max")
    return table.take(last.take(pc.sort_indices(last)))  # the last rows, in their order


def ordered(table: pa.Table, layout: Layout) -> pa.Table:
    if table.num_rows == 0:
        return table
    keys = [(c, "ascending") for c in layout.order if c in table.column_names]
    if layout.nulls_last in table.column_names:
        keys.insert(0, (_ROW, "ascending"))
        table = table.append_column(_ROW, pc.is_null(table.column(layout.nulls_last)))
    return table.sort_by(keys).drop_columns([c for c in (_ROW,) if c in table.column_names])


def read_table(filesystem: fs.FileSystem, path: str, layout: Layout, columns: Sequence[str] | None = None) -> pa.Table:
    """The current rows of a table: a dataset folder (last row of each key wins) or a legacy single file."""
    if is_legacy_file(filesystem, path):
        return pq.read_table(path, filesystem=filesystem, columns=list(columns) if columns else None)
    wanted = None if columns is None else list(dict.fromkeys([*layout.keys, *columns]))
    table = read_parts(filesystem, list_parts(filesystem, path), wanted)
    if set(layout.keys) <= set(table.column_names):  # else not hdc-ray rows: the caller's checks say so
        table = last_wins(table, layout.keys)
    return table.select(list(columns)) if columns is not None else table


def merge(filesystem: fs.FileSystem, folder: str, parts: Sequence[Part], layout: Layout, known: dict[str, pa.Table] | None = None) -> Part:
    """Replace consecutive ``parts`` by one holding each key's last row; readers see the same table throughout.

    The merged part is visible before its inputs are deleted; in between, its rows equal the inputs' last
    rows, so either order of the two in a read yields the same table.
    """
    known = known or {}
    unread = [p for p in parts if p.path not in known]
    tables = dict(zip([p.path for p in unread], [read_parts(filesystem, [p]) for p in unread], strict=True))
    table = pa.concat_tables([known.get(p.path) or tables[p.path] for p in parts], promote_options="permissive")
    table = ordered(last_wins(table, layout.keys), layout)
    merged = write_part(filesystem, folder, table, parts[0].first, parts[-1].last)
    for part in parts:
        if part.path != merged.path:
            filesystem.delete_file(part.path)
    if isinstance(filesystem, fs.LocalFileSystem):
        _fsync_dir(folder)
    return merged


def compact(filesystem: fs.FileSystem, folder: str, layout: Layout) -> TableStats:
    """Rewrite a table folder (or a legacy file) as one part holding each key once, in ``layout.order``."""
    parts = open_folder(filesystem, folder)
    parts_before, rows_before = len(parts), sum(_num_rows(filesystem, p) for p in parts)
    if len(parts) > 1:
        parts = [merge(filesystem, folder, parts, layout)]
    size = sum(filesystem.get_file_info(p.path).size or 0 for p in parts)
    return TableStats(parts_before, len(parts), rows_before, sum(_num_rows(filesystem, p) for p in parts), size)


def _num_rows(filesystem: fs.FileSystem, part: Part) -> int:
    with filesystem.open_input_file(part.path) as fh:
        return int(pq.ParquetFile(fh).metadata.num_rows)


def compact_sweep(folder: str) -> dict[str, TableStats]:
    """Compact both tables of a sweep folder (``RESULTS/NAME``, a local path or a URI): one part each."""
    filesystem, root = filesystem_of(folder)
    if not exists(filesystem, f"{root}/{TRIALS_FILE}"):
        raise FileNotFoundError(f"{folder}: no {TRIALS_FILE} here; pass a sweep's results folder (RESULTS/NAME)")
    return {name: compact(filesystem, f"{root}/{name}", layout) for name, layout in LAYOUTS.items() if exists(filesystem, f"{root}/{name}")}


def filesystem_of(folder: str) -> tuple[fs.FileSystem, str]:
    """A local folder (made absolute) or a URI (``s3://``, ``gs://``) -> (filesystem, path in it)."""
    if "://" in folder:
        filesystem, path = fs.FileSystem.from_uri(folder)
        return filesystem, path.rstrip("/")
    return fs.LocalFileSystem(), os.path.abspath(os.path.expanduser(folder))


def read_text(folder: str, name: str) -> str | None:
    """``folder/name`` as text (a local folder or a URI), or None when it does not exist."""
    filesystem, root = filesystem_of(folder)
    path = f"{root}/{name}"
    if filesystem.get_file_info(path).type != fs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as f:
        return bytes(f.read()).decode()


def write_text(folder: str, name: str, text: str) -> None:
    """Replace ``folder/name`` whole: locally a temporary name then a rename; on an object store one upload."""
    filesystem, root = filesystem_of(folder)
    filesystem.create_dir(root, recursive=True)
    target = f"{root}/{name}"
    tmp = target if "://" in folder else f"{root}/.{name}.tmp"
    with filesystem.open_output_stream(tmp) as f:
        f.write(text.encode())
    if tmp != target:
        filesystem.move(tmp, target)


def _hidden_legacy(folder: str) -> str:
    head, _, name = folder.rpartition("/")
    return f"{head}/.{name}.legacy"


def _migrate_legacy_file(filesystem: fs.FileSystem, folder: str) -> None:
    """``trials.parquet`` (a file) -> ``trials.parquet/part-0000000000-0000000000.parquet``: two renames."""
    hidden = _hidden_legacy(folder)
    filesystem.move(folder, hidden)
    filesystem.create_dir(folder, recursive=True)
    filesystem.move(hidden, f"{folder}/{part_name(0, 0)}")


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    if os.name == "nt":  # Windows cannot open a directory; NTFS journals the rename
        return
    _fsync_file(path)
