"""Ceiling and floor of the synthetic benchmark: can the label be read from the image, and what do labels buy?

    python bench/generator_ceiling.py [--tasks cervix psfh] [--counts 4 8] [--seeds 0] [--epochs E] [--iters I] [--jobs 1]

Per task, on the config's default preset (``--config synthetic``, 64 px):
- ``oracle``: the noise-free anatomy map (structure contrasts after the boundary blur, canal and skull
  lines; no texture, shadows or speckle) split into connected regions at the midpoint between tissue and
  each structure, each region given its majority ground-truth class. It asks only whether the class
  boundaries are *drawn*; foreground Dice is the mean over the classes, as in training.
- ``erode1`` / ``dilate1``: Dice of the ground truth eroded / dilated by one pixel (per class, 3x3 cross):
  what a one-pixel boundary error costs, the scale of the thinnest structure.
- ``supervised@all`` and ``supervised@N``: supervised training (the config's model and loss, ``--epochs`` x
  ``--iters`` steps, one torch thread each) with every training image labelled and with N labelled images;
  test foreground Dice (best-validation checkpoint) and per-class Dice.

Prints one table per task. Targets (issue 10): supervised@all >= 0.85, the low counts >= 10 points below.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import ndimage

CROSS = ndimage.generate_binary_structure(2, 1)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(a, b).sum()) / total


def oracle_and_morphology(task: str, difficulty: str, size: int, n: int, seed: int) -> dict[str, float]:
    """Mean over ``n`` samples of the per-class Dice of the component oracle and of 1-px erosion / dilation."""
    from hdc_ray.data.synthetic import CLASS_NAMES, SyntheticSpec, generate_sample_with_clean_map, sample_rng

    spec = SyntheticSpec(task, difficulty, size)
    classes = range(1, len(CLASS_NAMES[task]))
    scores: dict[str, list[float]] = {f"{kind}_{c}": [] for kind in ("oracle", "erode1", "dilate1") for c in classes}
    for i in range(n):
        _, mask, clean = generate_sample_with_clean_map(spec, sample_rng(seed, 10_000 + i))
        predicted = component_oracle(clean, mask)
        for c in classes:
            truth = mask == c
            scores[f"oracle_{c}"].append(dice(predicted == c, truth))
            scores[f"erode1_{c}"].append(dice(ndimage.binary_erosion(truth, CROSS), truth))
            scores[f"dilate1_{c}"].append(dice(ndimage.binary_dilation(truth, CROSS), truth))
    out = {key: statistics.mean(values) for key, values in scores.items()}
    for kind in ("oracle", "erode1", "dilate1"):
        out[f"{kind}_fg"] = statistics.mean(out[f"{kind}_{c}"] for c in classes)
    return out


def component_oracle(clean_db: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Segment the noise-free map by thresholds only, then let the ground truth name each region.

    Tissue sits at 0 dB. Bright structures (lips, symphysis) are above +t, dark ones (the fetal head) below
    -t, with t = half the median |contrast| inside the structures. The thresholded map is eroded by one
    pixel (so a one-pixel bridge, e.g. where the lips meet at their tips, does not merge two regions that
    a visible boundary such as the dark canal separates elsewhere); each eroded component takes its
    majority label and every thresholded pixel the label of the nearest component."""
    labelled = mask > 0
    level = float(np.median(np.abs(clean_db[labelled]))) if labelled.any() else 1.0
    predicted = np.zeros_like(mask)
    for side in (clean_db > 0.5 * level, clean_db < -0.5 * level):
        components, count = ndimage.label(ndimage.binary_erosion(side, CROSS), CROSS)
        if count == 0:
            continue
        names = np.zeros(count + 1, mask.dtype)
        for k in range(1, count + 1):
            names[k] = np.bincount(mask[components == k], minlength=3).argmax()
        _, (rows, cols) = ndimage.distance_transform_edt(components == 0, return_indices=True)
        nearest = names[components[rows, cols]]
        predicted[side & (nearest > 0)] = nearest[side & (nearest > 0)]
    return predicted


def train_one(config: str, overrides: list[str], task: str, count: int | None, seed: int, epochs: int, iters: int) -> dict:  # type: ignore[type-arg]
    import torch

    from hdc_ray.config import load_config
    from hdc_ray.data import build_data
    from hdc_ray.train.loop import fit

    torch.set_num_threads(1)
    budget = ["data.label_count=null", "data.label_ratio=1.0"] if count is None else [f"data.label_count={count}"]
    cfg = load_config(config, [*overrides, f"data.task={task}", "train.method=supervised", *budget,
                               f"train.seed={seed}", f"train.epochs={epochs}", f"train.iters_per_epoch={iters}"])  # fmt: skip
    start = time.perf_counter()
    data = build_data(cfg.data)
    result = fit(cfg, data, progress=False, log=lambda _: None)
    per_class = {k: v for k, v in result.test.items() if k.startswith("test_dice_")}
    return {"task": task, "count": count, "seed": seed, "n_labeled": len(data.labeled), "split_hash": data.split_hash,
            "seconds": time.perf_counter() - start, **per_class}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic")
    parser.add_argument("--tasks", nargs="+", default=["cervix", "psfh"])
    parser.add_argument("--counts", type=int, nargs="+", default=[4, 8], help="labelled images of the low budgets")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="each seed is another split (data.split_seed follows it)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's train.epochs")
    parser.add_argument("--iters", type=int, default=None, help="default: the config's train.iters_per_epoch")
    parser.add_argument("--oracle-n", type=int, default=100, help="samples for the oracle and the erosion/dilation figures")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--no-train", action="store_true", help="only the oracle and morphology figures")
    args = parser.parse_args()

    from hdc_ray.config import load_config
    from hdc_ray.data.synthetic import CLASS_NAMES

    base_cfg = load_config(args.config, args.overrides)
    base = base_cfg.data
    args.epochs = args.epochs or base_cfg.train.epochs
    args.iters = args.iters or base_cfg.train.iters_per_epoch
    start = time.perf_counter()
    runs: list[dict] = []  # type: ignore[type-arg]
    if not args.no_train:
        # The all-label (slowest to matter) arms first: their figures arrive first.
        jobs = [(args.config, args.overrides, t, c, s, args.epochs, args.iters) for c in [None, *args.counts] for t in args.tasks for s in args.seeds]
        with ProcessPoolExecutor(args.jobs) as pool:
            for run in pool.map(train_one, *zip(*jobs, strict=True)):
                runs.append(run)
                arm = "all" if run["count"] is None else run["count"]
                print(f"  {run['task']} supervised@{arm} seed {run['seed']} ({run['n_labeled']} labelled, split {run['split_hash']}): "
                      f"test Dice fg {run['test_dice_fg']:.3f}, {run['seconds']:.0f} s", flush=True)  # fmt: skip
    for task in args.tasks:
        names = CLASS_NAMES[task][1:]
        figures = oracle_and_morphology(task, base.difficulty, base.image_size, args.oracle_n, base.data_seed)
        print(f"\n{task} ({base.difficulty}, {base.image_size} px, {args.epochs} x {args.iters} steps): test Dice")
        print("| arm | fg | " + " | ".join(names) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in names) + " |")
        for kind in ("oracle", "erode1", "dilate1"):
            cells = [f"{figures[f'{kind}_{c}']:.3f}" for c in range(1, len(names) + 1)]
            print(f"| {kind} | {figures[f'{kind}_fg']:.3f} | " + " | ".join(cells) + " |")
        for count in [None, *args.counts]:
            mine = [r for r in runs if r["task"] == task and r["count"] == count]
            if not mine:
                continue
            cells = [_ms([r.get(f"test_dice_{n}", float("nan")) for r in mine]) for n in names]
            print(f"| supervised@{'all' if count is None else count} | {_ms([r['test_dice_fg'] for r in mine])} | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.perf_counter() - start:.0f} s with {args.jobs} jobs")


def _ms(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


if __name__ == "__main__":
    main()
