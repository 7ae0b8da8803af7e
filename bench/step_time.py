"""Time of one training iteration of each method, side by side in one process, as a run pays for it.

    python bench/step_time.py [--config synthetic] [--steps 20] [--rounds 5] [--threads N] [--methods ...]
    python bench/step_time.py --threads 1 --profile hdc          # torch.profiler table of HDC's iteration
    python bench/step_time.py --threads 1 --methods mean_teacher cps hdc hdc_light:model.noisy_decoder=light   # a variant

The timed region is the loop's own iteration (``train.loop.train_iteration``): seeding, making the batch
(indices, host-to-device copy, weak and strong views, feature-noise seeds), the forward passes, the
losses, backward, the optimiser and the EMA update. The methods take turns, ``--steps`` iterations each per
round, for ``--rounds`` rounds, so a load change on a shared machine hits every method alike; a method's
figure is the fastest round's mean iteration time (``--stat min``: the round least disturbed by other jobs)
or the median round (``--stat median``). Prints ms per iteration, images per second,
parameter counts (all networks) and each method's time relative to HDC: the cost comparison HDC's authors
make against multi-network frameworks (here CPS, two full networks) and the single-network peers.
"""

from __future__ import annotations

import argparse
import statistics
import time
import typing

import torch

from hdc_ray.config import Method, load_config, with_overrides
from hdc_ray.data import build_data
from hdc_ray.model import count_parameters
from hdc_ray.train.batches import Shard
from hdc_ray.train.loop import train_iteration
from hdc_ray.train.methods import build_models
from hdc_ray.train.step import build_optimizer, build_scaler

METHODS = tuple(m for m in ("supervised", "mean_teacher", "cps", "hdc", "fixmatch", "unimatch") if m in typing.get_args(Method))
WARMUP = 3  # iterations per method before timing (allocator, first-call dispatch)


class Runner:
    """One method's networks and optimiser, advanced one loop iteration at a time."""

    def __init__(self, cfg, data) -> None:  # type: ignore[no-untyped-def]
        self.cfg, self.data = cfg, data
        torch.manual_seed(cfg.train.seed)
        self.models = build_models(cfg, len(data.class_names))
        self.cpu = torch.device("cpu")
        self.optimizer, self.scaler = build_optimizer(cfg, self.models.trainable), build_scaler(cfg, self.cpu)
        self.step, self.images = 0, 0
        self.models.trainable.train()

    def iterate(self, n: int, clock=time.perf_counter) -> float:  # type: ignore[no-untyped-def]
        """Run ``n`` iterations; seconds per iteration on ``clock``."""
        start = clock()
        for _ in range(n):
            epoch, it = divmod(self.step, self.cfg.train.iters_per_epoch)
            _, self.images = train_iteration(self.cfg, self.data, self.models, self.models.trainable, self.optimizer, self.scaler, epoch, it, Shard(), self.cpu)
            self.step += 1
        return (clock() - start) / n

    def parameters(self) -> int:
        teacher = 0 if self.models.teacher is None else count_parameters(self.models.teacher)
        return count_parameters(self.models.trainable) + teacher


def profile(runner: Runner, steps: int, rows: int) -> None:
    from torch.profiler import ProfilerActivity, record_function
    from torch.profiler import profile as torch_profile

    runner.iterate(WARMUP)
    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof, record_function("iteration"):
        runner.iterate(steps)
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic")
    parser.add_argument("--steps", type=int, default=4, help="iterations per method per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--profile", metavar="METHOD", help="print a torch.profiler table of this method's iteration instead")
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--stat", choices=["min", "median"], default="min", help="which round stands for a method")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: this process's CPU time (with --threads 1, robust to other jobs on a shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base = load_config(args.config, args.overrides)
    data = build_data(base.data)
    print(f"config {args.config}: {base.data.image_size}px, U-Net width {base.model.base_width} depth {base.model.depth}, "
          f"batch {base.train.batch_labeled}+{base.train.batch_unlabeled}, torch threads {torch.get_num_threads()}, clock {args.clock}, {args.stat} of {args.rounds} rounds x {args.steps} iterations")  # fmt: skip
    if args.profile:
        profile(Runner(with_overrides(base, {"train.method": args.profile}), data), args.steps * args.rounds, args.rows)
        return
    runners = {label: Runner(with_overrides(base, values), data) for label, values in map(arm, args.methods)}
    for runner in runners.values():
        runner.iterate(WARMUP)
    rounds: dict[str, list[float]] = {m: [] for m in runners}
    for _ in range(args.rounds):
        for method, runner in runners.items():
            rounds[method].append(runner.iterate(args.steps, time.process_time if args.clock == "cpu" else time.perf_counter))
    pick = min if args.stat == "min" else statistics.median
    seconds = {m: pick(r) for m, r in rounds.items()}
    ref = seconds.get("hdc")
    print(f"{'method':<14}{'ms/iter':>10}{'spread':>10}{'img/s':>10}{'params (all nets)':>19}{'vs hdc':>9}")
    for method, runner in runners.items():
        spread = (max(rounds[method]) - min(rounds[method])) * 1000
        ratio = f"{seconds[method] / ref:>9.2f}" if ref else f"{'-':>9}"
        print(f"{method:<14}{seconds[method] * 1000:>10.1f}{spread:>10.1f}{runner.images / seconds[method]:>10.1f}{runner.parameters():>19,}{ratio}")
    for label in (m for m in seconds if m == "hdc" or m.startswith("hdc_")):
        if "mean_teacher" in seconds and "cps" in seconds:
            print(f"{label} / mean teacher {seconds[label] / seconds['mean_teacher']:.2f} (target <= 1.45), "
                  f"{label} / CPS {seconds[label] / seconds['cps']:.2f} (target <= 0.85)")


def arm(spec: str) -> tuple[str, dict[str, object]]:
    """``hdc`` (a train.method) or ``LABEL:KEY=V[,KEY=V]`` (HDC unless train.method is given) -> (label, overrides)."""
    import yaml

    label, _, rest = spec.partition(":")
    if not rest:
        return label, {"train.method": label}
    values: dict[str, object] = {"train.method": "hdc"}
    for pair in rest.split(","):
        key, _, value = pair.partition("=")
        values[key] = yaml.safe_load(value)
    return label, values


if __name__ == "__main__":
    main()
