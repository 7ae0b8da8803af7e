"""A study that runs until it is decided: rounds of new labelled splits, each one Tune experiment into one Parquet.

``stopping: {until: decided, ...}`` in a grid spec (see :class:`hdc_ray.tune.spec.Stopping`). Round 1 runs the
spec's seeds into ``RESULTS/NAME/tune``; round k adds the next seeds into ``RESULTS/NAME/tune-round-k``. Every
round appends to the same ``trials.parquet`` / ``history.parquet``. After each round the paired intervals are
computed from the Parquet (``hdc_ray.analysis.evidence.decide``, on ``stopping.metric``: the metric the report
answers on) and the study stops when they are decided, or at ``max_seeds``. ``RESULTS/NAME/rounds.json`` records every round (its seeds,
when it ran, each arm and budget's interval) and why the study stopped; it is written through pyarrow's
filesystem, so an ``s3://`` results URI works as a local folder does.

``--resume`` after a driver kill finishes the round that was running (restoring its Tune experiment, or starting
it again when Tune had not saved it yet) and carries on with the rounds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pyarrow import fs
from ray import tune

from hdc_ray.analysis.evidence import Decision, decide
from hdc_ray.analysis.evidence.control import ALPHA, PRIOR_SCALE, PROCEDURE
from hdc_ray.analysis.load import ROUNDS_FILE, read_results
from hdc_ray.results.dataset import filesystem_of
from hdc_ray.tune.experiment import run_experiment, save_spec, start_ray
from hdc_ray.tune.spec import Spec, SpecError, Stopping


def tune_name(k: int) -> str:
    return "tune" if k == 1 else f"tune-round-{k}"


@dataclass
class RoundLog:
    """``rounds.json``: the rule, one entry per round, and why the study stopped (``None`` while it runs)."""

    rule: dict[str, Any]
    rounds: list[dict[str, Any]] = field(default_factory=list)
    stopped: dict[str, Any] | None = None

    @classmethod
    def read(cls, sweep_dir: str) -> RoundLog | None:
        filesystem, folder = filesystem_of(sweep_dir)
        path = f"{folder}/{ROUNDS_FILE}"
        if filesystem.get_file_info(path).type == fs.FileType.NotFound:
            return None
        with filesystem.open_input_stream(path) as f:
            raw = json.loads(f.read().decode())
        return cls(raw["rule"], raw.get("rounds", []), raw.get("stopped"))

    def write(self, sweep_dir: str) -> None:
        """Whole-file replace: a temporary object, then a move (a rename on local disks)."""
        filesystem, folder = filesystem_of(sweep_dir)
        filesystem.create_dir(folder, recursive=True)
        tmp, path = f"{folder}/.{ROUNDS_FILE}.tmp", f"{folder}/{ROUNDS_FILE}"
        with filesystem.open_output_stream(tmp) as f:
            f.write(json.dumps(asdict(self), indent=1, default=str).encode())
        filesystem.move(tmp, path)

    @property
    def seeds_run(self) -> list[int]:
        return [s for r in self.rounds for s in r["seeds"]]

    def running(self) -> dict[str, Any] | None:
        return self.rounds[-1] if self.rounds and self.rounds[-1]["status"] == "running" else None


def run_rounds(spec: Spec, *, name: str, sweep_dir: str, address: str | None, resume: bool, study_storage: str | None,
               fail_at_epoch: int | None, verbose: bool) -> tuple[str, tune.ResultGrid | None]:  # fmt: skip
    """Run (or, with ``resume``, continue) the rounds of a study until its rule stops it."""
    assert spec.stopping is not None
    log = _log_to_continue(spec, sweep_dir, name, resume)
    if log.stopped:
        print(f"study {name!r} already stopped: {log.stopped['reason']}", flush=True)
        return sweep_dir, None
    verbose = start_ray(address, verbose)
    save_spec(spec, sweep_dir)
    grid = None
    while True:
        current = log.running() or _start_round(log, spec)
        if current is None:  # no seeds left to add
            _stop(log, sweep_dir, "max_seeds", f"max_seeds reached ({len(log.seeds_run)} splits)")
            return sweep_dir, grid
        log.write(sweep_dir)
        k, seeds = current["round"], tuple(current["seeds"])
        path = f"{sweep_dir}/{current['tune']}"
        restorable = tune.Tuner.can_restore(path)
        print(f"study {name!r}: round {k}, splits {list(seeds)}" + (" (resumed)" if restorable else ""), flush=True)
        grid = run_experiment(replace(spec, seeds=seeds), name=name, sweep_dir=sweep_dir, tune_name=current["tune"], address=address,
                              resume=restorable, restart=resume and not restorable, study_storage=study_storage,
                              fail_at_epoch=fail_at_epoch, verbose=verbose, earlier=len(spec.grid_cells()) * (len(log.seeds_run) - len(seeds)))  # fmt: skip
        decision = _decision(spec, sweep_dir, name, spec.stopping)
        current.update(status="finished", finished_at=_now(), decided=decision.decided, open=decision.open_budgets(), decision=decision.records())
        kind, reason = decision.stop(len(log.seeds_run), spec.stopping.min_seeds, spec.stopping.max_seeds)
        _report_round(name, k, decision)
        if kind:
            _stop(log, sweep_dir, kind, reason)
            return sweep_dir, grid
        log.write(sweep_dir)


def _log_to_continue(spec: Spec, sweep_dir: str, name: str, resume: bool) -> RoundLog:
    assert spec.stopping is not None
    log = RoundLog.read(sweep_dir)
    if log is not None and not resume:
        raise SpecError(f"a study named {name!r} already exists at {sweep_dir} ({ROUNDS_FILE}): pass --resume to continue it, or choose another --name")
    if log is None and resume and not tune.Tuner.can_restore(f"{sweep_dir}/{tune_name(1)}"):
        raise SpecError(f"--resume: no interrupted study {name!r} at {sweep_dir} (no {ROUNDS_FILE})")
    if log is None:
        log = RoundLog(asdict(spec.stopping) | {"alpha": ALPHA, "control": PROCEDURE.format(g=PRIOR_SCALE)})
    if log.rule.get("metric", spec.stopping.metric) != spec.stopping.metric:
        raise SpecError(f"stopping.metric: this study decided on {log.rule['metric']} ({ROUNDS_FILE}); it cannot change to {spec.stopping.metric} "
                        "in a resumed study (its rounds were judged on the first): start a new study with another --name")  # fmt: skip
    log.rule = asdict(spec.stopping) | {"alpha": ALPHA, "control": PROCEDURE.format(g=PRIOR_SCALE)}  # a spec change may have moved the limits
    # A higher max_seeds reopens a study after either stop: after "decided" too, the report's "more rounds" command must
    # run them. The error control needs no reset: its confidence sequences hold over every look, old and new.
    if log.stopped and len(log.seeds_run) < spec.stopping.max_seeds:
        print(f"study {name!r}: max_seeds is now {spec.stopping.max_seeds}: adding rounds after the {len(log.seeds_run)} splits run so far "
              f"(it had stopped: {log.stopped['reason']})", flush=True)  # fmt: skip
        log.stopped = None
    return log


def _start_round(log: RoundLog, spec: Spec) -> dict[str, Any] | None:
    assert spec.stopping is not None
    k = len(log.rounds) + 1
    seeds = spec.stopping.seeds_of_round(spec.seeds, k)
    if not seeds:
        return None
    entry = {"round": k, "seeds": list(seeds), "tune": tune_name(k), "status": "running", "started_at": _now()}
    log.rounds.append(entry)
    return entry


def _decision(spec: Spec, sweep_dir: str, name: str, rule: Stopping) -> Decision:
    """The study's decision on the metric its report answers on (``stopping.metric``), from its Parquet."""
    results = sweep_dir.rstrip("/").rsplit("/", 1)[0]
    loaded = read_results(results, [name])
    return decide(loaded.trials, rule.metric, width=rule.width, baseline=rule.baseline, history=loaded.history)


def _report_round(name: str, k: int, decision: Decision) -> None:
    state = "decided" if decision.decided else f"open: {', '.join(decision.open_budgets())}"
    print(f"study {name!r}: after round {k} ({decision.n_splits} paired splits) {state}", flush=True)


def _stop(log: RoundLog, sweep_dir: str, kind: str, reason: str) -> None:
    log.stopped = {"reason": reason, "kind": kind, "at": _now()}  # kind: decided | max_seeds
    log.write(sweep_dir)
    print(f"study stopped: {reason} (recorded in {sweep_dir}/{ROUNDS_FILE})", flush=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
