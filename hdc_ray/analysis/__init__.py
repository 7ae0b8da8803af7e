"""pandas answers to the questions sweeps are run for, on the Parquet results (no Ray needed).

- The study's answer, paired on the labelled split under one family-wise error control over every comparison and
  look (per budget: the difference, its adjusted interval, "ahead on k of n", labels saved where a gain is claimed;
  convergence; next-round commands): :func:`decide` (the evidence, as data) and :func:`build_answer` (in words).
- What label budget buys what accuracy: :func:`label_budget_curve` (budgets are labelled-image counts,
  ``n_labeled``, where recorded).
- How many labelled images reach a target Dice: :func:`labels_needed` (the budget advisor).
- Which HDC loss terms and noise levels matter: :func:`ablation_table`.
- Which settings are Pareto-optimal: :func:`pareto_front`; what matters: :func:`parameter_importance`.
- How training went: :func:`learning_curves`.

Example::

    from hdc_ray.analysis import read_results, label_budget_curve, labels_needed, decide, build_answer
    res = read_results("results/")
    curve = label_budget_curve(res.trials, "test_dice_fg")
    decision = decide(res.trials, "test_dice_fg")                      # what the study's rounds stop on
    print([(j.label, j.verdict, j.low, j.high) for j in decision.comparisons])
    print(labels_needed(res.trials, target=0.85)[["arm", "n_needed", "low", "high", "where"]])
    print("\n".join(build_answer(res.trials, "test_dice_fg").lines()))            # the report's Answer

``hdc-ray report RESULTS`` (:func:`report_results`) writes all of it as Markdown + HTML with PNG plots.
"""

from __future__ import annotations

from hdc_ray.analysis.ablation import ablation_table
from hdc_ray.analysis.answer import Answer, build_answer
from hdc_ray.analysis.budget import budget_column, label_budget_curve
from hdc_ray.analysis.curves import learning_curves
from hdc_ray.analysis.evidence import Decision, decide
from hdc_ray.analysis.evidence.advice import advise
from hdc_ray.analysis.evidence.advisor import LabelsNeeded, labels_needed
from hdc_ray.analysis.importance import parameter_importance
from hdc_ray.analysis.load import SCHEMA_VERSION, Results, read_results
from hdc_ray.analysis.pareto import pareto_front
from hdc_ray.analysis.report import Report, build_report, report_results
from hdc_ray.analysis.tables import (
    FINISHED_STATUSES,
    AnalysisError,
    finished_trials,
    infer_variant,
    metric_direction,
)

__all__ = [
    "FINISHED_STATUSES",
    "SCHEMA_VERSION",
    "AnalysisError",
    "Answer",
    "Decision",
    "LabelsNeeded",
    "Report",
    "Results",
    "ablation_table",
    "advise",
    "budget_column",
    "build_answer",
    "build_report",
    "decide",
    "finished_trials",
    "infer_variant",
    "label_budget_curve",
    "labels_needed",
    "learning_curves",
    "metric_direction",
    "parameter_importance",
    "pareto_front",
    "read_results",
    "report_results",
]
