"""Operating characteristics of the study's decision rule, by simulation (numpy only, seconds).

    python bench/study_rule.py                    # the shipped rule: type-I error, power, splits to decide, bias
    python bench/study_rule.py --scales 0.5 1 2 4 # the same for other mixture scales (how PRIOR_SCALE was chosen)

A simulated study pairs ``m`` comparisons (arm x budget) on the same splits: per split, each comparison's difference
is ``gain + sd * z`` with the comparisons' z correlated 0.5 (they share the split's labelled images). Rounds follow
``stopping`` exactly as ``hdc_ray.tune.rounds`` runs them: the first round's splits, then ``round_seeds`` more, until
every comparison is decided (claimed by Holm over the anytime-valid p-values, or its confidence sequence narrower
than ``width``) with at least ``min_seeds`` splits, or ``max_seeds`` splits ran. "raised" keeps raising max_seeds by a
round, up to 30 splits, as a user following the report's advice would. The old rule (a 95% t-interval per look,
no correction) is simulated beside it.

Printed: P(any claim) with no true difference (the family-wise error), P(the gain is claimed) at true gains of 2 and 4
Dice points with split sd 2-4, the mean splits at the stop, and the mean estimate at the stop over the true gain (bias)
among studies that claimed it. docs/benchmarks.md, "The study's decision rule", holds its table.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hdc_ray.analysis.evidence.control import ALPHA, PRIOR_SCALE, anytime_p, holm_batch, sequence_bounds
from hdc_ray.tune.spec import Stopping

FIRST = 3  # the study spec's first round: 3 splits
CORRELATION = 0.5
OLD = Stopping(max_seeds=12, width=0.02)  # the rule's limits before the error control (with a 95% t-interval per look)


@dataclass(frozen=True)
class Outcome:
    claimed_any: float  # P(some comparison claimed)
    claimed_gain: float  # P(comparison 0 claimed as a gain)
    splits: float  # mean splits at the stop
    bias: float  # mean estimate / true gain among studies that claimed comparison 0 (NaN under the null)


def draw(rng: np.random.Generator, studies: int, m: int, splits: int, gain: float, sd: float) -> np.ndarray:
    """(studies, m, splits) paired differences, Dice units; comparisons of a study correlated on the split."""
    shared = rng.standard_normal((studies, 1, splits))
    own = rng.standard_normal((studies, m, splits))
    z = np.sqrt(CORRELATION) * shared + np.sqrt(1 - CORRELATION) * own
    return gain + sd * z


def run_rule(x: np.ndarray, rule: Stopping, *, g: float = PRIOR_SCALE, raise_to: int | None = None, old: bool = False) -> Outcome:
    """The rule on simulated studies ``x`` (studies, m, splits): looks after every round, stop as rounds.py stops."""
    studies, m, _ = x.shape
    stop = np.full(studies, -1)
    claims = np.zeros((studies, m), bool)
    last = raise_to or rule.max_seeds
    looks = [FIRST, *range(FIRST + rule.round_seeds, last + 1, rule.round_seeds)]
    if looks[-1] != last:
        looks.append(last)
    for n in looks:
        live = stop < 0
        now, width = _decide(x[live, :, :n], g, old)
        claims[live] = now
        decided = (now | (width < rule.width)).all(axis=1)
        ends = decided & (n >= rule.min_seeds) | (n >= last)
        idx = np.nonzero(live)[0][ends]
        stop[idx] = n
    n_at = stop[:, None, None]
    estimate = np.where(np.arange(x.shape[2]) < n_at, x, 0.0).sum(axis=2) / stop[:, None]
    gain = float(np.mean(x[:, 0]))  # only used as a scale when the true gain is not zero
    won = claims[:, 0] & (estimate[:, 0] > 0)
    return Outcome(float(claims.any(axis=1).mean()), float(won.mean()), float(stop.mean()), float(np.mean(estimate[won, 0])) / gain if won.any() and abs(gain) > 1e-3 else np.nan)


def _decide(x: np.ndarray, g: float, old: bool) -> tuple[np.ndarray, np.ndarray]:
    """Claims and interval widths of every comparison after ``x.shape[2]`` splits."""
    n = x.shape[2]
    if old:  # the rule before: a 95% t-interval per look and per comparison
        mean, sd = x.mean(axis=2), x.std(axis=2, ddof=1)
        half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
        return np.abs(mean) > half, 2 * half
    p = anytime_p(x, g)
    claims = holm_batch(p, ALPHA)
    level = ALPHA / np.maximum(1, x.shape[1] - claims.sum(axis=1, keepdims=True))  # Holm's level for what it did not claim
    low, high = sequence_bounds(x, np.broadcast_to(level, claims.shape), g)
    return claims, high - low


def table(g: float, studies: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    rule = Stopping()
    lines = [f"mixture scale g = {g:g}; shipped rule: first {FIRST} splits, +{rule.round_seeds} a round, min {rule.min_seeds}, max {rule.max_seeds}, "
             f"width {rule.width:g}; old rule: a 95% t-interval per look, max {OLD.max_seeds}, width {OLD.width:g}; {studies} studies per cell", "",
             "| case | new rule | old rule (t per look) |", "| --- | --- | --- |"]  # fmt: skip
    for m in (1, 2, 4):
        x = draw(rng, studies, m, 30, 0.0, 0.03)
        new, old = run_rule(x, rule, g=g), run_rule(x, OLD, old=True)
        lines.append(f"| no difference, {m} comparison(s): P(any claim) | {new.claimed_any:.3f} | {old.claimed_any:.3f} |")
    x = draw(rng, studies, 1, 30, 0.0, 0.03)
    new, old = run_rule(x, rule, g=g, raise_to=30), run_rule(x, OLD, raise_to=30, old=True)
    lines.append(f"| no difference, 1 comparison, max_seeds raised to 30: P(any claim) | {new.claimed_any:.3f} | {old.claimed_any:.3f} |")
    lines += ["", "| true gain | split sd | comparisons | P(gain claimed) new | splits at stop new | estimate / truth new | P(gain claimed) old | estimate / truth old |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for gain in (0.02, 0.04):
        for sd in (0.02, 0.03, 0.04):
            x = draw(rng, studies, 2, 30, gain, sd)
            new, old = run_rule(x, rule, g=g), run_rule(x, OLD, old=True)
            lines.append(f"| {100 * gain:.0f} points | {100 * sd:.0f} | 2 | {new.claimed_gain:.2f} | {new.splits:.1f} | {new.bias:.2f} | {old.claimed_gain:.2f} | {old.bias:.2f} |")
    return [*lines, "", *limits_table(g, studies // 4, rng)]


def limits_table(g: float, studies: int, rng: np.random.Generator) -> list[str]:
    """How max_seeds and width trade splits for decisions (two comparisons): what the shipped defaults were chosen from."""
    lines = ["| max_seeds | width | P(any claim), no difference | P(4-point gain claimed), sd 3 | splits at stop | P(2-point gain claimed), sd 3 | splits at stop |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for max_seeds, width in ((12, 0.02), (12, 0.03), (18, 0.03), (24, 0.03), (18, 0.05)):
        rule = Stopping(max_seeds=max_seeds, width=width)
        null = run_rule(draw(rng, studies, 2, 30, 0.0, 0.03), rule, g=g)
        four, two = (run_rule(draw(rng, studies, 2, 30, gain, 0.03), rule, g=g) for gain in (0.04, 0.02))
        lines.append(f"| {max_seeds} | {width:g} | {null.claimed_any:.3f} | {four.claimed_gain:.2f} | {four.splits:.1f} | {two.claimed_gain:.2f} | {two.splits:.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[PRIOR_SCALE])
    parser.add_argument("--studies", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    for g in args.scales:
        print("\n".join(table(g, args.studies, args.seed)), end="\n\n", flush=True)
    print(f"({time.perf_counter() - started:.0f} s; Monte Carlo error of a rate near 0.05 with {args.studies} studies: "
          f"+/- {1.96 * np.sqrt(0.05 * 0.95 / args.studies):.3f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
