"""Watch a class collapse: one run with per-class diagnostics every epoch (issue 32).

    python bench/class_collapse.py --set data.task=psfh --count 8 --seed 1 --method hdc      # PSFH-like split 1, 8 labels, 800 steps
    python bench/class_collapse.py --count 8 --seed 3 --set train.epochs=8 --method hdc       # cervix split 3, 320 steps

Trains exactly as ``bench/ssl_benchmark.py`` does (in-process, one torch thread, the synthetic config and its
800-step schedule unless ``--set`` says otherwise) with ``train.log_classes=true``, and prints per epoch, for every
foreground class: the scored network's validation Dice, the other network's (teacher vs student), the share of
unlabelled pixels the teacher pseudo-labels that class and the share that passes the confidence threshold, and the
loss terms. ``--out`` keeps the whole history as JSON. A class is flagged lost under validation Dice 0.25 (the
Answer's rule, ``analysis.tables.LOST_DICE``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ssl_benchmark import arm_config


def run(config: str, overrides: list[str], method: str, count: int | None, seed: int) -> tuple[list[dict], tuple[str, ...], float, dict]:  # type: ignore[type-arg]
    import torch

    from hdc_ray.data import build_data
    from hdc_ray.train.loop import fit

    torch.set_num_threads(1)
    cfg = arm_config(config, [*overrides, "train.log_classes=true"], method, count, seed)
    data = build_data(cfg.data)
    start = time.perf_counter()
    result = fit(cfg, data, progress=False, log=lambda _: None)
    return result.history, data.class_names, time.perf_counter() - start, {"best_epoch": result.best_epoch, **result.test}


def table(history: list[dict], classes: tuple[str, ...]) -> list[str]:  # type: ignore[type-arg]
    head = ["epoch", *(f"{c[:10]} {k}" for c in classes[1:] for k in ("val", "other", "pseudo", "conf")), "sup", "pc", "cg", "mi"]
    lines = [" ".join(f"{h:>12}" for h in head)]
    for h in history:
        cells = [f"{int(h['epoch']):>12}"]
        for i, c in enumerate(classes[1:], start=1):
            for key in (f"val_dice_{c}", f"val_other_dice_{c}", f"train_pseudo_c{i}", f"train_confident_c{i}"):
                value = h.get(key)
                cells.append(f"{value:>12.3f}" if isinstance(value, float) else f"{'-':>12}")
        for term in ("sup", "pc", "cg", "mi"):
            value = h.get(f"train_loss_{term}")
            cells.append(f"{value:>12.4f}" if isinstance(value, float) else f"{'-':>12}")
        lines.append(" ".join(cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="synthetic")
    parser.add_argument("--method", default="hdc", help="a train.method, or an HDC variant NAME:KEY=V[,KEY=V]")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None, help="write the history here as JSON")
    args = parser.parse_args(argv)
    history, classes, seconds, test = run(args.config, args.overrides, args.method, args.count, args.seed)
    print(f"{args.method} @{args.count}, seed {args.seed}, {' '.join(args.overrides)}: {len(history)} epochs in {seconds:.0f} s")
    print("\n".join(table(history, classes)))
    lost = [c for c in classes[1:] if history[-1].get(f"val_dice_{c}", 1.0) < 0.25]
    print(f"lost at the last epoch: {', '.join(lost) or 'none'}")
    shown = "  ".join(f"{c} {test[f'test_dice_{c}']:.3f}" for c in ("fg", *classes[1:]) if f"test_dice_{c}" in test)
    print(f"test Dice of the best-validation epoch ({test['best_epoch']}): {shown}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "classes": classes, "history": history, "seconds": seconds, "test": test}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
