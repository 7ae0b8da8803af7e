"""A Tune callback that writes every trial and every epoch to Parquet as the sweep runs, and prints progress.

It lives in the Tune driver: trial workers never touch the files, so there is one writer and no locking.
Tune pickles it with the experiment, so ``Tuner.restore`` brings it back; the writer then appends after
the rows already on disk, and the callback reloads only the statuses and scores of the trials there.
Each flush writes only the rows since the previous one, on a background thread (the driver only hands the
rows over); before Tune saves its experiment state the callback waits for those writes, so a trial Tune
knows as finished has its final row on disk. The end of the experiment compacts the tables.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from ray import tune

from hdc_ray.config import Config
from hdc_ray.results.background import BackgroundFlusher
from hdc_ray.results.columns import FINISHED_STATUSES
from hdc_ray.results.rows import error_line, final_status, history_row, restored_epochs, trial_row
from hdc_ray.results.schema import history_schema, trials_schema
from hdc_ray.results.writer import HISTORY_FILE, TRIALS_FILE, ResultsWriter
from hdc_ray.tune.spec import Spec, trial_params

FLUSH_EVERY_S = 5.0  # epoch rows are flushed at most this often; trial state changes always flush (in the background)
PROGRESS_EVERY_S = 15.0  # the progress line is printed at most this often between trial ends


@dataclass
class _Live:
    """What a running trial's next trial row needs: its last report, not every report."""

    started_at: datetime
    cfg: Any = None  # the trial's full config, built once (it reads the base YAML)
    last: dict[str, Any] | None = None
    checkpoint_path: str | None = None
    timing: dict[int, tuple[float, float]] = field(default_factory=dict)  # epoch -> (epoch_time_s, images_per_s)

    def add(self, result: dict[str, Any]) -> None:
        self.last = result
        self.checkpoint_path = result.get("checkpoint_path") or self.checkpoint_path
        if result.get("epoch_time_s") is not None:
            self.timing[int(result.get("epoch", 0))] = (result["epoch_time_s"], result.get("images_per_s") or 0.0)

    def results(self) -> list[dict[str, Any]]:
        return [] if self.last is None else [{**self.last, "checkpoint_path": self.checkpoint_path}]

    def epochs(self) -> list[dict[str, Any]]:
        return [{"epoch": e, "epoch_time_s": t, "images_per_s": i} for e, (t, i) in sorted(self.timing.items())]


@dataclass
class _Costs:
    """Seconds per epoch by method, as epochs report: an HDC trial costs ~4x a supervised one, and the ETA weighs it so.

    Without it the ETA counted trials as equal, and a study that runs its HDC trials first foretold 1h04m for 13 minutes.
    """

    per_epoch: dict[str, tuple[float, int]] = field(default_factory=dict)  # method -> (seconds, epochs)

    def add(self, method: str, seconds: float) -> None:
        total, n = self.per_epoch.get(method, (0.0, 0))
        self.per_epoch[method] = (total + seconds, n + 1)

    def trial(self, key: tuple[str, int]) -> float:
        """Estimated seconds of a trial ``(method, epochs)``; a method not seen yet costs the mean of those seen."""
        seen = {m: total / n for m, (total, n) in self.per_epoch.items() if n}
        epoch_s = seen.get(key[0], sum(seen.values()) / len(seen) if seen else 1.0)
        return key[1] * epoch_s


class ParquetCallback(tune.Callback):
    """Memory per trial: a status and a score for every trial, plus the last report of each running one.

    ``verbose``: print one line per reported epoch (off by default: thousands of trials make it noise).
    """

    def __init__(self, spec: Spec, sweep: str, folder: str, verbose: bool = False, earlier: int = 0) -> None:
        self.spec, self.sweep, self.folder, self.verbose = spec, sweep, folder, verbose
        self.earlier = earlier  # trials of a study's earlier rounds, in the same tables (counted as done in the progress line)
        self._writer: ResultsWriter | None = None
        self._flusher: BackgroundFlusher | None = None
        self._base: Config | None = None  # the spec's base config, read once (it reads the base YAML)
        self._live: dict[str, _Live] = {}  # running trials only: dropped when a trial ends
        self._status: dict[str, str] = {}
        self._scores: dict[str, float] = {}  # the objective of each trial that has one and did not fail
        self._best: str | None = None  # the trial with the best score
        self._last_flush = self._last_progress = 0.0
        self._epochs = 0  # the base config's epochs, set with the writer
        self._started = time.monotonic()
        self._ended_at_start = 0  # trials already ended when this driver started (a resumed sweep)
        self._costs = _Costs()
        self._started_keys: Counter[tuple[str, int]] = Counter()  # (method, epochs) of the trials this driver started
        self._ended_keys: list[tuple[str, int]] = []  # ... and of those it saw end
        self._grid: Counter[tuple[str, int]] | None = None  # every trial of a grid spec, by (method, epochs)

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "sweep": self.sweep, "folder": self.folder, "verbose": self.verbose, "earlier": self.earlier}  # rows live in the files

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["spec"], state["sweep"], state["folder"], state.get("verbose", False), state.get("earlier", 0))  # type: ignore[misc]

    @property
    def writer(self) -> ResultsWriter:
        if self._writer is None:
            base = self._base_config()
            # only the flusher's thread writes parts (the 5-s timer bounds the pending rows)
            self._writer = ResultsWriter(self.folder, trials_schema(base), history_schema(base), flush_rows=None)
            self._epochs = base.train.epochs
            self._load_previous_rows()
        return self._writer

    def _base_config(self) -> Config:
        if self._base is None:
            self._base = self.spec.base_config()  # once per driver, not once per trial (~10 ms each)
        return self._base

    def setup(self, *args: Any, **info: Any) -> None:
        self.writer.flush()  # the tables exist (possibly empty) from the first second of a sweep
        self._started = time.monotonic()
        self._ended_at_start = sum(s != "running" for s in self._status.values())

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        fresh = trial.trial_id not in self._live
        self._put(trial, "running")  # flushed with the next epochs: a start lost with the driver is redone on resume
        if fresh:
            self._started_keys[self._key(self._live[trial.trial_id])] += 1

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        live = self._live_of(trial.trial_id)
        for record in restored_epochs(result):  # a resumed trial: the epochs of its checkpoint, which a killed driver may not have written
            self.writer.put_epoch(history_row(self.sweep, trial.trial_id, record))
            live.add(record)
            live.last = None
        live.add(result)
        if isinstance(result.get("epoch_time_s"), float):
            self._costs.add(self._key(live)[0], result["epoch_time_s"])
        self.writer.put_epoch(history_row(self.sweep, trial.trial_id, result))
        if self.verbose:
            print(_epoch_line(trial.trial_id, result, self._epochs), flush=True)
        if time.monotonic() - self._last_flush > FLUSH_EVERY_S:
            self._put(trial, "running")
            self._flush()
        if not self.verbose and time.monotonic() - self._last_progress > PROGRESS_EVERY_S:
            self._print_progress()

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._put(trial, final_status(self._live_of(trial.trial_id).results()), finished=True)
        self._flush()
        self._print_progress()

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        # Tune may fail a trial before any error text reaches the driver (a restore that failed): never write "None"
        error = error_line(trial.get_error()) or f"no error text reached the driver; Tune's record of the trial is in {getattr(trial, 'path', None)}"
        self._put(trial, "failed", finished=True, error=error)
        self._flush()
        print(f"trial {trial.trial_id} FAILED: {error}", flush=True)
        self._print_progress()

    def get_state(self) -> None:
        """Tune calls this while saving its experiment state, before that state reaches storage: every row put so far
        is written before it (not just the rows already handed to the flusher), so no state on storage knows an
        epoch or a trial end whose row is not on disk."""
        if self.writer.pending_rows:
            self._flush()
        if self._flusher is not None:
            self._flusher.wait()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if self._flusher is not None:
            self._flusher.close()
            self._flusher = None
        self.writer.compact()  # one part per table, each row once: what a finished sweep hands to its readers

    def _live_of(self, trial_id: str) -> _Live:
        return self._live.setdefault(trial_id, _Live(datetime.now(UTC)))

    def _put(self, trial: Any, status: str, *, finished: bool = False, error: str | None = None) -> None:
        params = trial_params(self.spec, trial.config)
        live = self._live_of(trial.trial_id)
        live.cfg = live.cfg or self.spec.trial_config(params, self._base_config())
        row = trial_row(
            self.sweep, trial.trial_id, live.cfg, status=status, results=live.results(),
            variant=params.get("variant"), error=error, started_at=live.started_at,
            finished_at=datetime.now(UTC) if finished else None, epochs=live.epochs(),
            checkpoint_path=getattr(getattr(trial, "checkpoint", None), "path", None),  # used when no result carried checkpoint_path (in-trial runs report their own file)
        )  # fmt: skip
        self.writer.put_trial(row)
        self._track(trial.trial_id, status, row.get(self.spec.objectives[0].metric))
        if finished:
            self._ended_keys.append(self._key(live))
            del self._live[trial.trial_id]

    def _track(self, trial_id: str, status: str, score: float | None) -> None:
        """Status counts and the best trial, updated per row instead of recomputed over every trial."""
        self._status[trial_id] = status
        better = max if self.spec.objectives[0].mode == "max" else min
        if status == "failed" or score is None:
            if self._scores.pop(trial_id, None) is not None and self._best == trial_id:  # rare: rescan
                self._best = better(self._scores, key=self._scores.__getitem__, default=None)
            return
        self._scores[trial_id] = score
        if self._best is None or better(score, self._scores[self._best]) == score:
            self._best = trial_id

    def _load_previous_rows(self) -> None:
        """A resumed sweep: statuses and scores of the trials on disk, and the state of those still running."""
        assert self._writer is not None
        metric = self.spec.objectives[0].metric
        columns = ["trial_id", "status", "started_at", *([metric] if metric in self._writer.schema(TRIALS_FILE).names else [])]
        for row in self._writer.read(TRIALS_FILE, columns).to_pylist():
            self._track(row["trial_id"], row["status"], row.get(metric))
            if row["status"] == "running":
                self._live[row["trial_id"]] = _Live(row["started_at"] or datetime.now(UTC))
        if not self._live:
            return
        history = self._writer.read(HISTORY_FILE, ["trial_id", "epoch", "epoch_time_s", "images_per_s"])
        for row in history.filter(pc.is_in(history["trial_id"], pa.array(list(self._live)))).to_pylist():
            self._live[row["trial_id"]].add(row)  # the time totals count epochs reported before the restart
            self._live[row["trial_id"]].last = None  # ... but the trial row's metrics come from new reports

    def _flush(self) -> None:
        if self._flusher is None:
            self._flusher = BackgroundFlusher(self.writer)
        self._flusher.submit()
        self._last_flush = time.monotonic()

    def _print_progress(self) -> None:
        print(self._progress(), flush=True)
        self._last_progress = time.monotonic()

    def _progress(self) -> str:
        """One line: done / running (with each running trial's epoch) / failed, the best so far, elapsed and ETA."""
        counts = Counter(self._status.values())
        done = sum(counts[s] for s in FINISHED_STATUSES)
        objective = self.spec.objectives[0]
        best = f"; best {objective.metric} {self._scores[self._best]:.4f} ({self._best})" if self._best is not None else ""
        shown = [f"{tid} {int(live.last.get('epoch', 0))}/{self._trial_epochs(live)}" for tid, live in self._live.items() if live.last]
        running = f"{counts['running']} running" + (f" ({', '.join(shown[:4])}{', ...' if len(shown) > 4 else ''})" if shown else "")
        waiting = max(0, self._total - sum(counts.values()))
        queued = f", {waiting} waiting" if waiting else ""
        return f"[{self.sweep}] {done}/{self._total} done, {running}{queued}, {counts['failed']} failed{best}; {self._timing(waiting)}"

    @property
    def _total(self) -> int:
        return self.spec.n_trials() + self.earlier

    def _trial_epochs(self, live: _Live) -> int:
        return live.cfg.train.epochs if live.cfg is not None else self._epochs

    def _key(self, live: _Live) -> tuple[str, int]:
        cfg = live.cfg
        return (cfg.train.method, cfg.train.epochs) if cfg is not None else ("", self._epochs)

    def _timing(self, waiting: int) -> str:
        """Elapsed, and the ETA from the work this driver saw done, each trial weighed by its method's measured cost."""
        elapsed = time.monotonic() - self._started
        cost = self._costs.trial
        running = [(self._key(live), min(1.0, float(live.last.get("epoch", 0)) / max(1, self._trial_epochs(live))) if live.last else 0.0)
                   for live in self._live.values()]  # fmt: skip
        work = sum(map(cost, self._ended_keys)) + sum(cost(k) * f for k, f in running)
        left = sum(cost(k) * (1 - f) for k, f in running) + self._waiting_cost(waiting)
        if work <= 0 or left <= 0:
            return f"elapsed {_duration(elapsed)}"
        return f"elapsed {_duration(elapsed)}, ETA ~{_duration(elapsed / work * left)}"

    def _waiting_cost(self, waiting: int) -> float:
        """The trials not started yet: a fresh grid knows which they are; otherwise the mean trial of the grid (or so far)."""
        if waiting <= 0:
            return 0.0
        grid = self._grid_keys()
        if grid and not self.earlier and not self._ended_at_start:
            left = grid - self._started_keys
            if left.total() == waiting:
                return sum(self._costs.trial(k) * n for k, n in left.items())
        pool = grid or self._started_keys or Counter({("", self._epochs): 1})
        return waiting * sum(self._costs.trial(k) * n for k, n in pool.items()) / pool.total()

    def _grid_keys(self) -> Counter[tuple[str, int]]:
        if self._grid is None:
            self._grid = Counter()
            if self.spec.is_grid:
                base = self._base_config()
                for cell in self.spec.grid_cells():
                    train = self.spec.trial_config(cell, base).train
                    self._grid[(train.method, train.epochs)] += len(self.spec.seeds)
        return self._grid


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _epoch_line(trial_id: str, result: dict[str, Any], epochs: int) -> str:
    shown = "  ".join(f"{k} {result[k]:.4f}" for k in ("train_loss", "val_dice_fg", "val_hd95_fg") if isinstance(result.get(k), float))
    return f"  {trial_id} epoch {int(result.get('epoch', 0))}/{epochs}  {shown}"


ABANDONED = "abandoned: the driver was killed before Tune saved this trial"


def abandon_ghost_rows(spec: Spec, sweep: str, folder: str, known: set[str]) -> int:
    """Mark rows of trials that Tune's restored experiment does not know as failed (``ABANDONED``); returns how many.

    Such a trial started after Tune's last saved state: Tune will run its grid cell again (or sample another
    configuration) under a new id. A ghost still ``running`` died with the driver; one that had even finished is marked
    too, so that the sweep ends with each cell (and the requested number of trials) completed exactly once. Only rows
    of this experiment's seeds are eligible once finished: a study's earlier rounds share the tables and are never Tune's
    trials here. Run before the resumed experiment starts (the callback's writer then loads the corrected statuses).
    A ghost's row keeps its last metrics and epochs; only status, error and finish time change.
    """
    base = spec.base_config()
    writer = ResultsWriter(folder, trials_schema(base), history_schema(base))
    table = writer.read(TRIALS_FILE)
    seeds = set(spec.seeds)

    def ghost(row: dict[str, Any]) -> bool:
        if row["trial_id"] in known or row["status"] == "failed":
            return False
        return row["status"] == "running" or row.get("seed") in seeds

    ghosts = [row for row in table.to_pylist() if ghost(row)]
    now = datetime.now(UTC)
    for row in ghosts:
        writer.put_trial(row | {"status": "failed", "error": ABANDONED, "finished_at": now})
    writer.flush()
    return len(ghosts)

