"""pandas answers to the questions sweeps are run for, on the Parquet results (no Ray needed).

- The study's answer, paired on the labelled split (per budget: the difference, a t-interval over splits, "ahead on
  k of n", labels saved per split; convergence; next-round commands): :func:`build_answer`, :func:`advise`.
- What label budget buys what accuracy: :func:`label_budget_curve`; on mean curves, :func:`labels_saved` and its
  seed bootstrap :func:`match_interval` (budgets are labelled-image counts, ``n_labeled``, where recorded).
- How many labelled images reach a target Dice: :func:`labels_needed` (the budget advisor).
- Which HDC loss terms and noise levels matter: :func:`ablation_table`.
- Which settings are Pareto-optimal: :func:`pareto_front`; what matters: :func:`parameter_importance`.
- How training went: :func:`learning_curves`.

Example::

    from hdc_ray.analysis import read_results, label_budget_curve, labels_saved
    res = read_results("results/")
    curve = label_budget_curve(res.trials, "test_dice_fg")
    print(labels_saved(curve, "supervised", 200, "hdc").sentence())   # supervised with 200 labelled images
    print(labels_needed(res.trials, target=0.85)[["arm", "n_needed", "low", "high", "where"]])
    print("\n".join(build_answer(res.trials, "test_dice_fg").lines()))            # the report's Answer

``hdc-ray report RESULTS`` (:func:`report_results`) writes all of it as Markdown + HTML with PNG plots.
"""

from __future__ import annotations

from hdc_ray.analysis.ablation import ablation_table
from hdc_ray.analysis.advisor import LabelsNeeded, labels_needed
from hdc_ray.analysis.answer import Answer, advise, build_answer
from hdc_ray.analysis.budget import LabelsSaved, budget_column, label_budget_curve, labels_saved, labels_saved_table, match_interval
from hdc_ray.analysis.curves import learning_curves
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
    "LabelsNeeded",
    "LabelsSaved",
    "Report",
    "Results",
    "ablation_table",
    "advise",
    "budget_column",
    "build_answer",
    "build_report",
    "finished_trials",
    "infer_variant",
    "label_budget_curve",
    "labels_needed",
    "labels_saved",
    "labels_saved_table",
    "learning_curves",
    "match_interval",
    "metric_direction",
    "parameter_importance",
    "pareto_front",
    "read_results",
    "report_results",
]
