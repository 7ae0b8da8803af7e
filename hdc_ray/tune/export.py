"""``hdc-ray export EXPERIMENT_DIR``: rebuild ``trials.parquet`` / ``history.parquet`` from Tune's own records.

For a sweep whose driver died before writing, results copied from another machine, or after a schema
change: the rows come from each trial's ``result.json`` (every report Tune received) and the experiment
state (status, config, error), through the same row functions the live callback uses.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hdc_ray.results.rows import error_line, final_status, history_row, trial_row
from hdc_ray.results.schema import history_schema, trials_schema
from hdc_ray.results.writer import ResultsWriter
from hdc_ray.tune.spec import Spec, SpecError, load_spec, trial_params

_STATUS = {"TERMINATED": None, "ERROR": "failed", "RUNNING": "running", "PENDING": "running", "PAUSED": "running"}


def export_experiment(experiment: str | Path, out: str | Path, spec: Spec | None = None, sweep: str | None = None) -> tuple[int, int]:
    """Write both tables under ``out`` (replacing what is there, compacted); returns (trials, epoch rows). ``spec`` defaults to ``spec.yaml`` beside the experiment."""
    from ray.tune import ExperimentAnalysis

    experiment = Path(experiment).expanduser().resolve()
    if not experiment.is_dir():
        raise FileNotFoundError(f"{experiment}: no such Tune experiment folder")
    spec = spec or _spec_next_to(experiment)
    sweep = sweep or experiment.parent.name
    try:
        analysis = ExperimentAnalysis(str(experiment))
    except (ValueError, FileNotFoundError) as exc:
        raise SpecError(f"{experiment} is not a Tune experiment folder (no experiment_state*.json): {exc}") from exc
    base = spec.base_config()
    writer = ResultsWriter(str(out), trials_schema(base), history_schema(base), overwrite=True)
    n_epochs = 0
    for trial in analysis.trials:
        results = _results_of(trial)
        n_epochs += len({int(r.get("epoch", 0)) for r in results})
        for result in results:
            writer.put_epoch(history_row(sweep, trial.trial_id, result))
        params = trial_params(spec, trial.config)
        status = _STATUS.get(trial.status, "running") or final_status(results)
        writer.put_trial(trial_row(
            sweep, trial.trial_id, spec.trial_config(params), status=status, results=results, variant=params.get("variant"),
            error=error_line(trial.get_error()) if status == "failed" else None,
            started_at=_started(results), finished_at=_finished(results, status),
        ))  # fmt: skip
    writer.compact()
    return len(analysis.trials), n_epochs


def _spec_next_to(experiment: Path) -> Spec:
    path = experiment.parent / "spec.yaml"
    if not path.is_file():
        raise SpecError(f"no spec.yaml next to {experiment}: pass --spec (the sweep's search-space file)")
    return load_spec(path)


def _results_of(trial: Any) -> list[dict[str, Any]]:
    path = Path(trial.storage.trial_fs_path, "result.json").as_posix()
    filesystem = trial.storage.storage_filesystem
    try:
        with filesystem.open_input_stream(path) as fh:
            text = fh.readall().decode("utf-8")
    except (FileNotFoundError, OSError):
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _started(results: list[dict[str, Any]]) -> datetime | None:
    if not results:
        return None
    return datetime.fromtimestamp(results[0]["timestamp"] - results[0].get("time_total_s", 0.0), UTC)


def _finished(results: list[dict[str, Any]], status: str) -> datetime | None:
    return datetime.fromtimestamp(results[-1]["timestamp"], UTC) if results and status != "running" else None

