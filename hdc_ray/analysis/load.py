"""Read sweeps from their Parquet files (docs/results-schema.md) into tidy DataFrames.

``RESULTS/<sweep>/trials.parquet`` holds one row per trial, ``RESULTS/<sweep>/history.parquet`` one
row per trial per epoch: each a folder of part files (the last row of a trial, or of a trial's epoch,
wins) or, from an earlier hdc-ray, a single file. Many sweeps are concatenated; ``(sweep, trial_id)``
identifies a trial.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.fs as pafs

from hdc_ray.analysis.tables import AnalysisError
from hdc_ray.results import dataset
from hdc_ray.results.columns import FINISHED_STATUSES, SCHEMA_VERSION, STATUSES
from hdc_ray.results.dataset import HISTORY_FILE, TRIALS_FILE

REQUIRED_TRIAL_COLUMNS = ("trial_id", "status", "method", "label_ratio", "seed")
ROUNDS_FILE = "rounds.json"  # hdc_ray.tune.rounds writes it (the analysis never imports the Tune layer)


@dataclass(frozen=True)
class Results:
    """Trials and per-epoch history of one or more sweeps.

    ``trials``: every row of every ``trials.parquet`` (all statuses).
    ``history``: every row of every ``history.parquet`` (empty when a sweep has none yet).
    """

    trials: pd.DataFrame
    history: pd.DataFrame
    sweeps: tuple[str, ...]
    source: str  # the RESULTS location as given (folder or URI)
    rounds: dict[str, dict[str, Any]] = field(default_factory=dict)  # sweep -> its rounds.json (studies with `stopping`)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # sweep -> its spec.yaml as written (where there is one)

    def target_dice(self) -> float | None:
        """The Dice the (first) study's spec asks the budget advisor about (``target_dice``), or None."""
        for sweep in self.sweeps:
            value = self.specs.get(sweep, {}).get("target_dice")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
                return float(value)
        return None

    def decided_on(self) -> str | None:
        """The metric a study in rounds decided on (``rounds.json``'s rule): the one its answer must be given on."""
        for sweep in self.sweeps:
            metric = (self.rounds.get(sweep, {}).get("rule") or {}).get("metric")
            if isinstance(metric, str):
                return metric
        return None

    @property
    def finished(self) -> pd.DataFrame:
        """Trials that count for analyses (``completed`` or ``early_stopped``)."""
        return self.trials[self.trials["status"].isin(FINISHED_STATUSES)]

    def status_counts(self) -> pd.DataFrame:
        """How far along is each sweep? Trials per status, one row per sweep."""
        counts = pd.crosstab(self.trials["sweep"], self.trials["status"])
        counts = counts.reindex(index=list(self.sweeps), fill_value=0)
        for status in STATUSES:
            if status not in counts.columns:
                counts[status] = 0
        counts["total"] = counts.sum(axis=1)
        counts.columns.name = None
        return counts


def read_results(results_dir: str | Path, sweeps: Sequence[str] | None = None) -> Results:
    """Load the sweeps under ``results_dir`` (a folder, a single sweep folder, or an s3:// / gs:// URI).

    ``sweeps`` selects sweep folders by name. Raises :class:`AnalysisError` with a message for the
    user when the folder, a file or a required column is missing, or schema versions disagree.
    """
    fs, root = _filesystem(str(results_dir))
    folders = _sweep_folders(fs, root, str(results_dir), sweeps)
    trials = {name: _read_trials(fs, path) for name, path in folders.items()}
    _check_versions({name: _version(df, f"{folders[name]}/{TRIALS_FILE}") for name, df in trials.items()})
    history = [_read_history(fs, path, name) for name, path in folders.items()]
    return Results(
        trials=_concat([_with_sweep(df, name) for name, df in trials.items()]),
        history=_concat([h for h in history if h is not None]),
        sweeps=tuple(folders),
        source=str(results_dir),
        rounds={name: r for name, path in folders.items() if (r := _read_rounds(fs, path)) is not None},
        specs={name: spec for name, path in folders.items() if (spec := _read_spec(fs, path)) is not None},
    )


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path in it: local folders, ``file://``, ``s3://``, ``gs://``."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except Exception as exc:  # unknown scheme, missing credentials, ...
        raise AnalysisError(f"cannot open results location '{uri}': {exc}") from exc
    return fs, path.rstrip("/")


def _is_file(fs: pafs.FileSystem, path: str) -> bool:
    """A table: a part folder or a single file."""
    return dataset.exists(fs, path)


def _sweep_folders(fs: pafs.FileSystem, root: str, shown: str, sweeps: Sequence[str] | None) -> dict[str, str]:
    kind = fs.get_file_info(root).type
    if kind == pafs.FileType.NotFound:
        raise AnalysisError(f"results directory '{shown}' does not exist")
    if kind != pafs.FileType.Directory:
        raise AnalysisError(f"'{shown}' is not a directory; pass the RESULTS folder of a sweep run")
    if _is_file(fs, f"{root}/{TRIALS_FILE}"):  # a single sweep folder
        found = {root.rstrip("/").rpartition("/")[2]: root}
    else:
        subdirs = fs.get_file_info(pafs.FileSelector(root))
        found = {
            info.base_name: info.path
            for info in sorted(subdirs, key=lambda i: i.base_name)
            if info.type == pafs.FileType.Directory and _is_file(fs, f"{info.path}/{TRIALS_FILE}")
        }
    if not found:
        raise AnalysisError(
            f"no sweep results under '{shown}': expected {shown.rstrip('/')}/<sweep>/{TRIALS_FILE} "
            "(a sweep writes it when its first trial finishes)"
        )
    if not sweeps:
        return found
    missing = [s for s in sweeps if s not in found]
    if missing:
        raise AnalysisError(f"sweep(s) {', '.join(missing)} not found under '{shown}'; available: {', '.join(found)}")
    return {s: found[s] for s in dict.fromkeys(sweeps)}


def _read_parquet(fs: pafs.FileSystem, path: str) -> pd.DataFrame:
    try:
        table = dataset.read_table(fs, path, dataset.LAYOUTS[path.rpartition("/")[2]])
        return table.to_pandas()
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise AnalysisError(f"cannot read '{path}': {exc}") from exc


def _read_trials(fs: pafs.FileSystem, folder: str) -> pd.DataFrame:
    path = f"{folder}/{TRIALS_FILE}"
    df = _read_parquet(fs, path)
    if "schema_version" not in df.columns:
        raise AnalysisError(f"'{path}' has no schema_version column: not an hdc-ray results file")
    missing = [c for c in REQUIRED_TRIAL_COLUMNS if c not in df.columns]
    if missing:
        raise AnalysisError(f"'{path}' lacks required column(s): {', '.join(missing)}")
    return df


def _read_rounds(fs: pafs.FileSystem, folder: str) -> dict[str, Any] | None:
    """A study's ``rounds.json`` (written by ``hdc_ray.tune.rounds``), or None; an unreadable one is reported, not fatal."""
    path = f"{folder}/{ROUNDS_FILE}"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    try:
        with fs.open_input_stream(path) as f:
            return dict(json.loads(f.read().decode()))
    except (OSError, ValueError) as exc:
        return {"rounds": [], "stopped": None, "error": f"cannot read {path}: {exc}"}


def _read_spec(fs: pafs.FileSystem, folder: str) -> dict[str, Any] | None:
    """The sweep's ``spec.yaml`` (the spec as it ran), or None when absent or unreadable (the report then uses its flags)."""
    import yaml

    path = f"{folder}/spec.yaml"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    try:
        with fs.open_input_stream(path) as f:
            raw = yaml.safe_load(f.read().decode())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return raw if isinstance(raw, dict) else None


def _read_history(fs: pafs.FileSystem, folder: str, name: str) -> pd.DataFrame | None:
    path = f"{folder}/{HISTORY_FILE}"
    if not _is_file(fs, path):
        return None
    df = _read_parquet(fs, path)
    if "schema_version" in df.columns:
        _check_versions({name: _version(df, path)})
    return _with_sweep(df, name)


def _version(df: pd.DataFrame, path: str) -> int | None:
    versions = sorted({int(v) for v in df["schema_version"].dropna().unique()})
    if len(versions) > 1:
        raise AnalysisError(f"'{path}' mixes results schema versions {versions}")
    return versions[0] if versions else None  # an empty file carries no version


def _check_versions(versions: dict[str, int | None]) -> None:
    known = {name: v for name, v in versions.items() if v is not None}
    if len(set(known.values())) > 1:
        listed = ", ".join(f"{name}: v{v}" for name, v in known.items())
        raise AnalysisError(
            f"sweeps were written with different results schema versions ({listed}); this "
            f"hdc-ray reads v{SCHEMA_VERSION}: report them separately with --sweep"
        )
    for name, v in known.items():
        if v != SCHEMA_VERSION:
            raise AnalysisError(
                f"sweep '{name}' was written with results schema v{v}, this hdc-ray reads "
                f"v{SCHEMA_VERSION}: use the hdc-ray version that wrote it"
            )


def _with_sweep(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Key every row by the sweep folder name (what ``--sweep`` selects)."""
    out = df.copy()
    out["sweep"] = pd.Series(name, index=out.index, dtype="str")
    return out


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty] or frames[:1]
    if not frames:
        return pd.DataFrame(columns=["sweep", "trial_id", "epoch"])
    return pd.concat(frames, ignore_index=True, sort=False)
