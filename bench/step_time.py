"""Train-step time of each method at the default benchmark size, side by side in one process.

    python bench/step_time.py [--config synthetic] [--steps 20] [--threads N]

Prints ms per step, images per second, parameter counts, and each method's time relative to HDC: the
cost comparison HDC's authors make against multi-network frameworks (here: CPS, two full networks).
"""

from __future__ import annotations

import argparse
import time

import torch

from hdc_ray.config import load_config, with_overrides
from hdc_ray.data import build_data
from hdc_ray.model import count_parameters
from hdc_ray.train.batches import Shard, make_batch
from hdc_ray.train.methods import build_models, needs_unlabeled
from hdc_ray.train.step import build_optimizer, build_scaler, train_step

METHODS = ("supervised", "mean_teacher", "hdc", "cps")


def time_method(cfg, data, steps: int) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    models = build_models(cfg, len(data.class_names))
    cpu = torch.device("cpu")
    optimizer, scaler = build_optimizer(cfg, models.trainable), build_scaler(cfg, cpu)
    batches = [make_batch(cfg, data, 0, it, Shard(), cpu, needs_unlabeled(cfg)) for it in range(steps + 3)]
    elapsed = 0.0
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        train_step(cfg, models, models.trainable, optimizer, scaler, batch, step=i)  # the loop's own step
        if i >= 3:  # warm-up steps excluded
            elapsed += time.perf_counter() - start
    images = batches[0].n_images
    teacher = 0 if models.teacher is None else count_parameters(models.teacher)
    return elapsed / steps, images, count_parameters(models.trainable) + teacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base = load_config(args.config)
    data = build_data(base.data)
    print(f"config {args.config}: {base.data.image_size}px, U-Net width {base.model.base_width} depth {base.model.depth}, "
          f"batch {base.train.batch_labeled}+{base.train.batch_unlabeled}, torch threads {torch.get_num_threads()}")
    rows = {m: time_method(with_overrides(base, {"train.method": m}), data, args.steps) for m in METHODS}
    ref = rows["hdc"][0]
    print(f"{'method':<14}{'ms/step':>10}{'img/s':>10}{'params (all nets)':>19}{'vs hdc':>9}")
    for method, (seconds, images, params) in rows.items():
        print(f"{method:<14}{seconds * 1000:>10.1f}{images / seconds:>10.1f}{params:>19,}{seconds / ref:>9.2f}")


if __name__ == "__main__":
    main()
