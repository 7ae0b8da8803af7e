"""A Tune callback that writes every trial and every epoch to Parquet as the sweep runs, and prints progress.

It lives in the Tune driver: trial workers never touch the files, so there is one writer and no locking.
Tune pickles it with the experiment, so ``Tuner.restore`` brings it back; ``setup`` then reloads the
rows already on disk and a resumed sweep keeps them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ray import tune

from hdc_ray.results.columns import FINISHED_STATUSES
from hdc_ray.results.rows import error_line, final_status, history_row, trial_row
from hdc_ray.results.schema import history_schema, trials_schema
from hdc_ray.results.writer import ResultsWriter
from hdc_ray.tune.spec import Spec, trial_params

FLUSH_EVERY_S = 5.0  # epoch rows are flushed at most this often; trial state changes always flush


class ParquetCallback(tune.Callback):
    def __init__(self, spec: Spec, sweep: str, folder: str) -> None:
        self.spec, self.sweep, self.folder = spec, sweep, folder
        self._writer: ResultsWriter | None = None
        self._results: dict[str, list[dict[str, Any]]] = {}
        self._started: dict[str, datetime] = {}
        self._last_flush = 0.0
        self._epochs = 0  # the base config's epochs, set with the writer

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "sweep": self.sweep, "folder": self.folder}  # rows live in the files

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["spec"], state["sweep"], state["folder"])  # type: ignore[misc]

    @property
    def writer(self) -> ResultsWriter:
        if self._writer is None:
            base = self.spec.base_config()  # reads the base YAML: once per driver, not per report
            self._writer = ResultsWriter(self.folder, trials_schema(base), history_schema(base))
            self._epochs = base.train.epochs
        return self._writer

    def setup(self, *args: Any, **info: Any) -> None:
        self.writer.flush()  # the files exist (possibly empty) from the first second of a sweep

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        old = self.writer.trials.get(trial.trial_id, {})
        self._started.setdefault(trial.trial_id, old.get("started_at") or datetime.now(UTC))
        self._put(trial, "running")
        self.writer.flush()

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        self._results.setdefault(trial.trial_id, []).append(result)
        self.writer.put_epoch(history_row(self.sweep, trial.trial_id, result))
        print(_epoch_line(trial.trial_id, result, self._epochs), flush=True)
        if time.monotonic() - self._last_flush > FLUSH_EVERY_S:
            self._put(trial, "running")
            self._flush()

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._put(trial, final_status(self._results.get(trial.trial_id, [])), finished=True)
        self._flush()
        print(self._progress(), flush=True)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        error = error_line(trial.get_error())
        self._put(trial, "failed", finished=True, error=error)
        self._flush()
        print(f"trial {trial.trial_id} FAILED: {error}", flush=True)
        print(self._progress(), flush=True)

    def _put(self, trial: Any, status: str, *, finished: bool = False, error: str | None = None) -> None:
        params = trial_params(self.spec, trial.config)
        self.writer.put_trial(trial_row(
            self.sweep, trial.trial_id, self.spec.trial_config(params), status=status, results=self._results.get(trial.trial_id, []),
            variant=params.get("variant"), error=error, started_at=self._started.get(trial.trial_id),
            finished_at=datetime.now(UTC) if finished else None, epochs=self._epochs_of(trial.trial_id),
            checkpoint_path=getattr(getattr(trial, "checkpoint", None), "path", None),
        ))  # fmt: skip

    def _epochs_of(self, trial_id: str) -> list[dict[str, Any]]:
        return [row for (tid, _), row in sorted(self.writer.history.items()) if tid == trial_id]

    def _flush(self) -> None:
        self.writer.flush()
        self._last_flush = time.monotonic()

    def _progress(self) -> str:
        rows = self.writer.trials.values()
        done = sum(r["status"] in FINISHED_STATUSES for r in rows)
        failed = sum(r["status"] == "failed" for r in rows)
        running = sum(r["status"] == "running" for r in rows)
        objective = self.spec.objectives[0]
        column = objective.metric
        scored = [r for r in rows if r["status"] != "failed" and r.get(column) is not None]
        best = (max if objective.mode == "max" else min)(scored, key=lambda r: r[column], default=None)
        shown = f"; best {column} {best[column]:.4f} ({best['trial_id']})" if best else ""
        return f"[{self.sweep}] {done}/{self.spec.n_trials()} trials done, {running} running, {failed} failed{shown}"


def _epoch_line(trial_id: str, result: dict[str, Any], epochs: int) -> str:
    shown = "  ".join(f"{k} {result[k]:.4f}" for k in ("train_loss", "val_dice_fg", "val_hd95_fg") if isinstance(result.get(k), float))
    return f"  {trial_id} epoch {int(result.get('epoch', 0))}/{epochs}  {shown}"
