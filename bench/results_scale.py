"""Results at sweep scale: the real Parquet callback and writer fed synthetic trial events, then the report.

    python bench/results_scale.py [--trials 1000 10000] [--epochs 100] [--old-trials 25 50 100]

Each size runs in a fresh process (peak RSS is per process), with no Ray cluster: fake trial objects go
through ``ParquetCallback``'s hooks on a simulated clock (``--concurrency`` trials of ``--trial-s``
seconds each, so the 5-s epoch flushes happen as often as in that sweep; every 10 simulated seconds the
callback's ``get_state``, which Tune calls when it saves the experiment, waits for the background writes).
Per event it times what the Tune driver waits for: the hook (row building, handing rows to the writer
thread) and those barriers. "cpu s" is the process's CPU time, writer thread included. At the end the compaction, the file count and size, ``read_results`` +
``build_report``. The writer and callback before issue 13 (every row kept, both files rewritten on each
flush) are inlined below as ``OldWriter``/``OldCallback``; their cost grows with the square of the sweep,
so they are measured at ``--old-trials`` and extrapolated (labelled so) to the new sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TUNE_SAVE_EVERY_S = 10.0  # Tune's experiment checkpoint period ("auto" starts at 10 s and only grows)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class FakeTrial:
    def __init__(self, trial_id: str, config: dict[str, Any]) -> None:
        self.trial_id, self.config = trial_id, config

    def get_error(self) -> str:
        return "RuntimeError: CUDA out of memory"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


def _report(cfg: Any, columns: dict[str, list[str]], trial: FakeTrial, epoch: int, epochs: int, rng: np.random.Generator, best: dict[str, float]) -> dict[str, Any]:
    """One epoch as the trainable reports it (the keys of hdc_ray.tune's report, plus Tune's bookkeeping)."""
    quality = 0.5 + 0.4 * (1 - np.exp(-epoch / 20)) + 0.05 * (trial.config["train.method"] == "hdc") + rng.normal(0, 0.01)
    result: dict[str, Any] = {"epoch": epoch, "done": int(epoch == epochs), "label_ratio": trial.config["data.label_ratio"], "n_labeled": 10,
                              "split_hash": "abc123", "task": cfg.data.task, "class_names": "a,b", "distance_unit": "px", "node": "node-1",
                              "lr": 1e-3, "ramp": min(1.0, epoch / 10), "epoch_time_s": 1.2, "images_per_s": 80.0,
                              "time_total_s": 1.2 * epoch, "timestamp": 1.7e9 + epoch, "training_iteration": epoch, "config": trial.config}  # fmt: skip
    result |= {c: float(1.2 * np.exp(-0.05 * epoch)) for c in columns["loss"]}
    for c in columns["val"]:
        value = float(quality if "dice" in c or "jaccard" in c else 40 * (1 - quality))
        result[c] = value
        best[c] = max(best.get(c, value), value) if "dice" in c or "jaccard" in c else min(best.get(c, value), value)
        result[f"best_{c}"] = best[c]
    result["best_epoch"] = epoch
    if epoch % 10 == 0:
        result["checkpoint_path"] = f"/ckpt/{trial.trial_id}/{epoch}"
    if epoch == epochs:
        result |= {c: float(quality - 0.01) if "dice" in c or "jaccard" in c else float(40 * (1 - quality)) for c in columns["test"]}
    return result


class HookTimer:
    """Times callback hooks as the Tune driver sees them: wall time per event, and the driver thread's CPU."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.driver_cpu = 0.0

    def __call__(self, hook: Any, *args: Any) -> None:
        self.times.append(0.0)
        self.add_to_last(hook, *args)

    def add_to_last(self, hook: Any, *args: Any) -> None:
        """Run ``hook`` and count its time with the last event (a barrier the driver meets after that event)."""
        t0, c0 = time.perf_counter(), time.thread_time()
        hook(*args)
        self.times[-1] += time.perf_counter() - t0
        self.driver_cpu += time.thread_time() - c0


def run_sweep(kind: str, n_trials: int, epochs: int, concurrency: int, trial_s: float, folder: str) -> dict[str, Any]:
    """Drive the callback through a whole sweep; returns the figures (run in its own process)."""
    from hdc_ray.results.schema import LOSS_COLUMNS, metric_columns
    from hdc_ray.tune import callback as callback_module
    from hdc_ray.tune.callback import ParquetCallback
    from hdc_ray.tune.spec import load_spec

    spec = load_spec("smoke", [f"search.trials={n_trials}", f"overrides={{train.epochs: {epochs}}}"])
    cfg = spec.base_config()
    columns = {"loss": list(LOSS_COLUMNS), "val": metric_columns(cfg, "val"), "test": metric_columns(cfg, "test")}
    clock = Clock()
    callback_module.time = types.SimpleNamespace(monotonic=clock.monotonic)  # type: ignore[attr-defined]
    cb: Any = ParquetCallback(spec, "scale", folder) if kind == "new" else OldCallback(spec, "scale", folder)
    rng = np.random.default_rng(0)
    methods, ratios = ("hdc", "supervised", "mean_teacher"), (0.05, 0.1, 0.2, 0.5)
    trials = [FakeTrial(f"t{i:05d}", {"train.method": methods[i % 3], "data.label_ratio": ratios[(i // 3) % 4], "train.seed": (i // 12) % 5,
                                      "loss.w_cg": 0.1, "loss.w_mi": 0.1}) for i in range(n_trials)]  # fmt: skip
    step = trial_s / epochs / concurrency  # simulated seconds between two reports of a wave of `concurrency` trials
    timer = HookTimer()
    baseline, saved = _rss_mb(), 0.0
    with contextlib.redirect_stdout(io.StringIO()) as out:
        start, cpu = time.perf_counter(), time.process_time()
        cb.setup()
        for wave in range(0, n_trials, concurrency):
            running = trials[wave:wave + concurrency]
            best: dict[str, dict[str, float]] = {t.trial_id: {} for t in running}
            for t in running:
                timer(cb.on_trial_start, 0, trials, t)
            for epoch in range(1, epochs + 1):
                for t in running:
                    clock.now += step
                    result = _report(cfg, columns, t, epoch, epochs, rng, best[t.trial_id])
                    timer(cb.on_trial_result, 0, trials, t, result)
                    if clock.now - saved >= TUNE_SAVE_EVERY_S and hasattr(cb, "get_state"):
                        timer.add_to_last(cb.get_state)  # Tune saving its experiment state: waits for the background writes
                        saved = clock.now
                    out.seek(0), out.truncate()  # lines are counted, not kept
            for i, t in enumerate(running):
                timer(cb.on_trial_error if (wave + i) % 97 == 13 else cb.on_trial_complete, 0, trials, t)
        hooks_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        flusher = getattr(cb, "_flusher", None)
        writer_cpu_s, writer_busy_s = (flusher.cpu_s, flusher.busy_s) if flusher is not None else (0.0, 0.0)
        before_compaction = _rss_mb()
        t0 = time.perf_counter()
        cb.on_experiment_end(trials)
        compact_s = time.perf_counter() - t0
    peak = _rss_mb()
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    times, driver_cpu = timer.times, timer.driver_cpu
    n = len(times)
    tenth = max(1, n // 10)
    figures = {
        "kind": kind, "trials": n_trials, "epochs": epochs, "events": n, "hooks_s": hooks_s, "cpu_s": cpu_s, "compact_s": compact_s,
        "per_event_ms": 1e3 * hooks_s / n, "first_tenth_ms": 1e3 * sum(times[:tenth]) / tenth, "last_tenth_ms": 1e3 * sum(times[-tenth:]) / tenth,
        "driver_cpu_s": driver_cpu, "driver_cpu_ms": 1e3 * driver_cpu / n, "writer_cpu_s": writer_cpu_s, "writer_busy_s": writer_busy_s,
        "peak_rss_growth_mb": peak - baseline, "rss_growth_before_compaction_mb": before_compaction - baseline, "files": len(files), "mb": sum(p.stat().st_size for p in files) / 1e6,
    }  # fmt: skip
    if kind == "new":
        figures |= _report_time(folder)
    return figures


def _report_time(folder: str) -> dict[str, float]:
    from hdc_ray.analysis import build_report, read_results

    t0 = time.perf_counter()
    results = read_results(folder)
    read_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        build_report(results, out)
        report_s = time.perf_counter() - t0
    return {"read_s": read_s, "report_s": report_s, "history_rows": len(results.history), "trial_rows": len(results.trials)}


# ---- the results layer before issue 13, inlined as it was (hdc_ray/results/writer.py, callback.py at 1939773) ----


class OldWriter:
    def __init__(self, folder: str, trials_schema: pa.Schema, history_schema: pa.Schema) -> None:
        self.folder, self.trials_schema, self.history_schema = folder, trials_schema, history_schema
        os.makedirs(folder, exist_ok=True)
        self.trials: dict[str, dict[str, Any]] = {}
        self.history: dict[tuple[str, int], dict[str, Any]] = {}

    def put_trial(self, row: dict[str, Any]) -> None:
        self.trials[row["trial_id"]] = row

    def put_epoch(self, row: dict[str, Any]) -> None:
        self.history[(row["trial_id"], int(row["epoch"]))] = row

    def flush(self) -> None:
        from hdc_ray.results.schema import to_table

        order = sorted(self.trials.values(), key=lambda r: (r.get("started_at") is None, str(r.get("started_at")), r["trial_id"]))
        self._write("trials.parquet", to_table(order, self.trials_schema))
        self._write("history.parquet", to_table([self.history[k] for k in sorted(self.history)], self.history_schema))

    def _write(self, name: str, table: pa.Table) -> None:
        path = f"{self.folder}/{name}"
        pq.write_table(table, path + ".tmp")
        os.replace(path + ".tmp", path)


class OldCallback:
    def __init__(self, spec: Any, sweep: str, folder: str) -> None:
        from hdc_ray.results.schema import history_schema, trials_schema

        self.spec, self.sweep = spec, sweep
        base = spec.base_config()
        self.writer = OldWriter(folder, trials_schema(base), history_schema(base))
        self._epochs = base.train.epochs
        self._results: dict[str, list[dict[str, Any]]] = {}
        self._started: dict[str, datetime] = {}
        self._last_flush = 0.0

    def setup(self) -> None:
        self.writer.flush()

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any) -> None:
        self._started.setdefault(trial.trial_id, datetime.now(UTC))
        self._put(trial, "running")
        self.writer.flush()

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any]) -> None:
        from hdc_ray.results.rows import history_row
        from hdc_ray.tune import callback as callback_module

        self._results.setdefault(trial.trial_id, []).append(result)
        self.writer.put_epoch(history_row(self.sweep, trial.trial_id, result))
        print(f"  {trial.trial_id} epoch {result['epoch']}/{self._epochs}  train_loss {result['train_loss']:.4f}", flush=True)
        if callback_module.time.monotonic() - self._last_flush > 5.0:
            self._put(trial, "running")
            self.writer.flush()
            self._last_flush = callback_module.time.monotonic()

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any) -> None:
        from hdc_ray.results.rows import final_status

        self._put(trial, final_status(self._results.get(trial.trial_id, [])), finished=True)
        self.writer.flush()

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any) -> None:
        self._put(trial, "failed", finished=True, error="RuntimeError: CUDA out of memory")
        self.writer.flush()

    def on_experiment_end(self, trials: list[Any]) -> None:
        pass

    def _put(self, trial: Any, status: str, *, finished: bool = False, error: str | None = None) -> None:
        from hdc_ray.results.rows import trial_row
        from hdc_ray.tune.spec import trial_params

        params = trial_params(self.spec, trial.config)
        epochs = [row for (tid, _), row in sorted(self.writer.history.items()) if tid == trial.trial_id]
        self.writer.put_trial(trial_row(
            self.sweep, trial.trial_id, self.spec.trial_config(params), status=status, results=self._results.get(trial.trial_id, []),
            variant=params.get("variant"), error=error, started_at=self._started.get(trial.trial_id),
            finished_at=datetime.now(UTC) if finished else None, epochs=epochs,
        ))  # fmt: skip


# ---- driver ----


def _child(kind: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, str(n), "--epochs", str(args.epochs), "--concurrency", str(args.concurrency), "--trial-s", str(args.trial_s)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode != 0:
        raise SystemExit(f"{kind} {n} trials failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--old-trials", type=int, nargs="*", default=[25, 50, 100])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--trial-s", type=float, default=120.0, help="simulated trial length (sets how often the 5-s epoch flush fires)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(run_sweep(args.child[0], int(args.child[1]), args.epochs, args.concurrency, args.trial_s, folder)))
        return
    print(f"{args.epochs} epochs per trial, {args.concurrency} concurrent trials of {args.trial_s:.0f} s (simulated clock), one process per run")
    new = [_child("new", n, args) for n in args.trials]
    old = [_child("old", n, args) for n in args.old_trials]
    header = f"{'writer':<22}{'trials':>7}{'events':>9}{'ms/event':>9}{'first10%':>9}{'last10%':>9}{'write s':>9}{'cpu s':>8}{'compact s':>10}{'RSS +MB':>9}{'pre-cmp':>8}{'files':>7}{'MB':>7}"
    print(header)
    for f in [*old, *new]:
        print(f"{f['kind'] + ' (measured)':<22}{f['trials']:>7}{f['events']:>9}{f['per_event_ms']:>9.3f}{f['first_tenth_ms']:>9.3f}{f['last_tenth_ms']:>9.3f}"
              f"{f['hooks_s']:>9.1f}{f['cpu_s']:>8.1f}{f['compact_s']:>10.2f}{f['peak_rss_growth_mb']:>9.0f}{f['rss_growth_before_compaction_mb']:>8.0f}{f['files']:>7}{f['mb']:>7.1f}")  # fmt: skip
    if len(old) >= 2:  # today's total grows ~ n^2 (each flush rewrites everything so far): fit a*n^2 + b*n
        ns = np.array([f["trials"] for f in old], float)
        fit = np.linalg.lstsq(np.stack([ns**2, ns], 1), np.array([f["hooks_s"] for f in old]), rcond=None)[0]
        for n in args.trials:
            total = fit[0] * n**2 + fit[1] * n
            events = n * (args.epochs + 2)
            print(f"{'old (EXTRAPOLATED)':<22}{n:>7}{events:>9}{1e3 * total / events:>9.3f}{'':>9}{'':>9}{total:>9.0f}{'':>8}   (a*n^2+b*n fit to the measured old runs)")
    if len(new) >= 2:
        print(f"new per-event cost {new[-1]['trials']} vs {new[0]['trials']} trials: x{new[-1]['per_event_ms'] / new[0]['per_event_ms']:.2f} (target: within 2x)")
    for f in new:
        sweep_s = f["trials"] / args.concurrency * args.trial_s
        share = 100 * (f["hooks_s"] + f["compact_s"]) / sweep_s
        total = f["driver_cpu_s"] + f["writer_busy_s"] + f["compact_s"]
        print(f"new {f['trials']} trials: driver thread {f['driver_cpu_s']:.1f} s CPU ({f['driver_cpu_ms']:.3f} ms/event), writer thread busy "
              f"{f['writer_busy_s']:.1f} s ({f['writer_cpu_s']:.1f} s CPU), compaction {f['compact_s']:.1f} s: all writing {total:.1f} s = "
              f"{100 * total / sweep_s:.3f}% of a {sweep_s / 3600:.1f} h sweep (target < 1%); the compressed replay's hook wall time "
              f"{f['hooks_s'] + f['compact_s']:.1f} s = {share:.3f}% (no idle time for the writer thread to use)")
        print(f"new {f['trials']} trials: read_results {f['read_s']:.1f} s + build_report {f['report_s']:.1f} s on {f['trial_rows']} trials / "
              f"{f['history_rows']} epoch rows (target < 60 s)")  # fmt: skip


if __name__ == "__main__":
    main()
