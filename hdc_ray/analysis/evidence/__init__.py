"""The study's evidence, pure and typed: no prose, no Ray, no CLI syntax (``hdc_ray.analysis.render`` writes the words).

- :mod:`.paired`: paired differences per budget, matched and checked on the split; the one :func:`t_interval`.
- :mod:`.control`: error control over every look and comparison (anytime-valid t confidence sequences + Holm).
- :mod:`.saved`: labels saved, only where a gain is claimed; censoring; never across gaps.
- :mod:`.advisor`: learning-curve fits, refusals, the calibration with its provenance; :mod:`.advice`: per task, with ceilings.
- :mod:`.convergence`: whether the runs had stopped improving; the compute.
- :mod:`.decision`: :func:`decide`, the whole of it: per-comparison verdicts, why a study stops, what is open.

The stopping rule runs in a notebook from a DataFrame::

    from hdc_ray.analysis import read_results
    from hdc_ray.analysis.evidence import decide
    decision = decide(read_results("results", ["demo"]).trials, "test_dice_fg")
    decision.decided, decision.open_budgets(), [j.verdict for j in decision.comparisons]
"""

from hdc_ray.analysis.evidence.control import ALPHA
from hdc_ray.analysis.evidence.decision import Decision, Judged, decide
from hdc_ray.analysis.evidence.paired import PairedDifference, PairingError, t_interval

__all__ = ["ALPHA", "Decision", "Judged", "PairedDifference", "PairingError", "decide", "t_interval"]
