"""Ray Train on CPU: images/s of 2 DDP workers vs 1 at the same global batch, and the time from
``trainer.fit()`` to the first reported epoch. Both runs in one process, on one local cluster, side by side.

    python bench/ray_throughput.py [--config synthetic] [--epochs 3] [--iters 20] [--method hdc]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import ray
from ray.train.v2.api.callback import UserCallback

from hdc_ray.config import load_config
from hdc_ray.distributed.launch import build_trainer


class Stamps(UserCallback):
    def __init__(self, path: str) -> None:
        self.path = path

    def after_report(self, run_context, metrics, checkpoint) -> None:  # type: ignore[no-untyped-def]
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"t": time.time(), "epoch": metrics[0]["epoch"], "ips": metrics[0]["images_per_s"]}) + "\n")


def run(cfg, workers: int, folder: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    stamps = folder / f"stamps-{workers}.jsonl"
    start = time.time()
    result = build_trainer(cfg, name=f"w{workers}", storage_path=str(folder), callbacks=[Stamps(str(stamps))], num_workers=workers).fit()
    assert result.error is None, result.error
    rows = [json.loads(line) for line in stamps.read_text().splitlines()]
    steady = [r["ips"] for r in rows[1:]] or [rows[0]["ips"]]  # epoch 1 includes warm-up
    return {"first_epoch_s": rows[0]["t"] - start, "images_per_s": sum(steady) / len(steady), "total_s": time.time() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--method", default="hdc")
    args = parser.parse_args()
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
    ray.init(num_cpus=os.cpu_count())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            cfg = load_config(args.config, [f"train.method={args.method}", f"train.epochs={args.epochs}", f"train.iters_per_epoch={args.iters}",
                                            f"dist.workers={workers}", f"dist.cpus_per_worker={os.cpu_count() / workers}"])
            results[workers] = run(cfg, workers, Path(tmp))
            print(f"{workers} worker(s): {results[workers]['images_per_s']:.1f} img/s (epochs 2+), first epoch reported "
                  f"{results[workers]['first_epoch_s']:.1f} s after fit(), total {results[workers]['total_s']:.1f} s", flush=True)
    print(f"throughput ratio 2 workers / 1 worker: {results[2]['images_per_s'] / results[1]['images_per_s']:.2f} "
          f"({os.cpu_count()} cores, gloo, global batch fixed)")
    ray.shutdown()


if __name__ == "__main__":
    main()
