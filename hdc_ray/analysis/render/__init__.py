"""Words from evidence: the Answer's lines (Markdown, terminal) and the commands to paste. No arithmetic of its own."""

from hdc_ray.analysis.render.answer import Answer, render_answer
from hdc_ray.analysis.render.commands import SweepHint

__all__ = ["Answer", "SweepHint", "render_answer"]
