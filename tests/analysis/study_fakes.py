"""Hand-made label-budget studies with known answers (test Dice per split, seed i = split i)."""

from __future__ import annotations

import pandas as pd

POOL = 400
SUP = {4: [0.60, 0.62, 0.58, 0.61, 0.59, 0.60], 8: [0.70, 0.72, 0.68, 0.71, 0.69, 0.70], 16: [0.80, 0.82, 0.78, 0.81, 0.79, 0.80]}


def trials(scores: dict[tuple[str, int], list[float]], *, best_last: bool = False, epochs: int = 8, arms: dict[str, str] | None = None) -> pd.DataFrame:
    """``{(arm, n_labeled): [test Dice per split]}`` -> finished trials; ``arms``: arm -> method where they differ."""
    rows = []
    for (arm, n), per_split in scores.items():
        for seed, dice in enumerate(per_split):
            rows.append({
                "sweep": "s", "trial_id": f"{arm}-{n}-{seed}", "status": "completed", "method": (arms or {}).get(arm, arm), "variant": arm,
                "label_ratio": n / POOL, "n_labeled": n, "seed": seed, "split_hash": f"s{seed}-{n}", "task": "cervix", "test_dice_fg": dice,
                "epochs_done": epochs, "best_epoch": epochs if best_last else epochs - 3,
                "cfg.train.epochs": epochs, "cfg.train.iters_per_epoch": 40, "cfg.train.batch_labeled": 8, "cfg.train.batch_unlabeled": 8,
            })  # fmt: skip
    return pd.DataFrame(rows)


def study(hdc: dict[int, list[float]], sup: dict[int, list[float]] = SUP, **kw: object) -> pd.DataFrame:
    return trials({**{("supervised", n): v for n, v in sup.items()}, **{("hdc", n): v for n, v in hdc.items()}}, **kw)  # type: ignore[arg-type]


def shifted(n: int, gains: tuple[float, ...], sup: dict[int, list[float]] = SUP) -> list[float]:
    return [s + g for s, g in zip(sup[n], gains, strict=True)]
