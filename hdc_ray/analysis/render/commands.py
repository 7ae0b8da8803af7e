"""The commands a report tells its reader to paste: more splits, longer runs, larger budgets, more rounds.

Each names the stored spec and sweep it continues, so that what it says is what it does (tests run them).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from hdc_ray.analysis.evidence.convergence import Convergence
from hdc_ray.analysis.evidence.decision import ADD_SPLITS, Decision


@dataclass(frozen=True)
class SweepHint:
    """What the commands need to name: the spec to rerun, the sweep, the results, its epochs, and a study's rounds."""

    spec: str = "study"
    sweep: str = "study"
    results: str = "results"
    epochs: int | None = None
    max_seeds: int | None = None  # a study run in rounds (``stopping``): more splits = a higher max_seeds on --resume
    seeds_run: int | None = None  # ... and the splits its rounds ran


def command(hint: SweepHint, name: str, sets: Sequence[str], *, resume: bool = False) -> str:
    parts = ["hdc-ray", "sweep", hint.spec, "--name", name, "--results", hint.results, *(["--resume", "--accept-spec-change"] if resume else [])]
    for s in sets:
        parts += ["--set", s.replace(", ", ",")]
    return " ".join(shlex.quote(p) for p in parts)


def more_splits(decision: Decision, hint: SweepHint, add: int | None = None) -> tuple[str, list[int], str]:
    """The command that adds splits to decide what is open: a study's next rounds, or a sweep of new seeds. Returns
    (the sweep command, the seeds it adds, the report command that reads old and new together; '' for a study)."""
    add = add or ADD_SPLITS
    if hint.max_seeds is not None:
        run = hint.seeds_run if hint.seeds_run is not None else len(decision.seeds)
        more = max(hint.max_seeds, run) + add
        seeds = list(range(max(decision.seeds, default=-1) + 1, max(decision.seeds, default=-1) + 1 + more - run))
        return command(hint, hint.sweep, [f"stopping.max_seeds={more}"], resume=True), seeds, ""
    seeds = decision.next_seeds(add)
    name = f"{hint.sweep}-splits-{seeds[0]}-{seeds[-1]}"
    report = f"hdc-ray report {shlex.quote(hint.results)} --sweep {hint.sweep} --sweep {name}"
    return command(hint, name, [f"seeds={seeds}"]), seeds, report


def longer_runs(convergence: Sequence[Convergence], hint: SweepHint) -> str:
    """The command that trains 2.5x longer, when runs were still improving ('' when none were, or epochs are unknown)."""
    if not any(c.still_rising for c in convergence) or not hint.epochs:
        return ""
    longer = math.ceil(hint.epochs * 2.5)
    return command(hint, f"{hint.sweep}-{longer}ep", [f"overrides.train.epochs={longer}"])


def larger_budgets(budgets: Sequence[int], seeds: Sequence[int], hint: SweepHint) -> str:
    name = f"{hint.sweep}-{'-'.join(map(str, budgets))}"
    return command(hint, name, [f"space.data.label_count.grid={list(budgets)}", "exclude=[]", f"seeds={list(seeds)}"])


__all__ = ["SweepHint", "command", "larger_budgets", "longer_runs", "more_splits"]
