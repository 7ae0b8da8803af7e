"""GPU check (issue 14): every GPU code path of hdc-ray run once on CUDA, in one call, printing one table.

    PYTHONPATH=. python bench/gpu_check.py --out $OUT/gpu.md --budget-s 420   # the GPU machine
    PYTHONPATH=. python bench/gpu_check.py --dry-run                           # any CPU: tiny sizes, < 1 min

What runs, in this order (the most important first, so a run cut short by the budget still says most):

1. DDP at world size 1 (NCCL on CUDA, gloo with ``--dry-run``): a process group over tcp://127.0.0.1, the
   collectives of the loop (``mean_over_ranks``, ``_gather``) on known values, ``fit`` of every method with
   the student wrapped in DistributedDataParallel as the Ray Train worker wraps it (EMA teacher outside),
   which also runs ``evaluate`` and the test pass through the process group; and the first losses of a
   DDP-wrapped HDC student against an unwrapped one (same seed, same batches).
2. ``dist.pin_memory``: ``make_batch`` with pinned host copies equals ``make_batch`` without them.
3. ``run_local`` (in-process training, the CLI path without Ray) on the device in bf16, 2 epochs, against the
   same run killed after epoch 1 and resumed from its checkpoint (device optimiser state round-trips the CPU).
4. Training steps, ``synthetic`` config then a paper-scale one (224 px, ``resunet`` width 32 depth 5, the
   ``fugc`` model), fp32 and bf16 autocast, supervised / mean_teacher / cps / hdc: ms/step (batch building
   included, ``torch.cuda.synchronize`` around each step, warm-up steps excluded), the batch-building share,
   images/s, peak memory (``torch.cuda.max_memory_allocated``), time relative to HDC; and for every method
   whether the bf16 losses of the first K steps agree with the fp32 ones (same seed, same batches).
5. fp16 autocast with the GradScaler (HDC, synthetic): finite losses, agreement with fp32, the scale.
6. ``hdc-ray predict``'s predictor (issue 23): ms/image and images/s of the synthetic and paper-scale
   networks at the working size and at FUGC's native 336 x 544 (resizes included), masks against the CPU's.

Needs torch, numpy, scipy, pyyaml and tqdm only: no Ray and no Optuna (the GPU machine has neither). Each
case is guarded: a failure is a FAIL row with its error (the rest still runs) and the exit status is 1;
``--budget-s`` skips the cases that no longer fit (SKIP rows) and a watchdog ends a hung run (e.g. NCCL
set-up) 60 s after the budget. ``--out FILE`` rewrites FILE.md and FILE.json after every case.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import math
import os
import platform
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import distributed as torch_dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

# The hdc-ray pieces this script drives, all in one place (none of them imports Ray: the GPU machine has none).
from hdc_ray.config import Config, load_config, with_overrides
from hdc_ray.data import build_data
from hdc_ray.noise.seeds import derive_seed
from hdc_ray.train.batches import Batch, Shard, make_batch
from hdc_ray.train.evaluation import _gather, mean_over_ranks
from hdc_ray.train.loop import fit
from hdc_ray.train.methods import Models, build_models, needs_unlabeled
from hdc_ray.train.run import run_local
from hdc_ray.train.step import build_optimizer, build_scaler, train_step

METHODS = ("supervised", "mean_teacher", "cps", "hdc")
# bf16 keeps 8 significant bits (~0.4% per rounding); after a few optimiser steps the two runs see slightly
# different weights and pseudo-label masks, so the tolerance is per step: |bf16 - fp32| <= ATOL + RTOL |fp32|.
AGREE_RTOL, AGREE_ATOL = 0.02, 0.01
# DDP at world size 1 and a resumed run must reproduce the plain / uninterrupted numbers: exactly on a CPU
# (tests/core/test_training.py), on CUDA up to non-deterministic kernels (atomics in cuDNN backward).
SAME_RTOL = {"cpu": 1e-6, "cuda": 1e-2}
WATCHDOG_GRACE_S = 60


@dataclass(frozen=True)
class Sizes:
    """How big each part is: the GPU run, or the CPU dry run (tiny, seconds)."""

    synthetic: Config
    paper: Config
    warmup: dict[str, int]  # per config name: steps run, not timed
    steps: dict[str, int]  # per config name: timed steps
    agree_steps: int  # first K steps compared between precisions
    ddp_iters: int  # iterations of the one-epoch DDP fits


def sizes(dry_run: bool) -> Sizes:
    # The paper-scale model is the fugc config's (resunet, width 32, depth 5, 224 px, batch 8 + 8); its data
    # stay synthetic (the GPU machine has no dataset), a small pool since only step time is measured.
    paper_model = {"model.backbone": "resunet", "model.base_width": 32, "model.depth": 5}
    if dry_run:
        tiny = load_config("tiny", ["train.batch_labeled=2", "train.batch_unlabeled=2"])
        paper = with_overrides(tiny, {"name": "paper", "model.backbone": "resunet", "model.depth": 5})
        return Sizes(with_overrides(tiny, {"name": "synthetic"}), paper, {"synthetic": 1, "paper": 1}, {"synthetic": 1, "paper": 1}, 2, 2)
    synthetic = load_config("synthetic")
    pool = {"data.image_size": 224, "data.n_train": 96, "data.label_ratio": 0.25, "data.n_val": 8, "data.n_test": 8}
    paper = with_overrides(synthetic, {"name": "paper", **pool, **paper_model})
    return Sizes(synthetic, paper, {"synthetic": 5, "paper": 3}, {"synthetic": 20, "paper": 10}, 5, 4)


# ------------------------------------------------------------------------------------------ the table


@dataclass
class Report:
    env: dict[str, Any]
    timings: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    out: Path | None = None

    def check(self, name: str, status: str, detail: str) -> None:
        self.checks.append({"check": name, "status": status, "detail": detail})
        print(f"[{status}] {name}: {detail}", flush=True)
        self.write()

    def failed(self) -> bool:
        return any(c["status"] == "FAIL" for c in self.checks)

    def markdown(self) -> str:
        lines = ["Environment: " + ", ".join(f"{k} {v}" for k, v in self.env.items()), ""]
        lines += ["| config | precision | method | ms/step | batch ms | img/s | peak MiB | time vs hdc |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for t in self.timings:
            peak = "n/a" if t["peak_mib"] is None else f"{t['peak_mib']:.0f}"
            ratio = "" if t.get("vs_hdc") is None else f"{t['vs_hdc']:.2f}"
            lines.append(f"| {t['config']} | {t['precision']} | {t['method']} | {t['ms_step']:.1f} | {t['batch_ms']:.1f} | {t['img_s']:.1f} | {peak} | {ratio} |")
        lines += ["", "| check | status | detail |", "| --- | --- | --- |"]
        lines += [f"| {c['check']} | {c['status']} | {c['detail'].replace('|', '/')} |" for c in self.checks]
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        if self.out is None:
            return
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.with_suffix(".md").write_text(self.markdown())
        doc = {"env": self.env, "timings": self.timings, "checks": self.checks}
        self.out.with_suffix(".json").write_text(json.dumps(doc, indent=2))


class Budget:
    """Wall-clock guard: a case runs only if the time left covers 1.5x the longest case of its kind so far."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start = seconds, time.monotonic()
        self.longest: dict[str, float] = {}

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.start)

    def allows(self, kind: str) -> bool:
        return self.left() > 1.5 * self.longest.get(kind, 0.0) and self.left() > 0

    def record(self, kind: str, seconds: float) -> None:
        self.longest[kind] = max(self.longest.get(kind, 0.0), seconds)


def guarded(report: Report, budget: Budget, kind: str, name: str, body: Callable[[], None]) -> None:
    """Run one case: SKIP if the budget no longer allows it, FAIL (with the error) if it raises."""
    if not budget.allows(kind):
        report.check(name, "SKIP", f"time budget: {budget.left():.0f} s left of {budget.seconds:.0f} s")
        return
    start = time.monotonic()
    try:
        body()
    except Exception as exc:  # one failing case must not cost the rest of a GPU run
        traceback.print_exc()
        report.check(name, "FAIL", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
    finally:
        budget.record(kind, time.monotonic() - start)


def verdict(ok: bool) -> str:
    return "ok" if ok else "FAIL"


# --------------------------------------------------------------------------------------- training steps


@dataclass
class StepRun:
    losses: list[float]  # total loss of every step, warm-up included
    step_s: list[float]  # timed steps only
    batch_s: list[float]
    images: int  # images the trainable network sees per step
    peak_mib: float | None
    scale: float | None  # GradScaler scale after the last step (fp16 only)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_steps(cfg: Config, data: Any, device: torch.device, steps: int, warmup: int = 0, wrap: Callable[[nn.Module], nn.Module] | None = None) -> StepRun:
    """``warmup + steps`` training steps exactly as ``loop._run_epoch`` takes them, each synchronised and timed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)  # what fit does: the same initial weights for every run of a method
        models = build_models(cfg, len(data.class_names))
    models.trainable.to(device)
    if models.teacher is not None:
        models.teacher.to(device)
    optimizer, scaler = build_optimizer(cfg, models.trainable), build_scaler(cfg, device)
    model = wrap(models.trainable) if wrap else models.trainable
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    run = StepRun([], [], [], 0, None, None)
    for step in range(warmup + steps):
        start = time.perf_counter()
        batch = _one_step(cfg, data, models, model, optimizer, scaler, step, device, run)
        if step >= warmup:
            run.step_s.append(time.perf_counter() - start)
        run.images = batch.n_images
    if device.type == "cuda":
        run.peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    run.scale = float(scaler.get_scale()) if scaler.is_enabled() else None
    return run


def _one_step(cfg: Config, data: Any, models: Models, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, step: int, device: torch.device, run: StepRun) -> Batch:
    """One iteration of ``loop._run_epoch`` (same order of random draws, the public ``train_step``), timed."""
    tc = cfg.train
    epoch, it = divmod(step, tc.iters_per_epoch)
    torch.manual_seed(derive_seed(tc.seed, epoch, it, 0))
    _sync(device)
    start = time.perf_counter()
    batch = make_batch(cfg, data, epoch, it, Shard(), device, needs_unlabeled(cfg))
    _sync(device)
    run.batch_s.append(time.perf_counter() - start)
    out = train_step(cfg, models, model, optimizer, scaler, batch, step)
    run.losses.append(float(out.total))  # synchronises, as the loop's float() does
    _sync(device)
    return batch


def agreement(reference: list[float], other: list[float], k: int, rtol: float, atol: float) -> tuple[bool, str]:
    pairs = list(zip(reference[:k], other[:k], strict=True))
    finite = all(math.isfinite(a) and math.isfinite(b) for a, b in pairs)
    worst = max(abs(b - a) / max(abs(a), 1e-12) for a, b in pairs)
    ok = finite and all(abs(b - a) <= atol + rtol * abs(a) for a, b in pairs)
    shown = ", ".join(f"{a:.4f}/{b:.4f}" for a, b in pairs)
    return ok, f"first {len(pairs)} steps, max rel diff {worst:.2%} (tol {atol:g} + {rtol:g} x abs(ref)); losses {shown}"


def bench_config(report: Report, budget: Budget, cfg: Config, sz: Sizes, device: torch.device, precisions: tuple[str, ...]) -> None:
    """Time every method at every precision on one config; check bf16 losses against fp32 per method."""
    data = build_data(cfg.data, progress=False)
    runs: dict[tuple[str, str], StepRun] = {}
    for precision in precisions:
        for method in METHODS:
            case = with_overrides(cfg, {"train.method": method, "train.precision": precision})

            def body(case: Config = case, key: tuple[str, str] = (precision, method)) -> None:
                runs[key] = train_steps(case, data, device, sz.steps[cfg.name], sz.warmup[cfg.name])
                _add_timing(report, cfg.name, key, runs[key])

            guarded(report, budget, f"train:{cfg.name}", f"train {cfg.name} {precision} {method}", body)
            _free(device)
        _ratios_to_hdc(report, cfg.name, precision)
    for method in METHODS:
        for precision in precisions[1:]:
            if (precisions[0], method) in runs and (precision, method) in runs:
                ok, detail = agreement(runs[(precisions[0], method)].losses, runs[(precision, method)].losses, sz.agree_steps, AGREE_RTOL, AGREE_ATOL)
                report.check(f"{precision} vs {precisions[0]} losses, {cfg.name} {method}", verdict(ok), detail)


def _add_timing(report: Report, config: str, key: tuple[str, str], run: StepRun) -> None:
    step_s = sum(run.step_s) / len(run.step_s)
    timed_batches = run.batch_s[-len(run.step_s) :]
    report.timings.append({
        "config": config, "precision": key[0], "method": key[1], "ms_step": 1000 * step_s,
        "batch_ms": 1000 * sum(timed_batches) / len(timed_batches), "img_s": run.images / step_s,
        "peak_mib": run.peak_mib, "steps": len(run.step_s), "losses": run.losses,
    })
    report.write()


def _ratios_to_hdc(report: Report, config: str, precision: str) -> None:
    rows = [t for t in report.timings if t["config"] == config and t["precision"] == precision]
    ref = next((t["ms_step"] for t in rows if t["method"] == "hdc"), None)
    for t in rows:
        t["vs_hdc"] = None if ref is None else t["ms_step"] / ref
    report.write()


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------------- DDP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ddp_wrap(device: torch.device) -> Callable[[nn.Module], nn.Module]:
    """What ``hdc_ray.distributed.worker._ddp`` does (that module imports Ray, absent on the GPU machine)."""

    def wrap(net: nn.Module) -> nn.Module:
        return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)

    return wrap


def ddp_checks(report: Report, budget: Budget, sz: Sizes, device: torch.device) -> None:
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)  # Ray Train's TorchConfig does this in every worker before the loop
    torch_dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1, timeout=timedelta(seconds=120))
    try:
        report.check(f"process group ({backend}, world size 1)", "ok", f"backend {torch_dist.get_backend()}, rank {torch_dist.get_rank()} of {torch_dist.get_world_size()}")
        guarded(report, budget, "ddp", f"{backend} collectives", lambda: _collectives(report))
        cfg = with_overrides(sz.synthetic, {"train.epochs": 1, "train.iters_per_epoch": sz.ddp_iters})
        data = build_data(cfg.data, progress=False)
        for method in METHODS:
            guarded(report, budget, "ddp", f"DDP fit {method} ({backend})", partial(_ddp_fit, report, cfg, data, method, device))
        guarded(report, budget, "ddp", f"DDP vs unwrapped losses, hdc ({backend})", lambda: _ddp_parity(report, cfg, data, sz, device))
    finally:
        torch_dist.destroy_process_group()


def _collectives(report: Report) -> None:
    """The loop's metric all-reduce and case gather on known values (world size 1: mean = value)."""
    means = mean_over_ranks({"a": 1.0, "b": 3.0})
    cases = _gather([{"dice": 0.5}, {"dice": 0.25}])
    ok = means == {"a": 1.0, "b": 3.0} and cases == [{"dice": 0.5}, {"dice": 0.25}]
    report.check(f"{torch_dist.get_backend()} collectives", verdict(ok), f"_mean_over_ranks -> {means}; _gather -> {cases}")


def _ddp_fit(report: Report, cfg: Config, data: Any, method: str, device: torch.device) -> None:
    wrapped: list[nn.Module] = []
    inner = ddp_wrap(device)

    def wrap(net: nn.Module) -> nn.Module:
        wrapped.append(inner(net))
        return wrapped[-1]

    start = time.perf_counter()
    result = fit(with_overrides(cfg, {"train.method": method}), data, device=device, shard=Shard(0, 1), wrap=wrap, progress=False, log=lambda _: None)
    record = result.history[-1]
    ok = len(wrapped) == 1 and isinstance(wrapped[0], DistributedDataParallel) and math.isfinite(record["train_loss"]) and "test_dice_fg" in result.test
    detail = (f"{time.perf_counter() - start:.1f} s; train_loss {record['train_loss']:.4f} (all-reduced), "
              f"val_dice_fg {record['val_dice_fg']:.3f}, test_dice_fg {result.test['test_dice_fg']:.3f} (gathered)")
    report.check(f"DDP fit {method} ({torch_dist.get_backend()})", verdict(ok), detail)


def _ddp_parity(report: Report, cfg: Config, data: Any, sz: Sizes, device: torch.device) -> None:
    case = with_overrides(cfg, {"train.method": "hdc"})
    plain = train_steps(case, data, device, sz.agree_steps)
    wrapped = train_steps(case, data, device, sz.agree_steps, wrap=ddp_wrap(device))
    ok, detail = agreement(plain.losses, wrapped.losses, sz.agree_steps, SAME_RTOL[device.type], 0.0)
    report.check(f"DDP vs unwrapped losses, hdc ({torch_dist.get_backend()})", verdict(ok), detail)


# ---------------------------------------------------------------------------------------- pinned memory


def pin_check(report: Report, cfg: Config, device: torch.device) -> None:
    """``make_batch`` with ``dist.pin_memory`` on and off: the same batch (pinning changes only the copy)."""
    data = build_data(cfg.data, progress=False)
    pinned, plain = (make_batch(with_overrides(cfg, {"dist.pin_memory": pin}), data, 0, 1, Shard(), device, True) for pin in (True, False))
    fields = ("x_w", "y_w", "u_w", "u_s", "valid_s", "noise_seeds")
    same = all(torch.equal(getattr(pinned, f), getattr(plain, f)) for f in fields)
    where = f"x_w on {pinned.x_w.device}"
    note = "host copies pinned, non_blocking" if device.type == "cuda" else "CPU: _to_device pins only for CUDA, so both took the plain copy"
    report.check("dist.pin_memory batch == unpinned batch", verdict(same), f"{', '.join(fields)} equal: {same}; {where}; {note}")


# ------------------------------------------------------------------------------------- in-process + resume


def resume_check(report: Report, cfg: Config, sz: Sizes, device: torch.device) -> None:
    """``run_local`` (the in-process CLI path) on the device in bf16, 2 epochs; the same run killed after epoch 1
    (its epoch-2 checkpoint deleted) and resumed: optimiser state saved from the device, loaded back."""
    case = with_overrides(cfg, {"train.method": "hdc", "train.precision": "bf16", "train.device": device.type, "train.epochs": 2, "train.iters_per_epoch": sz.ddp_iters})
    with tempfile.TemporaryDirectory(prefix="hdc-gpu-check-run-") as folder:
        full, _ = run_local(case, Path(folder) / "full", progress=False)
        run_local(case, Path(folder) / "split", progress=False)
        (Path(folder) / "split" / "checkpoints" / "epoch_0002.pt").unlink()
        resumed, _ = run_local(case, Path(folder) / "split", resume=True, progress=False)
    a, b = [h["train_loss"] for h in resumed.history], [h["train_loss"] for h in full.history]
    rtol = SAME_RTOL[device.type]
    ok = len(a) == len(b) == 2 and all(abs(x - y) <= rtol * abs(y) for x, y in zip(a, b, strict=True))
    shown = ", ".join(f"{x:.5f}/{y:.5f}" for x, y in zip(a, b, strict=True))
    report.check(f"run_local bf16 on {device.type}, resumed vs straight", verdict(ok), f"train_loss per epoch resumed/straight {shown} (tol {rtol:g} x abs(ref)); test_dice_fg {resumed.test['test_dice_fg']:.3f}/{full.test['test_dice_fg']:.3f}")


# ------------------------------------------------------------------------------------------------- fp16


def fp16_check(report: Report, cfg: Config, sz: Sizes, device: torch.device) -> None:
    data = build_data(cfg.data, progress=False)
    case = with_overrides(cfg, {"train.method": "hdc"})
    fp32 = train_steps(with_overrides(case, {"train.precision": "fp32"}), data, device, sz.agree_steps)
    fp16 = train_steps(with_overrides(case, {"train.precision": "fp16"}), data, device, sz.agree_steps)
    ok, detail = agreement(fp32.losses, fp16.losses, sz.agree_steps, AGREE_RTOL, AGREE_ATOL)
    report.check(f"fp16 + GradScaler vs fp32 losses, {cfg.name} hdc", verdict(ok), f"{detail}; scale {fp16.scale:g}")


# --------------------------------------------------------------------------------------------- predict


def predict_check(report: Report, sz: Sizes, device: torch.device) -> None:
    """``hdc-ray predict``'s predictor (issue 23) on the device, synthetic and paper-scale networks (random
    weights: speed does not depend on training), images at the working size and at FUGC's native 336 x 544
    (resize to the working size and back included): ms/image with ``torch.cuda.synchronize``, warm-up
    excluded; and its masks against the same predictor's on the CPU (argmax ties aside, identical)."""
    from hdc_ray.inference.predictor import Predictor
    from hdc_ray.inference.sources import LoadedModel
    from hdc_ray.model import build_segnet
    from hdc_ray.train.card import card_of

    n, batch = (4, 2) if device.type == "cpu" else (64, 16)
    details = []
    agree_all = True
    for cfg in (sz.synthetic, sz.paper):
        card = card_of(cfg)
        torch.manual_seed(0)
        model = LoadedModel(Path(cfg.name), "random weights", card, build_segnet(card.model, card.num_classes).state_dict(), cfg)
        on_device, on_cpu = Predictor([model], device), Predictor([model], "cpu")
        for shape in ((card.input_size, card.input_size), (336, 544)):
            images = [torch.rand(shape, generator=torch.Generator().manual_seed(i)).numpy() for i in range(n)]
            on_device.warm_up(batch)
            _sync(device)
            start = time.perf_counter()
            masks = [m for k in range(0, n, batch) for m in on_device.predict(images[k : k + batch])]
            _sync(device)
            ms = 1000.0 * (time.perf_counter() - start) / n
            reference = on_cpu.predict(images[:batch])
            same = sum(float((a == b).mean()) for a, b in zip(masks[:batch], reference, strict=True)) / batch
            agree_all &= same >= 0.999
            details.append(f"{cfg.name} {card.input_size} px, images {shape[0]}x{shape[1]}: {ms:.2f} ms/image, {1000.0 / ms:.0f} images/s, masks = CPU's on {same:.2%} of pixels")
        _free(device)
    report.check(f"predict on {device.type} (batch {batch})", verdict(agree_all), "; ".join(details))


# ------------------------------------------------------------------------------------------------- main


def environment(device: torch.device, dry_run: bool, budget_s: float) -> dict[str, Any]:
    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device), "dry_run": dry_run, "budget_s": budget_s}
    if device.type == "cuda":
        env |= {
            "gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "tf32 (conv/matmul)": f"{torch.backends.cudnn.allow_tf32}/{torch.backends.cuda.matmul.allow_tf32}",
        }
    else:
        env["threads"] = torch.get_num_threads()
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, gloo instead of NCCL (seconds)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to OUT.md and OUT.json")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip the cases that would run past this (default 420)")
    args = parser.parse_args(argv)
    faulthandler.dump_traceback_later(args.budget_s + WATCHDOG_GRACE_S, exit=True)  # a hung NCCL set-up ends too
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device (or a CPU build of torch); use --dry-run on a CPU machine", file=sys.stderr)
        return 2
    os.environ.setdefault("HDC_RAY_CACHE", tempfile.mkdtemp(prefix="hdc-gpu-check-"))  # no files left behind but --out
    device = torch.device("cpu") if args.dry_run else torch.device("cuda", 0)
    sz = sizes(args.dry_run)
    report, budget = Report(environment(device, args.dry_run, args.budget_s), out=args.out), Budget(args.budget_s)
    print("Environment: " + ", ".join(f"{k} {v}" for k, v in report.env.items()), flush=True)
    guarded(report, budget, "section:ddp", "DDP section", lambda: ddp_checks(report, budget, sz, device))
    guarded(report, budget, "pin", "dist.pin_memory batch == unpinned batch", lambda: pin_check(report, sz.synthetic, device))
    guarded(report, budget, "resume", f"run_local bf16 on {device.type}, resumed vs straight", lambda: resume_check(report, sz.synthetic, sz, device))
    for cfg in (sz.synthetic, sz.paper):
        guarded(report, budget, f"config:{cfg.name}", f"train {cfg.name}", partial(bench_config, report, budget, cfg, sz, device, ("fp32", "bf16")))
    guarded(report, budget, "fp16", f"fp16 + GradScaler vs fp32 losses, {sz.synthetic.name} hdc", lambda: fp16_check(report, sz.synthetic, sz, device))
    guarded(report, budget, "predict", f"predict on {device.type} (batch {2 if args.dry_run else 16})", lambda: predict_check(report, sz, device))
    skipped = sum(c["status"] == "SKIP" for c in report.checks)
    report.check("total", verdict(not report.failed()), f"{time.monotonic() - budget.start:.1f} s of {args.budget_s:.0f} s budget; {skipped} case(s) skipped for time")
    print()
    print(report.markdown())
    faulthandler.cancel_dump_traceback_later()
    return 1 if report.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
