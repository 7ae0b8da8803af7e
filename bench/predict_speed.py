"""Inference speed of ``hdc-ray predict`` on CPU: ms/image and images/s for the shipped configs, at the working
resolution and at FUGC's native 336 x 544 (resize to the working size and back included), in one process and
on Ray Data with a local 2-actor pool, side by side in one run.

    python bench/predict_speed.py                       # all shipped configs (psfh shares fugc's network)
    python bench/predict_speed.py --configs tiny synthetic --images 32 --no-ray

What is timed is what ``predict`` does per image: read the PNG, resize, network (random weights of the
config's architecture: speed does not depend on training), resize back, write the mask. One process runs
``predict_folder`` with one torch thread; Ray Data runs ``predict_on_ray`` with 2 actors of one thread each,
whose figure is their busy time over the pool (warm-up in the actors' constructors excluded), next to the
wall time of the whole Ray Data run (actor start-up included). Figures go to stdout and, with ``--out``, to
a JSON file. Not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from hdc_ray.config import load_config
from hdc_ray.inference.inputs import discover
from hdc_ray.inference.predict import PredictOptions, predict_folder
from hdc_ray.inference.sources import LoadedModel
from hdc_ray.model import build_segnet
from hdc_ray.train.card import card_of

FUGC_NATIVE = (336, 544)  # H x W of a FUGC 2025 image
SAME_NETWORK = {"psfh": "fugc"}  # psfh's network and input size are fugc's: measured once


def model_of(config: str) -> LoadedModel:
    cfg = load_config(config, ["data.root=/not/read"])  # real-data configs need a root; only the network is built
    card = card_of(cfg)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_segnet(card.model, card.num_classes)
    return LoadedModel(Path(f"<random {config}>"), f"random weights of {config}", card, net.state_dict(), cfg)


def image_folder(root: Path, shape: tuple[int, int], n: int) -> Path:
    """``n`` grey PNGs of ``shape`` with speckle-like content (the content does not change the speed)."""
    folder = root / f"{shape[0]}x{shape[1]}"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def measure(model: LoadedModel, folder: Path, out: Path, ray_workers: int | None, batch: int) -> dict[str, Any]:
    inputs = discover(folder)
    options = PredictOptions(batch_size=batch, progress=False)
    if ray_workers is None:
        timing = predict_folder([model], inputs, out, options)
    else:
        from hdc_ray.distributed.predict import predict_on_ray

        timing = predict_on_ray([model], inputs, out, options, address="local", workers=ray_workers)
    return {"images": timing.images, "ms_per_image": 1000.0 * timing.seconds / timing.images, "images_per_s": timing.images / timing.seconds,
            "wall_s": timing.wall_s}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "synthetic", "fugc", "psfh"])
    parser.add_argument("--images", type=int, default=None, help="images per case (default: 48 for 32/64 px configs, 16 for 224 px)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="Ray Data actors")
    parser.add_argument("--no-ray", action="store_true", help="single-process only")
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread in the single process, one per actor: the comparison is of processes, not threads
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    rows = []
    with tempfile.TemporaryDirectory(prefix="predict-speed-") as tmp:
        root = Path(tmp)
        for config in args.configs:
            if config in SAME_NETWORK and SAME_NETWORK[config] in args.configs:
                print(f"{config}: the same network and input size as {SAME_NETWORK[config]}; see its rows", flush=True)
                continue
            model = model_of(config)
            size = model.card.input_size
            n = args.images or (48 if size <= 64 else 16)
            for label, shape in (("working", (size, size)), ("fugc_native", FUGC_NATIVE)):
                folder = image_folder(root / config, shape, n)
                for runner in ("single", *(() if args.no_ray else ("ray_data",))):
                    out = root / config / f"{label}-{runner}"
                    figures = measure(model, folder, out, None if runner == "single" else args.workers, args.batch_size)
                    row = {"config": config, "input_size": size, "images_at": label, "shape": f"{shape[0]}x{shape[1]}", "runner": runner, **figures}
                    rows.append(row)
                    wall = f", {row['wall_s']:.1f} s end to end (start-up included)" if row["wall_s"] is not None else ""
                    print(f"{config:<10} {size:>3} px  images {row['shape']:>8}  {runner:<9} {row['ms_per_image']:8.2f} ms/image  "
                          f"{row['images_per_s']:8.1f} images/s  ({n} images){wall}", flush=True)  # fmt: skip
    print(f"\n{os.cpu_count()} cores; torch {torch.__version__}; Ray Data: {args.workers} actors x 1 thread; single process: 1 thread", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "cores": os.cpu_count(), "torch": torch.__version__}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
