"""The study's answer: the evidence (``analysis.evidence.decide``) with the advisor's verdicts, rendered (``analysis.render``).

The unit of evidence is the labelled split; every claim is made under one family-wise error control over every
comparison and every look (docs/report.md, "What the first lines say"). The Markdown/HTML report and the terminal
summary both show one :class:`~hdc_ray.analysis.render.Answer`.
"""

from __future__ import annotations

import pandas as pd

from hdc_ray.analysis.evidence.advice import Advice, advise
from hdc_ray.analysis.evidence.decision import WIDTH, decide
from hdc_ray.analysis.evidence.paired import BASELINE
from hdc_ray.analysis.render import Answer, SweepHint, render_answer


def build_answer(trials: pd.DataFrame, metric: str, *, history: pd.DataFrame | None = None, hint: SweepHint | None = None,
                 target: float | None = None, n_boot: int = 1000, baseline: str = BASELINE, width: float = WIDTH) -> Answer:  # fmt: skip
    """The Answer from the trials table: decided on ``metric``, with the advisor asked about ``target`` when given."""
    decision = decide(trials, metric, width=width, baseline=baseline, history=history)
    advice: Advice | None = advise(trials, metric, target, n_boot=n_boot) if target is not None else None
    return render_answer(decision, hint, advice)


__all__ = ["Answer", "SweepHint", "build_answer"]
